"""Summarises benchmarks/run-all.sh's results: GEMM GFLOP/s, forward and training tokens/s, Laplace-LoRA scoring and
fit, brm against PyTorch.

usage: python3 benchmarks/summary.py RESULTS_DIR   (gemm.json, forward.json, train.json, laplace_score.json,
                                                    laplace_fit.json: JMH; pytorch.jsonl, pytorch_train.jsonl,
                                                    pytorch_laplace.jsonl: the peers)
Forward FLOPs per token are the executed counts of benchmarks/README.md (40.89 M at T=256, 38.54 M at T=64);
the forward's share is taken of the best GEMM rate measured at the same thread count. Training: one step on
P pairs of T tokens is 2·P·T tokens; brm's train.json (JMH, "shape" param PxT, one step per op) is optional
until that benchmark exists, and so is the training table (pytorch_train.jsonl).
Laplace-LoRA (tables shown when either side's file exists, "—" for what is missing): scoring with σ² from
pytorch_laplace.jsonl's predictive lines and brm's laplace_score.json (JMH ScoreWithVarianceBenchmark, params
shape "BxT", threads, mode "mean" or "variance", one op = one batch of B responses); the K-FAC fit from its kfac
lines and brm's laplace_fit.json (JMH, params pairs and threads, one op = one whole fit: accumulation over
`pairs` pairs and the eigendecompositions), set against PyTorch's extrapolation to the same number of pairs:
accumulate_s_per_pair · pairs + eigh_s_full_rank.
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


SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def jmh_seconds_per_op(r):
    """A JMH result's score in seconds per op, whatever its mode's unit (ops/s, ops/ms, s/op, ms/op, ...)."""
    score, unit = r["primaryMetric"]["score"], r["primaryMetric"]["scoreUnit"]
    per, _, of = unit.partition("/")
    return SECONDS[of] / score if per == "ops" else score * SECONDS[per]


def jmh_lines(name):
    return json.loads((out / name).read_text()) if (out / name).exists() else []


def peer_lines(mode):
    path = out / "pytorch_laplace.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in lines if r["mode"] == mode]


def cell(v, digits=0):
    return f"{v:,.{digits}f}" if v else "—"


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

score = {(p["shape"], int(p["threads"]), p["mode"]): int(p["shape"].split("x")[0]) / jmh_seconds_per_op(r)
         for r in jmh_lines("laplace_score.json") for p in [r["params"]]}  # responses/s
predictive = {(f"{r['batch']}x{r['seq']}", r["threads"], r["allocator"]): r for r in peer_lines("predictive")}
rows = sorted({k[:2] for k in score} | {k[:2] for k in predictive})
if rows:
    print("\n| μ + σ² B×T | threads | brm μ responses/s | brm μ + σ² | brm σ² cost | PyTorch forward | PyTorch μ + σ² "
          "| PyTorch tuned glibc μ + σ² | PyTorch σ² cost | brm / PyTorch (μ + σ²) | brm / tuned |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for shape, threads in rows:
    mean, var = score.get((shape, threads, "mean")), score.get((shape, threads, "variance"))
    plain, tuned = predictive.get((shape, threads, "glibc"), {}), predictive.get((shape, threads, "glibc-tuned"), {})
    torch_var, tuned_var = plain.get("responses_per_s_median"), tuned.get("responses_per_s_median")
    torch_cost = plain.get("time_with_variance_over_forward_median")
    print(f"| {shape.replace('x', '×')} | {threads} | {cell(mean, 2)} | {cell(var, 2)} | {ratio(mean, var)} "
          f"| {cell(plain.get('forward_responses_per_s_median'), 2)} | {cell(torch_var, 2)} | {cell(tuned_var, 2)} "
          f"| {f'{torch_cost:.2f}×' if torch_cost else '—'} | {ratio(var, torch_var)} | {ratio(var, tuned_var)} |")

fit = {(int(p["pairs"]), int(p["threads"])): jmh_seconds_per_op(r)
       for r in jmh_lines("laplace_fit.json") for p in [r["params"]]}
kfac = {(r["threads"], r["allocator"]): r for r in peer_lines("kfac")}
threads_seen = sorted({t for t, _ in kfac} | {t for _, t in fit})
if threads_seen:
    print("\n| K-FAC fit, batch P×2×T | threads | PyTorch s/pair (accumulate) | PyTorch eigh s (24 factors, full rank) "
          "| PyTorch measured s (pairs) | PyTorch s, 1000 pairs (extrapolated) | PyTorch tuned glibc, 1000 pairs "
          "| brm pairs | brm s | PyTorch s at brm's pairs (extrapolated) | PyTorch / brm |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for threads in threads_seen:
    plain, tuned = kfac.get((threads, "glibc")), kfac.get((threads, "glibc-tuned"), {})
    batch = f"{plain['pairs']}×2×{plain['seq']}" if plain else "—"
    per_pair = f"{plain['accumulate_s_per_pair']:.3f}" if plain else "—"
    measured = f"{plain['total_s_measured']:.1f} ({plain['pairs_measured']})" if plain else "—"
    plain = plain or {}
    for pairs in sorted(p for p, t in fit if t == threads) or [None]:
        brm = fit.get((pairs, threads))
        at_brm = plain["accumulate_s_per_pair"] * pairs + plain["eigh_s_full_rank"] if plain and pairs else None
        print(f"| {batch} | {threads} | {per_pair} | {cell(plain.get('eigh_s_full_rank'), 1)} | {measured} "
              f"| {cell(plain.get('total_s_1000_pairs_extrapolated'))} "
              f"| {cell(tuned.get('total_s_1000_pairs_extrapolated'))} | {pairs or '—'} | {cell(brm, 1)} "
              f"| {cell(at_brm)} | {ratio(at_brm, brm)} |")
