# Sourced by ./brm and ./run-tests: picks a JDK >= 25 and exports JAVA_HOME.
# Order: JAVA_HOME if it is >= 25, else Temurin 25 beside the system JDK, else any /usr/lib/jvm/*25*.
brm_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}
brm_find_jdk() {
  local candidate
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25-jdk* /usr/lib/jvm/*-25-* /usr/lib/jvm/jdk-25*; do
    if [ -n "$candidate" ] && [ -x "$candidate/bin/java" ]; then
      local major
      major=$(brm_java_major "$candidate")
      if [ -n "$major" ] && [ "$major" -ge 25 ]; then
        export JAVA_HOME="$candidate"
        return 0
      fi
    fi
  done
  echo "brm needs JDK 25 or newer: install one (for example Temurin 25) and set JAVA_HOME to it." >&2
  return 1
}
