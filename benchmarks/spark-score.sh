#!/usr/bin/env bash
# brm spark-score in local[2] against brm score in one process, on the same rows in the same run:
# 100,000 short rows (8-16 random token ids) scored by stories260K with a fresh head (--init-head 1).
# Spark's start-up cost is the time of a 10-row job. Needs the spark module
# (mvn -B -ntp -Pspark -pl spark -am install -DskipTests) and the data folder (BRM_DATA or ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${BRM_DATA:-$ROOT/../shared/data}"
ROWS="${ROWS:-100000}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
brm() { "$ROOT/brm" "$@"; }
seconds() { local t0=$(date +%s.%N); "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }; echo "$(date +%s.%N) - $t0" | bc; }

brm import llama2c --checkpoint "$DATA/stories260K/stories260K.bin" --tokenizer "$DATA/stories260K/tok512.bin" --out "$WORK/model" >/dev/null 2>&1
python3 - "$WORK" "$ROWS" <<'PY'
import json, random, sys
work, n = sys.argv[1], int(sys.argv[2])
r = random.Random(1)
for name, count in (("rows", n), ("small", 10)):
    with open(f"{work}/{name}.jsonl", "w") as f:
        for i in range(count):
            f.write(json.dumps({"id": i, "input_ids": [r.randrange(3, 512) for _ in range(r.randint(8, 16))]}) + "\n")
PY
MODEL=(--model "$WORK/model" --init-head 1)
cli=$(seconds brm score "${MODEL[@]}" --input "$WORK/rows.jsonl" --output "$WORK/score.jsonl")
startup=$(seconds brm spark-score --master 'local[2]' "${MODEL[@]}" --input "$WORK/small.jsonl" --output "$WORK/spark-small")
spark=$(seconds brm spark-score --master 'local[2]' "${MODEL[@]}" --input "$WORK/rows.jsonl" --output "$WORK/spark")
python3 - "$WORK" <<'PY'
import glob, json, sys
work = sys.argv[1]
cli = {o["id"]: o["reward"] for o in map(json.loads, open(f"{work}/score.jsonl"))}
spark = {o["id"]: o["reward"] for f in glob.glob(f"{work}/spark/part-*.json") for o in map(json.loads, open(f))}
assert cli.keys() == spark.keys(), "rows differ"
worst = max(abs(cli[i] - spark[i]) / max(1, abs(cli[i])) for i in cli)
assert worst <= 1e-6, f"rewards differ by {worst}"
print(f"rewards agree (max relative difference {worst:.1e})")
PY
printf 'brm score (one process)      %6.1f s  %8.0f rows/s\n' "$cli" "$(echo "$ROWS / $cli" | bc -l)"
printf 'brm spark-score local[2]     %6.1f s  %8.0f rows/s (whole run)\n' "$spark" "$(echo "$ROWS / $spark" | bc -l)"
printf 'spark-score start-up         %6.1f s  (a 10-row job)\n' "$startup"
printf 'spark-score minus start-up   %6.1f s  %8.0f rows/s\n' "$(echo "$spark - $startup" | bc -l)" "$(echo "$ROWS / ($spark - $startup)" | bc -l)"
