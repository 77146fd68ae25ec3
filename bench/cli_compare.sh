#!/usr/bin/env bash
# cli_compare.sh — check that two lmsparse builds give byte-identical CLI output.
#
# Usage: bench/cli_compare.sh OLD_BIN NEW_BIN [WORKDIR]
#
# Runs the README's commands that work on ../shared (Quick start, Pruning, Fidelity, compress,
# ONNX, sae, copy, report, every help text and a set of error cases) once with OLD_BIN and once
# with NEW_BIN, then compares, command by command, stdout, stderr and the exit code, and file by
# file everything written (checkpoints, lmsparse.json, report.json/.md/.html, shards and index,
# config and tokenizer files, .onnx and .data, the charts of `report --charts`), file modes and
# the set of files included (a missing or leftover file is a difference).
#
# Both runs use the same paths: the commands run from the repository root (so `../shared` and
# `docs/recipe-example.yaml` resolve as in the README) and write into WORKDIR/run; the old run
# is then moved to WORKDIR/old and the new one to WORKDIR/new. Paths therefore need no
# normalizing. Only what legitimately differs between builds or runs is normalized before
# comparing text:
#   - the tool version string `lmsparse VERSION [(revision …)] goX.Y OS/ARCH` (anywhere: the
#     "tool" field of the JSON files, the footers of report.md and report.html, --version);
#   - timings: JSON "seconds" (report.json timings[], eval --json), "tokens_per_second",
#     "peak_rss_bytes"; the "(X.XX s)" that ends compress's stage lines on stderr; the training
#     time "(X.X s, final loss" of sae's table; the numbers of eval's "speed" line; the stage
#     times and peak RSS in the footers of report.md / report.html.
# Binary files (anything holding a NUL byte: .safetensors, .onnx, .data, tokenizer.model) are
# compared byte for byte, unnormalized.
#
# Output: one line per check, "same  NAME" or "DIFF  NAME" followed by the first 20 lines of a
# unified diff (of the normalized text), then "N same, M differ". Exit 0 when all are the
# same, 1 when any differs, 2 on bad usage. WORKDIR (default: a new directory under /tmp) is
# kept for inspection; its run/, old/ and new/ subdirectories are replaced.
#
# Environment: LMSPARSE_SHARED (default ../shared, relative to the repository root),
# CLI_COMPARE_TIMEOUT (seconds per command, default 600), CLI_COMPARE_THREADS (if set, adds
# --threads N to eval, sae and compress; by default the README's flags are kept: their outputs
# are the same for any thread count, only the recorded "threads" value changes).
set -u -o pipefail

usage() { echo "usage: $0 OLD_BIN NEW_BIN [WORKDIR]" >&2; exit 2; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage

abspath() { # absolute path of an existing file
	case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$(pwd)" "$1" ;; esac
}
OLD_BIN=$(abspath "$1")
NEW_BIN=$(abspath "$2")
for b in "$OLD_BIN" "$NEW_BIN"; do
	[ -x "$b" ] && [ -f "$b" ] || { echo "$0: $b: not an executable file" >&2; exit 2; }
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
SHARED=${LMSPARSE_SHARED:-../shared}
[ -d "$SHARED/models/stories260k" ] || { echo "$0: $SHARED/models/stories260k not found (set LMSPARSE_SHARED)" >&2; exit 2; }
TIMEOUT=${CLI_COMPARE_TIMEOUT:-600}

if [ $# -eq 3 ]; then
	mkdir -p "$3" || exit 2
	WORKDIR=$(cd "$3" && pwd)
else
	WORKDIR=$(mktemp -d /tmp/cli_compare.XXXXXX) || exit 2
fi
R=$WORKDIR/run # the one path both runs write into
rm -rf "$R" "$WORKDIR/old" "$WORKDIR/new"

M=$SHARED/models/stories260k
X=$SHARED/models/stories260k-onnx/model.onnx
T=$SHARED/text/tinystories/tinystories_sample.txt
G=$SHARED/fixtures/tiny-gpt2-bf16
PAST=$SHARED/fixtures/onnx-tiny-random-gpt2/past.onnx
RECIPE=docs/recipe-example.yaml
# CLI_COMPARE_OLD_RECIPE: the recipe the old binary runs, when the example
# recipe changed between the two (e.g. paths that now resolve against the
# recipe's directory).
RECIPE_NEW=$RECIPE
RECIPE_OLD=${CLI_COMPARE_OLD_RECIPE:-$RECIPE}
THR=()
[ -n "${CLI_COMPARE_THREADS:-}" ] && THR=(--threads "$CLI_COMPARE_THREADS")

BIN= # set per run
FIRST=1 # 1 during the first (old) run
ORDER=() # command names in run order (filled by the first run)

# lm NAME ARGS...: run the binary, capturing stdout, stderr and the exit code under $R/_cli.
lm() {
	local name=$1
	shift
	[ "$FIRST" = 1 ] && ORDER+=("$name")
	timeout "$TIMEOUT" "$BIN" "$@" </dev/null >"$R/_cli/$name.stdout" 2>"$R/_cli/$name.stderr"
	echo $? >"$R/_cli/$name.exit"
}

run_all() {
	BIN=$1
	mkdir -p "$R/_cli" || exit 2
	touch "$R/_cli/.start"

	# Inputs the error cases need, made by the script (identical in both runs).
	printf 'version: 1\nprune:\n  sparsity: 0.2\n  bogus_key: 1\n' >"$R/bad-recipe-key.yaml"
	printf 'version: 1\nprune:\n  sparsity: 0.2\ngates:\n  max_ppl_ratio: 1.5\n' >"$R/bad-recipe-gates.yaml"
	mkdir -p "$R/corrupt"
	cp "$M/config.json" "$R/corrupt/config.json"
	head -c 600000 "$M/model.safetensors" >"$R/corrupt/model.safetensors"

	# Help texts.
	lm version --version
	lm help help
	for c in compress inspect prune sae decompress eval report copy; do
		lm "help-$c" help "$c"
		lm "$c--help" "$c" --help
	done

	# Quick start.
	lm inspect-s260k inspect "$M"
	lm inspect-s260k-json inspect "$M" --json
	lm compress-quickstart compress "$M" -o "$R/s260k" --sparsity 0.2 --format auto \
		--text "$T" --max-ppl-ratio 1.2 --sweep 0.1,0.2,0.3 "${THR[@]}"
	lm eval-s260k-base eval "$R/s260k" --base "$M" --text "$T" "${THR[@]}"
	lm decompress-s260k decompress "$R/s260k" -o "$R/s260k-dense"

	# Pruning (README and `help prune` examples, on stories260k).
	lm prune-auto prune "$M" -o "$R/s260k-50" --sparsity 0.5 --format auto
	lm prune-auto-json prune "$M" -o "$R/s260k-50-json" --sparsity 0.5 --format auto --json
	lm prune-dense prune "$M" -o "$R/s260k-50-dense" --sparsity 0.5 --format dense
	lm prune-default prune "$M" -o "$R/s260k-50-default" --sparsity 0.5
	lm prune-csr prune "$M" -o "$R/s260k-50-csr" --sparsity 0.5 --format csr
	lm prune-bitmask prune "$M" -o "$R/s260k-50-bitmask" --sparsity 0.5 --format bitmask
	lm prune-row prune "$M" -o "$R/s260k-50-row" --sparsity 0.5 --scope row
	lm prune-global prune "$M" -o "$R/s260k-50-global" --sparsity 0.5 --scope global
	lm prune-global-70-auto-json prune "$M" -o "$R/s260k-g70" --sparsity 0.7 --scope global --format auto --json
	lm prune-2of4 prune "$M" -o "$R/s260k-24" --pattern 2:4
	lm prune-2of4-bitmask prune "$M" -o "$R/s260k-24-bitmask" --pattern 2:4 --format bitmask
	lm prune-structured-rows prune "$M" -o "$R/s260k-rows" --sparsity 0.5 --structured rows
	lm prune-structured-cols prune "$M" -o "$R/s260k-cols" --sparsity 0.5 --structured cols --format auto
	lm prune-exclude prune "$M" -o "$R/s260k-mlp" --sparsity 0.6 --exclude 'model.layers.*.self_attn.*'
	lm prune-include prune "$M" -o "$R/s260k-emb" --sparsity 0.5 --include model.embed_tokens.weight --format csr
	lm prune-gpt2-bf16 prune "$G" -o "$R/gpt2-50" --sparsity 0.5 --format auto
	lm prune-force-first prune "$M" -o "$R/s260k-force" --sparsity 0.5 --format csr
	lm prune-force prune "$M" -o "$R/s260k-force" --sparsity 0.3 --format dense --force
	lm decompress-csr decompress "$R/s260k-50-csr" -o "$R/s260k-50-csr-dense"
	lm decompress-bitmask decompress "$R/s260k-50-bitmask" -o "$R/s260k-50-bitmask-dense"
	lm decompress-auto decompress "$R/s260k-50" -o "$R/s260k-50-auto-dense"
	lm inspect-pruned-csr inspect "$R/s260k-50-csr"
	lm inspect-pruned-bitmask-json inspect "$R/s260k-50-bitmask" --json

	# Fidelity on held-out text (README commands and the reference-table rows).
	lm eval-s260k eval "$M" --text "$T" "${THR[@]}"
	lm eval-s260k-json eval "$M" --text "$T" --json "${THR[@]}"
	lm eval-s260k-50-base-json eval "$R/s260k-50" --base "$M" --text "$T" --json "${THR[@]}"
	lm eval-s260k-50-base eval "$R/s260k-50" --base "$M" --text "$T" "${THR[@]}"
	lm eval-s260k-ctx128 eval "$M" --text "$T" --ctx 128 --stride 128 "${THR[@]}"
	lm eval-s260k-ctx256-stride128 eval "$M" --text "$T" --ctx 256 --stride 128 --json "${THR[@]}"
	lm eval-gpt2-bf16-ctx128 eval "$G" --text "$T" --ctx 128 --stride 128 "${THR[@]}"
	lm eval-gpt2-bf16-stride64 eval "$G" --text "$T" --ctx 128 --stride 64 --json "${THR[@]}"
	lm eval-stream-on eval "$R/s260k-50-csr" --base "$M" --text "$T" --stream on --max-tokens 600 "${THR[@]}"

	# One command for pipelines.
	lm compress-recipe compress "$M" -o "$R/s260k-recipe" --recipe "$RECIPE" "${THR[@]}"
	lm compress-print-recipe compress "$M" -o "$R/s260k-print" --recipe "$RECIPE" --print-recipe
	lm compress-print-recipe-flags compress "$M" -o "$R/s260k-print2" --sparsity 0.2 --format auto \
		--text "$T" --max-ppl-ratio 1.2 --sweep 0.1,0.2,0.3 --print-recipe
	lm compress-gate-fail compress "$M" -o "$R/s260k-gatefail" --sparsity 0.5 --format auto \
		--text "$T" --max-ppl-ratio 1.2 --min-top1 0.7 "${THR[@]}"
	lm compress-quiet compress "$M" -o "$R/s260k-quiet" --sparsity 0.3 --format csr --quiet
	lm eval-recipe-base-json eval "$R/s260k-recipe" --base "$M" --text "$T" --json "${THR[@]}"
	lm decompress-recipe decompress "$R/s260k-recipe" -o "$R/s260k-recipe-dense"
	# `report` rewrites report.md/html in place: run it on a copy so that compress's own
	# reports are compared too.
	cp -a "$R/s260k-recipe" "$R/s260k-recipe-rerendered"
	lm report-charts report "$R/s260k-recipe-rerendered" --charts "$R/charts"
	cp -a "$R/s260k" "$R/s260k-rerendered"
	lm report-quickstart report "$R/s260k-rerendered" --charts "$R/charts-quickstart"

	# Copy (help examples; a shard size that shards this 1 MB model).
	lm copy-sharded copy "$M" -o "$R/s260k-sharded" --max-shard-size 300kB
	lm copy-one-file copy "$R/s260k-sharded" -o "$R/s260k-one-file" --max-shard-size 100GB
	lm inspect-sharded inspect "$R/s260k-sharded"
	lm prune-sharded prune "$R/s260k-sharded" -o "$R/s260k-sharded-50" --sparsity 0.5 --format auto --max-shard-size 300kB

	# Sparse autoencoder (README section and `help sae` example).
	lm sae-readme sae "$M" -o "$R/s260k-sae" --latents 192 --k 4 --lr 0.001 --epochs 3000 \
		--compare svd --text "$T" "${THR[@]}"
	lm sae-help-json sae "$M" -o "$R/s260k-sae-json" --latents 192 --k 4 --compare svd --text "$T" --json "${THR[@]}"
	lm sae-l1 sae "$M" -o "$R/s260k-sae-l1" --latents 128 --l1 0.05 --lr 0.001 --epochs 2000 "${THR[@]}"
	lm eval-sae-base eval "$R/s260k-sae" --base "$M" --text "$T" "${THR[@]}"
	lm decompress-sae decompress "$R/s260k-sae" -o "$R/s260k-sae-dense"

	# ONNX models.
	lm inspect-onnx inspect "$X"
	lm inspect-onnx-json inspect "$X" --json
	lm inspect-onnx-past inspect "$PAST"
	lm prune-onnx prune "$X" -o "$R/s260k-onnx" --sparsity 0.5
	lm prune-onnx-sparse prune "$X" -o "$R/s260k-onnx-sparse" --sparsity 0.5 --format sparse
	lm prune-onnx-auto-json prune "$X" -o "$R/s260k-onnx-auto" --sparsity 0.9 --format auto --json
	lm prune-onnx-external prune "$X" -o "$R/s260k-onnx-ext" --sparsity 0.5 --external-data
	lm prune-onnx-2of4 prune "$X" -o "$R/s260k-onnx-24" --pattern 2:4
	lm eval-onnx-base eval "$R/s260k-onnx/model.onnx" --tokenizer "$M/tokenizer.json" \
		--base "$X" --text "$T" "${THR[@]}"
	lm eval-onnx-base-json eval "$R/s260k-onnx-ext/model.onnx" --tokenizer "$M/tokenizer.json" \
		--base "$X" --text "$T" --json "${THR[@]}"
	lm decompress-onnx-sparse decompress "$R/s260k-onnx-sparse" -o "$R/s260k-onnx-sparse-dense"
	lm decompress-onnx-ext decompress "$R/s260k-onnx-ext" -o "$R/s260k-onnx-ext-dense"
	lm inspect-onnx-ext inspect "$R/s260k-onnx-ext/model.onnx"

	# Error cases: the message on stderr, the exit code, and that nothing is written.
	lm err-no-args
	lm err-unknown-command bogus
	lm err-help-unknown help bogus
	lm err-unknown-flag prune "$M" -o "$R/err-flag" --sparsity 0.5 --bogus
	lm err-missing-model inspect "$SHARED/models/no-such-model"
	lm err-missing-model-prune prune "$SHARED/models/no-such-model" -o "$R/err-missing" --sparsity 0.5
	lm err-missing-model-eval eval "$SHARED/models/no-such-model" --text "$T"
	lm err-prune-no-sparsity prune "$M" -o "$R/err-nosparsity"
	lm err-prune-no-output prune "$M" --sparsity 0.5
	lm err-prune-bad-sparsity prune "$M" -o "$R/err-badsparsity" --sparsity 1.5
	lm err-prune-glob-nomatch prune "$M" -o "$R/err-glob" --sparsity 0.5 --include 'model.layers.*.nomatch'
	lm err-prune-nonempty-out prune "$M" -o "$R/s260k-50" --sparsity 0.3
	lm err-prune-out-inside-input prune "$R/s260k-dense" -o "$R/s260k-dense/inner" --sparsity 0.5
	lm err-bad-recipe-key compress "$M" -o "$R/err-recipe" --recipe "$R/bad-recipe-key.yaml"
	lm err-recipe-gates-no-eval compress "$M" -o "$R/err-recipe2" --recipe "$R/bad-recipe-gates.yaml"
	lm err-missing-recipe compress "$M" -o "$R/err-recipe3" --recipe "$R/no-such-recipe.yaml"
	lm err-corrupt-inspect inspect "$R/corrupt"
	lm err-corrupt-prune prune "$R/corrupt" -o "$R/err-corrupt" --sparsity 0.5
	lm err-eval-ctx eval "$M" --text "$T" --ctx 1024
	lm err-eval-no-text eval "$M"
	lm err-eval-missing-text eval "$M" --text "$R/no-such-text.txt"
	lm err-sae-k sae "$M" -o "$R/err-sae" --latents 8 --k 8
	lm err-onnx-unsupported eval "$PAST" --text "$T"
	lm err-report-missing report "$R/no-such-out"
	lm err-decompress-missing decompress "$SHARED/models/no-such-model" -o "$R/err-decompress"

	# Anything the run changed outside its own directory would be a bug; record it.
	{ find "$SHARED" "$RECIPE" -newer "$R/_cli/.start" -print 2>/dev/null || true; } | sort >"$R/_cli/inputs-modified.txt"
	rm -f "$R/_cli/.start"
}

# ---- normalization and comparison -------------------------------------------------------------

normalize() {
	sed -E \
		-e 's/lmsparse [^ "<>]+( \(revision [^)]*\))? go[0-9][^ "<>]*( X:[^ "<>]+)? [a-z0-9]+\/[a-z0-9]+/lmsparse <VERSION>/g' \
		-e 's/"(seconds|tokens_per_second|peak_rss_bytes)": *-?[0-9][0-9.eE+-]*/"\1": <N>/g' \
		-e '/^lmsparse: compress: /s/\([0-9]+\.[0-9]+ s\)$/(<T> s)/' \
		-e 's/\([0-9]+(\.[0-9]+)? s, final loss /(<T> s, final loss /' \
		-e '/^speed /{s/^speed( +)[-+0-9.a-zA-Z]+ tokens\/s/speed\1<N> tokens\/s/;s/, [0-9]+\.[0-9]+ s\)$/, <T> s)/;}' \
		-e '/peak RSS/{s/([a-z_]+) [0-9]+\.[0-9]+( ?)s([, <·]|$)/\1 <T>\2s\3/g;s/peak RSS [0-9][0-9.,]*( [kMGTP]i?B)?/peak RSS <RSS>/g;}' \
		"$1"
}

is_binary() { ! tr -d '\000' <"$1" | cmp -s - "$1"; }

SAME=0
DIFFER=0
same() { SAME=$((SAME + 1)); printf 'same  %s\n' "$1"; }
differ() { # NAME DETAIL
	DIFFER=$((DIFFER + 1))
	printf 'DIFF  %s\n' "$1"
	[ -n "$2" ] && printf '%s\n' "$2" | head -n 20 | sed 's/^/      /'
}

safetensors_header() { # the JSON header, one entry per line
	local n
	n=$(od -An -t u8 -N 8 "$1" 2>/dev/null | tr -d ' ')
	[ -n "$n" ] && [ "$n" -lt 100000000 ] 2>/dev/null || return 0
	tail -c +9 "$1" | head -c "$n" | sed -E 's/\},/},\n/g'
}

compare_file() { # NAME OLDFILE NEWFILE
	local name=$1 a=$2 b=$3 d
	if [ ! -e "$a" ]; then differ "$name" "only in new"; return; fi
	if [ ! -e "$b" ]; then differ "$name" "only in old"; return; fi
	local ma mb
	ma=$(stat -c '%F %a' "$a")
	mb=$(stat -c '%F %a' "$b")
	if [ "$ma" != "$mb" ]; then differ "$name" "type/mode: old $ma, new $mb"; return; fi
	[ -f "$a" ] || { same "$name"; return; }
	if is_binary "$a" || is_binary "$b"; then
		if cmp -s "$a" "$b"; then same "$name"; return; fi
		d="$(cmp "$a" "$b" 2>&1 | sed -E "s#^.*(differ|EOF)#\1#"); sizes: old $(stat -c %s "$a"), new $(stat -c %s "$b")"
		case "$name" in
		*.safetensors)
			d="$d"$'\n'"$(diff -u --label "old header" --label "new header" \
				<(safetensors_header "$a") <(safetensors_header "$b") | head -n 18)" ;;
		esac
		differ "$name" "$d"
		return
	fi
	if d=$(diff -u --label "old/$name" --label "new/$name" <(normalize "$a") <(normalize "$b")); then
		same "$name"
	else
		differ "$name" "$d"
	fi
}

START=$(date +%s)
echo "# cli_compare: old $OLD_BIN"
echo "#              new $NEW_BIN"
echo "#              workdir $WORKDIR (commands run in $REPO)"
RECIPE=$RECIPE_OLD
run_all "$OLD_BIN"
mv "$R" "$WORKDIR/old" || exit 2
FIRST=0
T_OLD=$(($(date +%s) - START))
RECIPE=$RECIPE_NEW
run_all "$NEW_BIN"
mv "$R" "$WORKDIR/new" || exit 2
T_NEW=$(($(date +%s) - START - T_OLD))
echo "# ran ${#ORDER[@]} commands per binary: old ${T_OLD}s, new ${T_NEW}s"

O=$WORKDIR/old
N=$WORKDIR/new

# 1. Each command: exit code, stdout, stderr.
for name in "${ORDER[@]}"; do
	ea=$(cat "$O/_cli/$name.exit" 2>/dev/null)
	eb=$(cat "$N/_cli/$name.exit" 2>/dev/null)
	if [ "$ea" = "$eb" ]; then same "$name: exit code ($ea)"; else differ "$name: exit code" "old $ea, new $eb"; fi
	compare_file "$name: stdout" "$O/_cli/$name.stdout" "$N/_cli/$name.stdout"
	compare_file "$name: stderr" "$O/_cli/$name.stderr" "$N/_cli/$name.stderr"
done
compare_file "inputs modified by the run (none expected)" "$O/_cli/inputs-modified.txt" "$N/_cli/inputs-modified.txt"
for side in old new; do
	if [ -s "$WORKDIR/$side/_cli/inputs-modified.txt" ]; then
		differ "inputs untouched by the $side run" "$(cat "$WORKDIR/$side/_cli/inputs-modified.txt")"
	fi
done

# 2. Every file and directory written, in either run.
while IFS= read -r rel; do
	compare_file "$rel" "$O/$rel" "$N/$rel"
done < <({ (cd "$O" && find . -mindepth 1 -not -path './_cli' -not -path './_cli/*'); \
	(cd "$N" && find . -mindepth 1 -not -path './_cli' -not -path './_cli/*'); } | sed 's#^\./##' | LC_ALL=C sort -u)

echo "$SAME same, $DIFFER differ ($(($(date +%s) - START)) s; outputs kept in $WORKDIR)"
[ "$DIFFER" -eq 0 ]
