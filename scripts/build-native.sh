#!/usr/bin/env bash
# Builds brm's native libraries into build/native with CMake (run by the Maven build of bindings/):
# libbrm_cuda_emu.so always (a C++ compiler is enough), libbrm_cuda.so when nvcc is found, unless
# BRM_CUDA=OFF. Without CMake or a C++ compiler it says so and exits 0: the CPU path needs neither, and
# the CUDA backend's tests are then skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build/native"
if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null; then
  echo "brm: native libraries skipped (needs cmake and a C++ compiler); the CUDA backend's tests will be skipped"
  exit 0
fi
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
mkdir -p "$BUILD"  # the configure log sits beside it
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBRM_CUDA="${BRM_CUDA:-ON}" >"$BUILD.configure.log" 2>&1 \
  || { cat "$BUILD.configure.log"; echo "brm: cmake configure failed (log above)"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)"
