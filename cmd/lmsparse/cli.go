package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/lmsparse/lmsparse/manifest"
	"github.com/spf13/pflag"
)

// command is one verb of the CLI. Each lives in its own file, which holds
// its options struct, its flag set and its run function.
type command struct {
	name     string
	summary  string // one line for "lmsparse help"
	usage    string // synopsis after "lmsparse "
	details  string // paragraphs printed by --help before the flags
	examples []string
	arg      string   // the one positional argument ("MODEL"); "" when flags' function checks them
	positive []string // integer flags that, when given, must be at least 1 (as --threads always)
	// flags registers the command's flags and returns the function that
	// validates the positional arguments and runs it.
	flags func(fs *pflag.FlagSet) func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the verbs in the order "lmsparse help" shows them.
func commands() []*command {
	return []*command{compressCommand(), inspectCommand(), pruneCommand(), saeCommand(), finetuneCommand(), decompressCommand(), evalCommand(), mergeEvalCommand(), mergeShardsCommand(), reportCommand(), copyCommand()}
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// Main runs the CLI with args (without the program name) and returns the
// process exit code. Errors (and panics: bugs) are one line on stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "lmsparse: internal error (a bug in lmsparse; please report it) running %q: %s\n", strings.Join(args[:min(len(args), 2)], " "), oneLine(fmt.Sprint(r)))
			code = exitFailure
		}
	}()
	err := dispatch(ctx, args, stdout, stderr)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = errors.New("interrupted by a signal")
		if out := outputArg(args); out != "" {
			err = fmt.Errorf("interrupted by a signal; nothing written to %s (an existing %s is left as it was)", out, out)
		}
	}
	fmt.Fprintf(stderr, "lmsparse: %s\n", oneLine(err.Error()))
	return exitCode(err)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printHelp(stderr)
		return usageErrorf("no command given")
	}
	switch args[0] {
	case "help", "-h", "--help":
		if len(args) > 1 {
			c := findCommand(args[1])
			if c == nil {
				return usageErrorf("help: unknown command %q (see 'lmsparse help')", args[1])
			}
			return printCommandHelp(stdout, c)
		}
		printHelp(stdout)
		return nil
	case "version", "--version":
		printVersion(stdout)
		return nil
	}
	c := findCommand(args[0])
	if c == nil {
		if strings.HasPrefix(args[0], "-") {
			return usageErrorf("unknown flag %s before the command (see 'lmsparse help')", args[0])
		}
		return usageErrorf("unknown command %q (see 'lmsparse help')", args[0])
	}
	fs := newFlagSet(c.name)
	run := c.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return printCommandHelp(stdout, c)
		}
		return usageErrorf("%s: %v (see 'lmsparse %s --help')", c.name, err, c.name)
	}
	for _, name := range append([]string{"threads"}, c.positive...) {
		if f := fs.Lookup(name); f != nil && f.Changed {
			if v, err := strconv.Atoi(f.Value.String()); err == nil && v < 1 {
				return usageErrorf("%s: --%s %d: must be at least 1", c.name, name, v)
			}
		}
	}
	if c.arg != "" && fs.NArg() != 1 {
		return usageErrorf("%s: want exactly one %s argument, got %d (see 'lmsparse %s --help')", c.name, c.arg, fs.NArg(), c.name)
	}
	return run(ctx, fs.Args(), stdout, stderr)
}

func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	return fs
}

func printHelp(w io.Writer) {
	var b strings.Builder
	cs := commands()
	width := 0
	for _, c := range cs {
		width = max(width, len(c.name))
	}
	for _, c := range cs {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintln(w, strings.Replace(help("lmsparse"), "COMMANDS\n", b.String(), 1))
}

func printCommandHelp(w io.Writer, c *command) error {
	fmt.Fprintf(w, "%s\n\nUsage:\n  lmsparse %s\n", c.summary, c.usage)
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.details))
	}
	fs := newFlagSet(c.name)
	c.flags(fs)
	if fs.HasFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
	}
	if len(c.examples) > 0 {
		fmt.Fprint(w, "\nExamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	return nil
}

// outputArg returns the value of -o/--output in args, or "".
func outputArg(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--output="); ok {
			return v
		} else if v, ok := strings.CutPrefix(a, "-o="); ok {
			return v
		} else if (a == "-o" || a == "--output") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// oneLine collapses a multi-line message so errors always print as one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func printVersion(w io.Writer) { fmt.Fprintln(w, manifest.Tool()) }

//go:embed help/*.txt
var helpFiles embed.FS

// help returns a command's long help text, help/NAME.txt.
func help(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic("lmsparse: no help text for " + name) // the files are embedded at build time
	}
	return strings.TrimSuffix(string(b), "\n")
}
