#!/usr/bin/env bash
# Prepares what the GPU machine needs to check and time brm there (it has no Java and no network), as
# build/device.tar.xz (ignored by git; the device tool carries it) of build/device/:
#   jre/    a jlink runtime with the modules brm and JMH use (jdeps of benchmarks.jar), compressed
#   lib/    benchmarks.jar (JMH + brm + dependencies) and junit-platform-console-standalone.jar
#   tests/  the compiled tests of bindings/ and java/ (the CUDA parity tests among them)
#   native/ libbrm_cuda.so, built here by nvcc for sm_80 and sm_90 (+ PTX), and the emulator library
# Then, on the GPU machine, scripts/device-check.sh runs from the same checkout. Needs JDK 25, Maven and nvcc here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/jdk.sh"
brm_find_jdk || exit 1
cd "$ROOT"
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "device-bundle: nvcc not found: libbrm_cuda.so cannot be built" >&2; exit 1; }
mvn -B -ntp -q -pl bindings,java,benchmarks -am install -DskipTests
[ -f build/native/libbrm_cuda.so ] || { echo "device-bundle: build/native/libbrm_cuda.so was not built" >&2; exit 1; }
OUT="$ROOT/build/device"
rm -rf "$OUT"
mkdir -p "$OUT/lib" "$OUT/tests"
cp benchmarks/target/benchmarks.jar "$OUT/lib/"
JUNIT_PLATFORM="$(mvn -B -ntp -q help:evaluate -Dexpression=junit-platform.version -DforceStdout -pl java 2>/dev/null || true)"
case "$JUNIT_PLATFORM" in 1.*) ;; *) JUNIT_PLATFORM=1.14.1 ;; esac
mvn -B -ntp -q dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$JUNIT_PLATFORM" -DoutputDirectory="$OUT/lib"
cp -r bindings/target/test-classes "$OUT/tests/bindings"
cp -r java/target/test-classes "$OUT/tests/java"
mkdir -p "$OUT/native" && cp build/native/libbrm_cuda.so build/native/libbrm_cuda_emu.so "$OUT/native/"
# java.desktop (the plots' JFreeChart) is left out to fit the 64 MiB the device tool carries: nothing run there plots
MODULES="$("$JAVA_HOME/bin/jdeps" --print-module-deps --ignore-missing-deps --multi-release 25 benchmarks/target/benchmarks.jar | sed 's/java.desktop,//')"
"$JAVA_HOME/bin/jlink" --add-modules "$MODULES" --strip-java-debug-attributes --strip-native-debug-symbols=objcopy=/usr/bin/objcopy \
  --no-header-files --no-man-pages --compress zip-9 --output "$OUT/jre"
# one xz archive: the device tool carries at most 64 MiB with the checkout, and the runtime's libjvm.so compresses 3:1
tar -cJf "$ROOT/build/device.tar.xz" -C "$OUT" .
du -sh "$OUT/jre" "$OUT/lib" "$OUT/tests" "$OUT/native" "$ROOT/build/device.tar.xz"
echo "device-bundle: ready; carry build/device.tar.xz and run scripts/device-check.sh on the GPU machine"
