#!/usr/bin/env bash
# The [cuda] check on a GPU machine, in one run: the CUDA parity tests on the GPU, the rewards of brm's CUDA
# backend against transformers + PEFT on the same random Pythia-70M/410M-shaped models, and the benchmarks of
# brm (JMH, brm.bench.DeviceBenchmark) against the PyTorch peer (benchmarks/pytorch/gpu_peer.py) side by side,
# ending with benchmarks/device_summary.py's table. Full log and result files in RESULTS.
#
# Prepare here: scripts/device-bundle.sh (makes build/device.tar.xz: a jlink runtime, the jars, the compiled
# tests, libbrm_cuda.so). On the GPU machine, from the checkout with build/device.tar.xz:
#   scripts/device-check.sh [RESULTS]            RESULTS defaults to $OUT (the device tool's) or build/device-out
# --only tests|bench runs the first part (bundle, parity tests) or the rest (models, rewards, benchmarks, table), so
# that a short device lease can take it in two calls of under 10 minutes each.
# --local checks the script here: the parity tests and brm score on the CPU emulator with a tiny model, the JMH
# benchmarks on the CPU backend with it, no PyTorch.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL=0 ONLY=all
while [ $# -gt 0 ]; do
  case "$1" in
    --local) LOCAL=1; shift ;;
    --only) ONLY="$2"; shift 2 ;;
    *) break ;;
  esac
done
case "$ONLY" in all|tests|bench) ;; *) echo "device-check: --only takes tests or bench, not $ONLY"; exit 2 ;; esac
RESULTS="${1:-${OUT:-$ROOT/build/device-out}}"
mkdir -p "$RESULTS"
exec > >(tee -a "$RESULTS/device-check.log") 2>&1
BUNDLE="${BRM_DEVICE_BUNDLE:-/tmp/brm-device}"
MODELS="${BRM_DEVICE_MODELS:-/tmp/brm-models}"
FAILED=()
step() { echo; echo "== $* ($(date -u +%H:%M:%S))"; }

step "bundle"
if [ ! -x "$BUNDLE/jre/bin/java" ]; then
  [ -f "$ROOT/build/device.tar.xz" ] || { echo "no build/device.tar.xz: run scripts/device-bundle.sh first and carry it"; exit 1; }
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE" && tar -xJf "$ROOT/build/device.tar.xz" -C "$BUNDLE" || exit 1
fi
if [ "$LOCAL" = 1 ]; then
  LIBRARY="$BUNDLE/native/libbrm_cuda_emu.so"; REQUIRE=""; NAMES=tiny
else
  LIBRARY="$BUNDLE/native/libbrm_cuda.so"; REQUIRE="-Dbrm.cuda.require=gpu"; NAMES=pythia-70m,pythia-410m
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv || true
  # cuSOLVER for the large K-FAC eigendecompositions (brm.bindings.cuda.Cusolver asks the loader for libcusolver.so.N):
  # the one in PyTorch's pip wheels (nvidia/cusolver/lib for CUDA 12, nvidia/cu13/lib for CUDA 13), with the folders
  # of the libraries it needs (cuBLAS, cuSPARSE, nvJitLink) beside it
  CUSOLVER_PATH="$(python3 - 2>/dev/null <<'PY'
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit
roots = list(nvidia.__path__)
if any(glob.glob(f"{r}/**/libcusolver.so*", recursive=True) for r in roots):
    print(":".join(sorted({os.path.dirname(p) for r in roots for p in glob.glob(f"{r}/**/lib*.so*", recursive=True)})))
PY
)"
  if [ -n "$CUSOLVER_PATH" ]; then export LD_LIBRARY_PATH="$CUSOLVER_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  echo "cuSOLVER from PyTorch's wheels: ${CUSOLVER_PATH:-none found (the large factors by Jacobi)}"
fi
JAVA=("$BUNDLE/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dbrm.home="$ROOT"
      -Dbrm.cuda.library="$LIBRARY" -Dbrm.cuda.emulator="$BUNDLE/native/libbrm_cuda_emu.so" $REQUIRE)
CP="$BUNDLE/lib/benchmarks.jar:$BUNDLE/tests/bindings:$BUNDLE/tests/java"

if [ "$ONLY" != bench ]; then
step "parity tests (every CUDA test class, on $( [ "$LOCAL" = 1 ] && echo the emulator || echo the GPU ))"
"${JAVA[@]}" -jar "$BUNDLE"/lib/junit-platform-console-standalone-*.jar execute --class-path "$CP" \
  --scan-class-path "$BUNDLE/tests/bindings:$BUNDLE/tests/java" --include-classname '.*(Cuda.*|TrainingFixture|Generator)Test' \
  --details=summary --details-theme=ascii --reports-dir="$RESULTS/junit" || FAILED+=("parity tests")
fi
if [ "$ONLY" = tests ]; then
  if [ ${#FAILED[@]} -gt 0 ]; then echo "device-check: FAILED: ${FAILED[*]}"; exit 1; fi
  echo "device-check: tests passed"; exit 0
fi

step "models ($NAMES)"
"${JAVA[@]}" -cp "$CP" brm.bench.DeviceModels "$MODELS" "$NAMES" || { echo "could not write the models"; exit 1; }

if [ "$LOCAL" = 0 ]; then
  step "PyTorch peer"
  PYTHONUNBUFFERED=1 python3 "$ROOT/benchmarks/pytorch/gpu_peer.py" --models "$MODELS" --names "$NAMES" --rewards "$RESULTS" \
    >"$RESULTS/pytorch.jsonl" || FAILED+=("PyTorch peer")
else
  PYTHONUNBUFFERED=1 python3 - "$RESULTS" <<'PY'  # stand-in reference ids (no PyTorch here): only the plumbing is checked
import json, random, sys
r = random.Random(15)
with open(f"{sys.argv[1]}/tiny-rewards.jsonl", "w") as f:
    for _ in range(4):
        f.write(json.dumps({"input_ids": [r.randrange(1, 50277) for _ in range(16)], "pytorch_reward": 0.0}) + "\n")
PY
fi

step "brm rewards on the same ids (brm score --backend cuda)"
for name in ${NAMES//,/ }; do
  [ -f "$RESULTS/$name-rewards.jsonl" ] || continue
  "${JAVA[@]}" -cp "$CP" brm.cli.Main score --backend cuda --model "$MODELS/$name/model" --adapter "$MODELS/$name/adapter" \
    --input "$RESULTS/$name-rewards.jsonl" --output "$RESULTS/$name-brm.jsonl" || FAILED+=("brm score $name")
done

step "brm benchmarks (JMH)"
# the forked JVMs get this JVM's options (JMH passes them on): the library, the models folder, the backend
if [ "$LOCAL" = 1 ]; then BACKEND=cpu; JMH=(-wi 0 -i 1 -r 1 -p model=tiny); else BACKEND=cuda; JMH=(-p model="$NAMES" -p precision=fp32,bf16); fi
"${JAVA[@]}" -cp "$CP" -Dbrm.bench.models="$MODELS" -Dbrm.backend="$BACKEND" org.openjdk.jmh.Main 'brm.bench.DeviceBenchmark' \
  "${JMH[@]}" -rf json -rff "$RESULTS/brm.json" || FAILED+=("brm benchmarks")
if [ "$LOCAL" = 0 ]; then
  "${JAVA[@]}" -cp "$CP" org.openjdk.jmh.Main 'brm.bench.CudaGemmBenchmark.gemm' -p size=4096 -rf json -rff "$RESULTS/brm-gemm.json" \
    || FAILED+=("brm GEMM benchmark")
fi

step "summary"
python3 "$ROOT/benchmarks/device_summary.py" "$RESULTS" | tee "$RESULTS/summary.txt"
if [ ${#FAILED[@]} -gt 0 ]; then echo "device-check: FAILED: ${FAILED[*]}"; exit 1; fi
echo "device-check: passed"
