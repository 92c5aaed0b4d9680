"""Summarises benchmarks/run-all.sh's results: GEMM GFLOP/s, forward tokens/s, and brm against PyTorch.

usage: python3 benchmarks/summary.py RESULTS_DIR   (gemm.json, forward.json: JMH; pytorch.jsonl: the peer)
Forward FLOPs per token are the executed counts of benchmarks/README.md (40.89 M at T=256, 38.54 M at T=64);
the forward's share is taken of the best GEMM rate measured at the same thread count.
"""
import json
import sys
from pathlib import Path

FLOP_PER_TOKEN = {256: 40_894_468, 64: 38_535_184}

out = Path(sys.argv[1])
gemm = {}
for r in json.loads((out / "gemm.json").read_text()):
    p = r["params"]
    n = int(p["size"])
    gemm[(r["benchmark"].rsplit(".", 1)[1], n, int(p["threads"]))] = r["primaryMetric"]["score"] * 2 * n ** 3 / 1e9
print("| GEMM (JMH) | threads | GFLOP/s |\n| --- | ---: | ---: |")
for (kind, n, t), g in sorted(gemm.items()):
    print(f"| {kind} {n}³ | {t} | {g:.1f} |")

brm = {}
for r in json.loads((out / "forward.json").read_text()):
    p = r["params"]
    b, t = map(int, p["shape"].split("x"))
    brm[(b, t, int(p["threads"]))] = r["primaryMetric"]["score"] * b * t
peer = {}
for line in (out / "pytorch.jsonl").read_text().splitlines():
    r = json.loads(line)
    peer[(r["batch"], r["seq"], r["threads"], r["allocator"])] = r["tokens_per_s_median"]

print("\n| forward B×T | threads | brm tokens/s | brm GFLOP/s | % of best GEMM | PyTorch | PyTorch tuned glibc | brm / PyTorch | brm / tuned |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for (b, t, threads), tps in sorted(brm.items(), key=lambda kv: (-kv[0][1], kv[0][2])):
    gflops = tps * FLOP_PER_TOKEN[t] / 1e9
    ceiling = max((g for (_, _, t), g in gemm.items() if t == threads), default=None)
    plain, tuned = peer.get((b, t, threads, "glibc")), peer.get((b, t, threads, "glibc-tuned"))
    cell = lambda v: f"{v:,.0f}" if v else "—"
    ratio = lambda v: f"{tps / v:.2f}×" if v else "—"
    share = f"{100 * gflops / ceiling:.0f}%" if ceiling else "—"
    print(f"| {b}×{t} | {threads} | {tps:,.0f} | {gflops:.1f} | {share} | {cell(plain)} | {cell(tuned)} | {ratio(plain)} | {ratio(tuned)} |")
