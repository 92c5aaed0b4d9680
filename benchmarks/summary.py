"""Summarises benchmarks/run-all.sh's results: GEMM GFLOP/s, forward and training tokens/s, brm against PyTorch.

usage: python3 benchmarks/summary.py RESULTS_DIR   (gemm.json, forward.json, train.json: JMH;
                                                    pytorch.jsonl, pytorch_train.jsonl: the peers)
Forward FLOPs per token are the executed counts of benchmarks/README.md (40.89 M at T=256, 38.54 M at T=64);
the forward's share is taken of the best GEMM rate measured at the same thread count. Training: one step on
P pairs of T tokens is 2·P·T tokens; brm's train.json (JMH, "shape" param PxT, one step per op) is optional
until that benchmark exists, and so is the training table (pytorch_train.jsonl).
"""
import json
import sys
from pathlib import Path

FLOP_PER_TOKEN = {256: 40_894_468, 64: 38_535_184}

out = Path(sys.argv[1])


def jmh_tokens_per_s(path, tokens):
    """JMH results → {((a, b), threads): tokens/s}; shape param "AxB", tokens(a, b) tokens per op."""
    result = {}
    for r in json.loads(path.read_text()):
        p = r["params"]
        a, b = map(int, p["shape"].split("x"))
        result[((a, b), int(p["threads"]))] = r["primaryMetric"]["score"] * tokens(a, b)
    return result


def peer_tokens_per_s(path, shape):
    """A peer's JSON lines → {(shape(line), threads, allocator): median tokens/s}."""
    result = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        result[(shape(r), r["threads"], r["allocator"])] = r["tokens_per_s_median"]
    return result


def cell(v):
    return f"{v:,.0f}" if v else "—"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "—"


gemm = {}
for r in json.loads((out / "gemm.json").read_text()):
    p = r["params"]
    n = int(p["size"])
    gemm[(r["benchmark"].rsplit(".", 1)[1], n, int(p["threads"]))] = r["primaryMetric"]["score"] * 2 * n ** 3 / 1e9
print("| GEMM (JMH) | threads | GFLOP/s |\n| --- | ---: | ---: |")
for (kind, n, t), g in sorted(gemm.items()):
    print(f"| {kind} {n}³ | {t} | {g:.1f} |")

brm = jmh_tokens_per_s(out / "forward.json", lambda b, t: b * t)
peer = peer_tokens_per_s(out / "pytorch.jsonl", lambda r: (r["batch"], r["seq"]))
print("\n| forward B×T | threads | brm tokens/s | brm GFLOP/s | % of best GEMM | PyTorch | PyTorch tuned glibc | brm / PyTorch | brm / tuned |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for ((b, t), threads), tps in sorted(brm.items(), key=lambda kv: (-kv[0][0][1], kv[0][1])):
    gflops = tps * FLOP_PER_TOKEN[t] / 1e9
    ceiling = max((g for (_, _, t), g in gemm.items() if t == threads), default=None)
    plain, tuned = peer.get(((b, t), threads, "glibc")), peer.get(((b, t), threads, "glibc-tuned"))
    share = f"{100 * gflops / ceiling:.0f}%" if ceiling else "—"
    print(f"| {b}×{t} | {threads} | {tps:,.0f} | {gflops:.1f} | {share} | {cell(plain)} | {cell(tuned)} | {ratio(tps, plain)} | {ratio(tps, tuned)} |")

if (out / "pytorch_train.jsonl").exists():
    peer = peer_tokens_per_s(out / "pytorch_train.jsonl", lambda r: (r["pairs"], r["seq"]))
    brm = jmh_tokens_per_s(out / "train.json", lambda p, t: 2 * p * t) if (out / "train.json").exists() else {}
    print("\n| training step P×2×T | threads | brm tokens/s | PyTorch | PyTorch tuned glibc | brm / PyTorch | brm / tuned |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (p, t), threads in sorted({key[:2] for key in peer}, key=lambda k: (-k[0][1], k[1])):
        tps = brm.get(((p, t), threads))
        plain, tuned = peer.get(((p, t), threads, "glibc")), peer.get(((p, t), threads, "glibc-tuned"))
        print(f"| {p}×2×{t} | {threads} | {cell(tps)} | {cell(plain)} | {cell(tuned)} | {ratio(tps, plain)} | {ratio(tps, tuned)} |")
