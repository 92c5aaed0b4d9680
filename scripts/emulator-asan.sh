#!/usr/bin/env bash
# Runs the CUDA tests on the emulator built with AddressSanitizer: a kernel that reads or writes outside its
# device buffers (the emulator allocates exactly the bytes asked for) is reported with the kernel's source
# line instead of passing silently or crashing the JVM later. Slow (several minutes); not part of ./run-tests.
#   scripts/emulator-asan.sh [test class ...]     default: every CUDA test class of bindings/ and java/
# Needs what ./run-tests needs (JDK 25, Maven, CMake, g++ with libasan).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/jdk.sh"
brm_find_jdk || exit 1
cd "$ROOT"
BUILD="$ROOT/build/asan"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DBRM_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-fsanitize=address -fno-omit-frame-pointer" >"$BUILD.configure.log"
cmake --build "$BUILD" -j "$(nproc)" --target brm_cuda_emu
mvn -B -ntp -q -pl bindings,java -am install -DskipTests
mvn -B -ntp -q -pl java dependency:build-classpath -Dmdep.outputFile="$BUILD/classpath.txt"
mvn -B -ntp -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1 -DoutputDirectory="$BUILD"
CP="java/target/classes:java/target/test-classes:bindings/target/classes:bindings/target/test-classes:$(cat "$BUILD/classpath.txt")"
SELECT=()
if [ $# -gt 0 ]; then
  for c in "$@"; do SELECT+=(--select-class "$c"); done
else
  SELECT=(--scan-class-path "bindings/target/test-classes:java/target/test-classes" --include-classname '.*Cuda.*Test')
fi
# the JVM's own signal handling and allocations stay out of ASan's way; fibers switch stacks (swapcontext), which ASan warns about once
LD_PRELOAD="$(g++ -print-file-name=libasan.so)" \
ASAN_OPTIONS=detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:detect_stack_use_after_return=0:detect_odr_violation=0 \
  "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dbrm.home="$ROOT" \
  -Dbrm.cuda.library=/nonexistent -Dbrm.cuda.emulator="$BUILD/libbrm_cuda_emu.so" \
  -jar "$BUILD/junit-platform-console-standalone-1.14.1.jar" execute --class-path "$CP" "${SELECT[@]}" --details=summary --details-theme=ascii
