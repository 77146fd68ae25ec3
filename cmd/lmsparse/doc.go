// Command lmsparse makes pretrained language models smaller and measures
// what they kept. Run "lmsparse help" for the list of commands.
//
// # Structure
//
// Each verb lives in its own file (inspect.go, copy.go, ...) with an
// options struct, a constructor returning its [command] (summary, usage,
// help text, examples, flag registration) and a run function
// run<Verb>(ctx, opts, stdout, stderr) error. cli.go dispatches and prints
// help; flags are GNU-style (github.com/spf13/pflag).
//
// # Errors and exit codes
//
// Commands return errors; they never exit or print them. [Main] prints one
// line, "lmsparse: <what>: <why>", and maps the error to an exit code
// through the single table in exitcode.go: 0 ok, 1 runtime failure, 2 bad
// usage or bad input file, 3 a fidelity gate failed. Commands validate their
// inputs and output location before doing any work, so a bad input writes
// nothing.
package main
