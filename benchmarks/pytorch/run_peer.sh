#!/usr/bin/env bash
# Runs a PyTorch peer, the forward one (forward_peer.py), the training one (train_peer.py, PEER=train), the
# Laplace one (laplace_peer.py, PEER=laplace: --mode predictive, then --mode kfac) or the generation one
# (generate_peer.py, PEER=generate), in one process per thread count (1, 2) and mode, twice:
#   glibc        the environment as it is (what users run; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE left alone)
#   glibc-tuned  GLIBC_TUNABLES keeps freed buffers in the heap (no mmap per large tensor, no trimming)
# and writes every JSON line to the results file.
#
# usage: benchmarks/pytorch/run_peer.sh [results.jsonl]
#        (default benchmarks/results/pytorch.jsonl, with PEER=train benchmarks/results/pytorch_train.jsonl,
#        with PEER=laplace benchmarks/results/pytorch_laplace.jsonl, with PEER=generate benchmarks/results/pytorch_generate.jsonl)
# env:   PEER           forward (default), train, laplace or generate
#        PEER_MODEL     generate: stories260K imported by brm (default: imported from the data folder into a temporary folder)
#        PEER_BLAS_DIR  folder holding an optimized libblas.so.3 (and OpenBLAS's liblapack.so.3), put first on
#                       LD_LIBRARY_PATH (see README)
#        PEER_SHAPES    shape list: forward BxT (default 16x256,64x64), train PxT pairs x tokens (default 8x256);
#                       laplace has fixed shapes (16x256 scored, 8x2x256 per K-FAC batch)
#        PEER_REPS      timed forwards / steps / scored batches per shape (default 7 forward, 5 train, 5 laplace)
#        PEER_PAIRS     laplace: pairs timed in the K-FAC pass (default 64; extrapolated to 1000)
#        PEER_ALLOW_REFERENCE_BLAS=1  run even on the netlib reference BLAS (about 40 tokens/s forward: hours)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEER="${PEER:-forward}"
case "$PEER" in
  forward) DEFAULT_RESULTS="$ROOT/benchmarks/results/pytorch.jsonl" ;;
  train) DEFAULT_RESULTS="$ROOT/benchmarks/results/pytorch_train.jsonl" ;;
  laplace) DEFAULT_RESULTS="$ROOT/benchmarks/results/pytorch_laplace.jsonl" ;;
  generate) DEFAULT_RESULTS="$ROOT/benchmarks/results/pytorch_generate.jsonl" ;;
  *) echo "run_peer.sh: PEER must be forward, train, laplace or generate, not $PEER" >&2; exit 1 ;;
esac
RESULTS="${1:-$DEFAULT_RESULTS}"
PYTHON=/usr/bin/python3  # Debian's python3-torch; the pyenv python3 on PATH has no torch
TUNED=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184

if [[ -n "${PEER_BLAS_DIR:-}" ]]; then
  export LD_LIBRARY_PATH="$PEER_BLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
BLAS="$("$PYTHON" "$HERE/forward_peer.py" --show-blas)"
echo "BLAS: $BLAS" >&2
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}" >&2
if [[ "$BLAS" == netlib* && -z "${PEER_ALLOW_REFERENCE_BLAS:-}" ]]; then
  echo "run_peer.sh: torch links the netlib reference BLAS (about 1.6 GFLOP/s, minutes per 4096-token forward);" \
       "set PEER_BLAS_DIR to an OpenBLAS libblas.so.3 folder (benchmarks/README.md) or PEER_ALLOW_REFERENCE_BLAS=1" >&2
  exit 1
fi

ARGS=()
MODES=("")
if [[ "$PEER" == laplace ]]; then
  MODES=(predictive kfac)
  [[ -n "${PEER_PAIRS:-}" ]] && ARGS+=(--pairs "$PEER_PAIRS")
elif [[ "$PEER" == generate ]]; then
  MODEL="${PEER_MODEL:-}"
  if [[ -z "$MODEL" ]]; then
    MODEL="$(mktemp -d)/stories260K"
    DATA="${BRM_DATA:-$ROOT/../shared/data}/stories260K"
    "$ROOT/brm" import llama2c --checkpoint "$DATA/stories260K.bin" --tokenizer "$DATA/tok512.bin" --out "$MODEL" >&2
  fi
  ARGS+=(--model "$MODEL")
else
  [[ -n "${PEER_SHAPES:-}" ]] && ARGS+=(--shapes "$PEER_SHAPES")
fi
[[ -n "${PEER_REPS:-}" ]] && ARGS+=(--reps "$PEER_REPS")
mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"
peer() {  # peer THREADS [env assignments...]
  local threads="$1" mode
  shift
  for mode in "${MODES[@]}"; do
    env "$@" "$PYTHON" "$HERE/${PEER}_peer.py" ${mode:+--mode "$mode"} --threads "$threads" "${ARGS[@]}" \
      | tee -a "$RESULTS"
  done
}
for threads in 1 2; do
  peer "$threads"
  peer "$threads" GLIBC_TUNABLES="$TUNED"
done
echo "wrote $(wc -l < "$RESULTS") lines to $RESULTS" >&2
