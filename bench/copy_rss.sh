#!/usr/bin/env bash
# Peak RSS and wall time of `lmsparse copy` on a 1 GB synthetic checkpoint
# (16 F32 tensors of 64 MiB), against `cp` of the same file, measured in one
# run with /usr/bin/time -v. Usage: bench/copy_rss.sh [WORKDIR] [TOTAL] [TENSOR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
total=${2:-1073741824}
tensor=${3:-67108864}
mkdir -p "$work"
go build -o "$work/lmsparse" ./cmd/lmsparse
mkdir -p "$work/in"
go run ./testdata/gen/mkmodel -synthetic "$total" -tensor "$tensor" -o "$work/in/model.safetensors"
cat "$work/in/model.safetensors" > /dev/null # warm the page cache for both

measure() { # name, command...
  local name=$1; shift
  # Start each run from the same state: the input in the page cache and no
  # dirty data of an earlier run still being written back.
  sync; sleep 1
  /usr/bin/time -v "$@" 2> "$work/$name.time" > /dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$work/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/$name.time")
  printf '%-10s wall %-8s peak RSS %7d KiB\n' "$name" "$wall" "$rss"
}
for i in 1 2 3; do
  rm -rf "$work/out" "$work/cp.safetensors"
  measure "cp" sh -c "cp '$work/in/model.safetensors' '$work/cp.safetensors' && sync '$work/cp.safetensors'"
  measure "lmsparse" "$work/lmsparse" copy "$work/in/model.safetensors" -o "$work/out"
done
echo "largest tensor: $((tensor / 1024)) KiB; RSS budget (2x largest + 64 MiB): $(((2 * tensor + 67108864) / 1024)) KiB"
