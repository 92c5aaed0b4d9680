#!/usr/bin/env bash
# brm spark-score on a real Spark standalone cluster, on this machine and on the loopback address only:
# a master and one worker (1 core, 2 GB) started from the Maven jars the way Spark's sbin scripts start
# them (spark-class: Spark's launcher builds the java command with its module options), then the two
# cluster paths of the README, each checked against brm score on the same rows (identical numbers):
#   1. ./brm spark-score --master spark://127.0.0.1:PORT ...  (the launcher's driver ships the shaded jar)
#   2. spark-submit --master spark://127.0.0.1:PORT ... brm-spark-all.jar spark-score ...  (SparkSubmit
#      through Spark's launcher, as bin/spark-submit runs it: spark-submit itself is not installed)
# The model is stories260K with a LoRA adapter trained here and its Laplace posterior, so reward, var,
# std and penalized all travel. Every port is picked by the system (port 0), every socket the cluster's
# JVMs listen on is checked to be on 127.0.0.1, every step has a time limit, and everything started here
# is stopped on exit.
# Needs the spark module (mvn -B -ntp -Pspark -pl spark -am package -DskipTests), python3 and the data
# folder (BRM_DATA or ../shared/data). KEEP=1 keeps the work folder (logs) for a look afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/jdk.sh"
brm_find_jdk >/dev/null
DATA="${BRM_DATA:-$ROOT/../shared/data}"
TARGET="$ROOT/spark/target"
for f in brm-spark.jar brm-spark-all.jar spark-classpath.txt; do
  [ -f "$TARGET/$f" ] || { echo "cluster-check: $TARGET/$f is missing; build it: mvn -B -ntp -Pspark -pl spark -am package -DskipTests" >&2; exit 1; }
done
WORK="$(mktemp -d /tmp/brm-cluster.XXXXXX)"
GROUPS_STARTED=()  # process groups (setsid) of the master, the worker (and its executors) and the drivers

stop_all() {
  local g
  for g in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for g in "${GROUPS_STARTED[@]}"; do pgrep -g "$g" >/dev/null && alive=1 || true; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for g in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  if [ "${KEEP:-}" = 1 ]; then echo "cluster-check: work folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap stop_all EXIT
trap 'echo "cluster-check: failed at line $LINENO" >&2' ERR
trap 'exit 130' INT TERM

# spark-class CLASS ARGS: exec the java command Spark's launcher builds for CLASS (bin/spark-class's way).
# The launcher prints messages line by line, then a NUL line, then the command's words NUL-terminated.
spark_class() {
  local cmd=() arg delim=$'\n'
  while IFS= read -r -d "$delim" arg; do
    if [ -z "$delim" ]; then cmd+=("$arg"); elif [ -z "$arg" ]; then delim=''; else echo "$arg"; fi
  done < <("$JAVA_HOME/bin/java" -Xmx128m -cp "$SPARK_HOME/jars/*" org.apache.spark.launcher.Main "$@")
  [ "${#cmd[@]}" -gt 0 ] || { echo "cluster-check: Spark's launcher built no command for $1" >&2; return 1; }
  exec "${cmd[@]}"
}
# started LOG COMMAND...: COMMAND in the background in a process group of its own (GROUPS_STARTED).
started() {
  local log="$1"; shift
  setsid "$@" >"$log" 2>&1 < /dev/null &
  GROUPS_STARTED+=("$!")
}
# listeners: the TCP sockets the processes started here listen on ("ADDRESS:PORT pid=PID").
listeners() {
  local g pids=""
  for g in "${GROUPS_STARTED[@]}"; do pids="$pids $(pgrep -g "$g" | tr '\n' ' ' || true)"; done
  ss -ltnpH | while read -r _ _ _ local _ users; do
    for p in $pids; do case "$users" in *"pid=$p,"*) echo "$local pid=$p" ;; esac; done
  done
}
# loopback_only TAG: fails when any of those sockets is not on 127.0.0.1; notes them in sockets.TAG.
loopback_only() {
  local bad
  listeners >> "$WORK/sockets.$1"
  bad=$(grep -v -E '^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):' "$WORK/sockets.$1" || true)
  [ -z "$bad" ] || { echo "cluster-check: not on loopback ($1): $bad" >&2; exit 1; }
}
sockets() { sort -u "$WORK/sockets.$1" | grep -c . || true; }  # sockets TAG: how many loopback_only TAG saw
# wait_for SECONDS FILE PATTERN: the first line of FILE matching PATTERN, written by the last process started.
wait_for() {
  for _ in $(seq $(( $1 * 5 ))); do
    grep -m1 -E "$3" "$2" 2>/dev/null && return 0
    kill -0 "${GROUPS_STARTED[-1]}" 2>/dev/null || break
    sleep 0.2
  done
  echo "cluster-check: no '$3' in $2 (waited at most $1 s):" >&2; tail -20 "$2" >&2; exit 1
}
seconds_since() { echo "$(date +%s.%N) - $1" | bc; }

# --- the model, the rows, the reference ---------------------------------------------------------------
t0=$(date +%s.%N)
brm() { timeout 600 "$ROOT/brm" "$@" 2>"$WORK/brm.log" || { echo "cluster-check: brm $1 failed:" >&2; tail -20 "$WORK/brm.log" >&2; return 1; }; }
brm import llama2c --checkpoint "$DATA/stories260K/stories260K.bin" --tokenizer "$DATA/stories260K/tok512.bin" --out "$WORK/model" >/dev/null
python3 - "$WORK" <<'PY'
import json, random, sys
work = sys.argv[1]
r = random.Random(7)
good, bad = ["happy", "kind", "sunny", "shared", "laughed", "hugged"], ["sad", "broke", "cried", "lost", "angry", "fell"]
names = ["Lily", "Tom", "Ben", "Sue", "Max"]
def story(words):
    return " ".join(f"{r.choice(names)} was {r.choice(words)} and {r.choice(words)}." for _ in range(r.randint(1, 3)))
with open(f"{work}/pairs.jsonl", "w") as f:
    for i in range(24):
        f.write(json.dumps({"prompt": "Once upon a time,", "chosen": " " + story(good), "rejected": " " + story(bad)}) + "\n")
with open(f"{work}/rows.jsonl", "w") as f:  # 37 rows: the last batch of 16 is partial
    for i in range(37):
        f.write(json.dumps({"id": f"r{i}", "prompt": "Once upon a time,", "response": " " + story(good + bad), "tag": i % 3}) + "\n")
PY
brm train --model "$WORK/model" --data "$WORK/pairs.jsonl" --out "$WORK/adapter" --steps 6 --batch-size 4 --lora-r 4 --lr 1e-3 --seed 3 >/dev/null
brm laplace --model "$WORK/model" --adapter "$WORK/adapter" --data "$WORK/pairs.jsonl" >/dev/null
SCORE=(--model "$WORK/model" --adapter "$WORK/adapter" --k 1 --batch-size 16)
brm score "${SCORE[@]}" --input "$WORK/rows.jsonl" --output "$WORK/reference.jsonl"
printf 'model, adapter, posterior and brm score: %.1f s\n' "$(seconds_since "$t0")"

# same_as_reference DIR: the Spark output's numbers are brm score's, row for row.
same_as_reference() {
  python3 - "$WORK/reference.jsonl" "$1" <<'PY'
import glob, json, sys
ref = {o["id"]: o for o in map(json.loads, open(sys.argv[1]))}
out = [json.loads(l) for f in sorted(glob.glob(sys.argv[2] + "/part-*.json")) for l in open(f)]
got = {o["id"]: o for o in out}
assert len(out) == len(ref) and got.keys() == ref.keys(), f"{sys.argv[2]}: rows {sorted(got)} != {sorted(ref)}"
for i, o in got.items():
    for k in ("reward", "var", "std", "penalized"):
        assert o[k] == ref[i][k], f"{sys.argv[2]}: row {i} {k}: {o[k]} != brm score's {ref[i][k]}"
    assert o["tag"] == int(i[1:]) % 3, f"{sys.argv[2]}: row {i} lost its tag"
print(f"  {len(out)} rows: reward, var, std, penalized identical to brm score")
PY
}

# --- the cluster: a master and one worker on loopback -------------------------------------------------
# A Spark home for the launcher: jars/ holds the Maven jars (links) as a distribution's jars/ holds its
# own; work/ gets the executors' folders. spark-classpath.txt lacks Jackson, which Maven resolves as
# brm's (the launcher's driver has it from brm.jar's lib/): those jars stand in for Spark's (2.21.x both).
export SPARK_HOME="$WORK/spark-home" SPARK_SCALA_VERSION=2.13 SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_DIRS="$WORK/local"
mkdir -p "$SPARK_HOME/jars" "$SPARK_LOCAL_DIRS"
{ tr ":" "\n" < "$TARGET/spark-classpath.txt"; echo; ls "$ROOT"/java/target/lib/jackson-*.jar; } | while read -r jar; do ln -s "$jar" "$SPARK_HOME/jars/"; done
t0=$(date +%s.%N)
started "$WORK/master.log" bash -c "$(declare -f spark_class); spark_class org.apache.spark.deploy.master.Master --host 127.0.0.1 --port 0 --webui-port 0"
MASTER=$(wait_for 120 "$WORK/master.log" 'Starting Spark master at spark://' | grep -o 'spark://127\.0\.0\.1:[0-9]*') \
  || { echo "cluster-check: the master did not say its address" >&2; tail -20 "$WORK/master.log" >&2; exit 1; }
started "$WORK/worker.log" bash -c "$(declare -f spark_class); spark_class org.apache.spark.deploy.worker.Worker $MASTER --host 127.0.0.1 --port 0 --webui-port 0 --cores 1 --memory 2g"
wait_for 120 "$WORK/worker.log" 'Successfully registered with master' >/dev/null
loopback_only cluster
printf 'master %s and a worker (1 core, 2 GB) up: %.1f s (%d listening sockets, all on 127.0.0.1)\n' "$MASTER" "$(seconds_since "$t0")" "$(sockets cluster)"

# run_driver TAG NAME COMMAND...: a driver to its end (at most 300 s, log TAG.log) while its sockets and
# the executor's are watched.
run_driver() {
  local tag="$1" log="$WORK/$1.log" name="$2"; shift 2
  local t0; t0=$(date +%s.%N)
  started "$log" timeout 300 "$@"
  local driver="${GROUPS_STARTED[-1]}"
  while kill -0 "$driver" 2>/dev/null; do loopback_only "$tag"; sleep 1; done
  wait "$driver" || { echo "cluster-check: $name failed:" >&2; tail -30 "$log" >&2; exit 1; }
  printf '%s: %.1f s (%d listening sockets, all on 127.0.0.1)\n' "$name" "$(seconds_since "$t0")" "$(sockets "$tag")"
}

# 1. the brm launcher's cluster mode
run_driver brm-spark-score "brm spark-score --master $MASTER" \
  "$ROOT/brm" spark-score --master "$MASTER" "${SCORE[@]}" --input "$WORK/rows.jsonl" --output "$WORK/out-brm" --format json
# the executor's classpath is Spark's jars only: it ran brm from the shaded jar the driver shipped
compgen -G "$SPARK_HOME/work/app-*/*/brm-spark-all.jar" >/dev/null || { echo "cluster-check: the executor did not fetch the shaded jar" >&2; exit 1; }
same_as_reference "$WORK/out-brm"

# 2. spark-submit (the README's command) with the shaded jar
BRM_OPTS="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED"
run_driver spark-submit "spark-submit --master $MASTER" bash -c "$(declare -f spark_class); cd '$WORK' && spark_class org.apache.spark.deploy.SparkSubmit \"\$@\"" spark-submit \
  --master "$MASTER" --driver-java-options "$BRM_OPTS" \
  --conf spark.executor.extraJavaOptions="$BRM_OPTS" --conf spark.executorEnv.JAVA_HOME="$JAVA_HOME" \
  "$TARGET/brm-spark-all.jar" spark-score "${SCORE[@]}" --input "$WORK/rows.jsonl" --output "$WORK/out-submit" --format json
same_as_reference "$WORK/out-submit"
echo "cluster-check: both cluster paths agree with brm score"
