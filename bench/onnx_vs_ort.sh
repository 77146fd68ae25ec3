#!/usr/bin/env bash
# lmsparse eval on ONNX models against ONNX Runtime (the npm package
# onnxruntime-node, installed here into WORKDIR for this benchmark only;
# no test uses it), side by side, alternating, ROUNDS rounds (default 3):
# tokens/s at ctx 512 and 2 threads, and peak RSS from /usr/bin/time -v.
#   - stories260k-onnx from ../shared, 124 windows (the first 100,000
#     characters of wiki.test.raw: 63,359 tokens);
#   - a GPT-2-small-shaped export (124M parameters, random weights from
#     testdata/gen/mkmodel, exported by bench/gpt2_onnx.py with Debian's
#     python3-torch), 8 windows.
# lmsparse's tokens/s is eval's own timing (windows scored, after loading);
# ONNX Runtime's, bench/ort_eval.js's over the same number of windows.
# OLD_BIN=path also runs an older lmsparse binary (e.g. main's) the same way.
# Usage: bench/onnx_vs_ort.sh [WORKDIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
rounds=${2:-3}
mkdir -p "$work"
shared=$(cd ../shared && pwd)
if [ ! -d "$work/ort/node_modules/onnxruntime-node" ]; then
  mkdir -p "$work/ort"
  # The CPU build ships in the package; its install script only fetches
  # CUDA libraries (from nuget.org), which this benchmark does not use.
  (cd "$work/ort" && npm init -y > /dev/null && ONNXRUNTIME_NODE_INSTALL=skip npm install --ignore-scripts onnxruntime-node > /dev/null)
fi
go build -o "$work/lmsparse" ./cmd/lmsparse
[ -f "$work/gpt2-small/model.safetensors" ] || go run ./testdata/gen/mkmodel -arch gpt2-small -o "$work/gpt2-small"
[ -f "$work/gpt2-small.onnx" ] || (cd /tmp && /usr/bin/python3 "$OLDPWD/bench/gpt2_onnx.py" "$work/gpt2-small" "$work/gpt2-small.onnx")
head -c 100000 "$shared/text/wikitext-2/wiki.test.raw" > "$work/wiki100k.txt"

measure() { # name, command...
  local name=$1; shift
  /usr/bin/time -v "$@" > "$work/$name.out" 2> "$work/$name.time" || { cat "$work/$name.out" "$work/$name.time" >&2; exit 1; }
  local tps rss
  if grep -q tokens_per_second "$work/$name.out"; then
    tps=$(awk -F': ' '/"tokens_per_second"/{gsub(",","",$2); print $2}' "$work/$name.out")
  else
    tps=$(sed -n 's/.*: \([0-9.]*\) tokens\/s.*/\1/p' "$work/$name.out")
  fi
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/$name.time")
  printf '%-22s %10.1f tokens/s  peak RSS %8d KiB\n' "$name" "$tps" "$rss"
  echo "$tps $rss" >> "$work/$name.runs"
}
rm -f "$work"/*.runs
ort=(node bench/ort_eval.js)
export NODE_PATH="$work/ort/node_modules"
for i in $(seq 1 "$rounds"); do
  echo "== round $i"
  measure s260k-lmsparse "$work/lmsparse" eval "$shared/models/stories260k-onnx/model.onnx" --tokenizer "$shared/models/stories260k/tokenizer.json" \
    --text "$work/wiki100k.txt" --ctx 512 --threads 2 --json
  [ -n "${OLD_BIN:-}" ] && measure s260k-old "$OLD_BIN" eval "$shared/models/stories260k-onnx/model.onnx" --tokenizer "$shared/models/stories260k/tokenizer.json" \
    --text "$work/wiki100k.txt" --ctx 512 --threads 2 --json
  measure s260k-ort "${ort[@]}" "$shared/models/stories260k-onnx/model.onnx" 512 124 2 512
  measure gpt2-lmsparse "$work/lmsparse" eval "$work/gpt2-small.onnx" --tokenizer "$shared/tokenizers/gpt2/hf/tokenizer.json" \
    --text "$work/wiki100k.txt" --ctx 512 --threads 2 --max-tokens 4096 --json
  [ -n "${OLD_BIN:-}" ] && measure gpt2-old "$OLD_BIN" eval "$work/gpt2-small.onnx" --tokenizer "$shared/tokenizers/gpt2/hf/tokenizer.json" \
    --text "$work/wiki100k.txt" --ctx 512 --threads 2 --max-tokens 4096 --json
  measure gpt2-ort "${ort[@]}" "$work/gpt2-small.onnx" 512 8 2 50257
done
median() { sort -n -k"$2" "$work/$1.runs" | awk -v c="$2" '{a[NR]=$c} END {print a[int((NR+1)/2)]}'; }
echo "== medians of $rounds rounds"
for m in s260k gpt2; do
  l=$(median "$m-lmsparse" 1) o=$(median "$m-ort" 1) lr=$(median "$m-lmsparse" 2) or=$(median "$m-ort" 2)
  awk -v m="$m" -v l="$l" -v o="$o" -v lr="$lr" -v or="$or" 'BEGIN {
    printf "%-6s lmsparse %.1f tokens/s, ONNX Runtime %.1f: %.2fx; peak RSS %.0f / %.0f MB\n", m, l, o, l / o, lr / 1024, or / 1024 }'
  if [ -f "$work/$m-old.runs" ]; then
    awk -v m="$m" -v l="$(median "$m-old" 1)" -v o="$o" -v r="$(median "$m-old" 2)" 'BEGIN {
      printf "%-6s old binary %.1f tokens/s: %.2fx ONNX Runtime; peak RSS %.0f MB\n", m, l, l / o, r / 1024 }'
  fi
done
