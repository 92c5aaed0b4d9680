#!/usr/bin/env bash
# brm's performance numbers in one run: JMH GEMM (512³, 1024³) and the Pythia-70M-shaped forward
# (16×256, 64×64) at 1 and 2 threads, then the PyTorch peers (torch 1.13 + OpenBLAS, default and tuned
# glibc allocator) on the same machine: the forward, one LoRA training step (8 pairs × 2 × 256 tokens) and
# Laplace-LoRA (reward variance of 16×256, K-FAC fit), then a summary table with the ratios the README quotes.
#
# usage: benchmarks/run-all.sh [results-dir]     (default benchmarks/results; about 30 minutes)
# Needs Debian's python3-torch (apt-get install python3-torch) for the peer; fetches Debian's OpenBLAS
# into a temporary folder (never installed machine-wide, see benchmarks/README.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/benchmarks/results}"
. "$ROOT/scripts/jdk.sh"
brm_find_jdk
mkdir -p "$OUT"
(cd "$ROOT" && mvn -q -B -ntp -Dstyle.color=never -DskipTests install)
JMH=("$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector -jar "$ROOT/benchmarks/target/benchmarks.jar")

echo "== JMH: GEMM" >&2
"${JMH[@]}" GemmBenchmark -f 1 -wi 3 -i 5 -w 2 -r 3 -rf json -rff "$OUT/gemm.json" > "$OUT/gemm.txt"
echo "== JMH: forward" >&2
"${JMH[@]}" ForwardBenchmark -f 1 -wi 3 -i 5 -w 4 -r 4 -rf json -rff "$OUT/forward.json" > "$OUT/forward.txt"
echo "== JMH: training step" >&2
"${JMH[@]}" TrainBenchmark -f 1 -wi 3 -i 5 -w 6 -r 6 -rf json -rff "$OUT/train.json" > "$OUT/train.txt"
echo "== JMH: scoring with σ, Laplace fit" >&2
"${JMH[@]}" ScoreWithVarianceBenchmark -f 1 -wi 2 -i 4 -w 5 -r 5 -rf json -rff "$OUT/laplace_score.json" > "$OUT/laplace_score.txt"
"${JMH[@]}" LaplaceFitBenchmark -f 1 -wi 0 -i 2 -rf json -rff "$OUT/laplace_fit.json" > "$OUT/laplace_fit.txt"

echo "== PyTorch peer" >&2
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "run-all.sh: the peer needs Debian's python3-torch (apt-get install -y python3-torch)" >&2
  exit 1
fi
BLAS_DIR="${PEER_BLAS_DIR:-}"
if [[ -z "$BLAS_DIR" ]]; then
  TMP="$(mktemp -d)"
  (cd "$TMP" && apt-get download libopenblas0-pthread >/dev/null && dpkg -x libopenblas0-pthread_*.deb .)
  BLAS_DIR="$TMP/usr/lib/x86_64-linux-gnu/openblas-pthread"
fi
PEER_BLAS_DIR="$BLAS_DIR" "$ROOT/benchmarks/pytorch/run_peer.sh" "$OUT/pytorch.jsonl" > /dev/null
echo "== PyTorch training peer" >&2
PEER=train PEER_BLAS_DIR="$BLAS_DIR" "$ROOT/benchmarks/pytorch/run_peer.sh" "$OUT/pytorch_train.jsonl" > /dev/null
echo "== PyTorch Laplace peer" >&2
PEER=laplace PEER_BLAS_DIR="$BLAS_DIR" "$ROOT/benchmarks/pytorch/run_peer.sh" "$OUT/pytorch_laplace.jsonl" > /dev/null

/usr/bin/python3 "$ROOT/benchmarks/summary.py" "$OUT" | tee "$OUT/summary.md"
