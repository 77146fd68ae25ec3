#!/usr/bin/env bash
# Forward-pass throughput of lmsparse and PyTorch (Debian python3-torch) on
# the same checkpoints, the same token ids and the same thread counts, in one
# run: a synthetic GPT-2-small-shaped model (124M parameters, random weights
# from testdata/gen) and the real stories260k from ../shared, at ctx 512 and
# 1 and 2 threads. Usage: bench/eval_vs_torch.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
py=/usr/bin/python3
$py -c 'import torch' 2>/dev/null || { echo "needs Debian's python3-torch: apt-get install python3-torch libopenblas0-pthread" >&2; exit 1; }
# Debian's torch does its matrix products through libblas.so.3: without
# libopenblas0-pthread that is the reference BLAS, and PyTorch is ~15x slower.
readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3
# OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to its SSE3
# kernels (~5x slower); give PyTorch its best kernels (see BENCHMARKS.md).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q avx512f /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SkylakeX
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}"
go build -o "$work/forward" ./bench/forward
[ -f "$work/gpt2-small/model.safetensors" ] || go run ./testdata/gen/mkmodel -arch gpt2-small -o "$work/gpt2-small"
for m in "$work/gpt2-small" ../shared/models/stories260k; do
  [ -d "$m" ] || continue
  iters=3; [ "$(basename "$m")" = stories260k ] && iters=50
  for t in 1 2; do
    echo "== $(basename "$m") ctx 512 threads $t"
    "$work/forward" -model "$m" -ctx 512 -threads $t -iters $iters
    $py bench/torch_forward.py --model "$m" --ctx 512 --threads $t --iters $iters
  done
done
