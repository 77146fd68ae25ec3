#!/usr/bin/env bash
# prune --format dense of a synthetic GPT-2-small-shaped F32 checkpoint
# (124M parameters, ~500 MB) against cp of the same file: wall time and
# peak RSS from /usr/bin/time -v, ROUNDS rounds (default 7) alternating the
# two, then the median and best of each and their ratios.
# Usage: bench/prune_rss.sh [WORKDIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
rounds=${2:-7}
mkdir -p "$work"
go build -o "$work/lmsparse" ./cmd/lmsparse
[ -f "$work/in/model.safetensors" ] || go run ./testdata/gen/mkmodel -arch gpt2-small -o "$work/in"
sync
cat "$work/in/model.safetensors" > /dev/null # warm the page cache for both

measure() { # name, command...
  local name=$1; shift
  # Start each run from the same state: the input in the page cache (read
  # again each time: on the development VM the kernel reclaims idle page
  # cache, and a run that faults the input in from the disk measured 2×)
  # and no dirty data of an earlier run still being written back.
  cat "$work/in/model.safetensors" > /dev/null
  sync; sleep 1
  /usr/bin/time -v "$@" 2> "$work/$name.time" > /dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$work/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/$name.time")
  printf '%-12s wall %-8s peak RSS %8d KiB\n' "$name" "$wall" "$rss"
  # m:ss.ss → seconds
  echo "$wall" | awk -F: '{print $1*60+$2}' >> "$work/$name.walls"
}
rm -f "$work"/*.walls
for i in $(seq 1 "$rounds"); do
  rm -rf "$work/out" "$work/cp.safetensors"
  measure "cp" sh -c "cp '$work/in/model.safetensors' '$work/cp.safetensors' && sync '$work/cp.safetensors'"
  measure "prune-dense" "$work/lmsparse" prune "$work/in" -o "$work/out" --sparsity 0.5
done
stat() { sort -n "$work/$1.walls" | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[int((NR+1)/2)], a[1]}'; }
read -r cpmed cpmin <<< "$(stat cp)"
read -r prmed prmin <<< "$(stat prune-dense)"
awk -v a="$prmed" -v b="$cpmed" -v c="$prmin" -v d="$cpmin" 'BEGIN {
  printf "median: prune %.2f s, cp %.2f s, ratio %.2f\n", a, b, a / b
  printf "best:   prune %.2f s, cp %.2f s, ratio %.2f\n", c, d, c / d }'
largest=$(( 50257 * 768 * 4 ))
echo "largest tensor (wte): $((largest / 1024)) KiB; RSS budget (2x largest + 64 MiB): $(((2 * largest + 67108864) / 1024)) KiB"
