#!/usr/bin/env python3
"""The table scripts/device-check.sh prints last: brm's CUDA backend (JMH, results/brm.json) against the PyTorch peer
(gpu_peer.py, results/pytorch.jsonl), measured in the same run on the same GPU, plus the reward agreement of the
two on the same models and ids (results/<model>-rewards.jsonl and results/<model>-brm.jsonl) and the goals of the
[cuda] issue. Medians throughout: JMH's per-iteration median and the peer's median of its repetitions.

usage: device_summary.py RESULTS_DIR
"""
import json
import sys
from pathlib import Path

# tokens per JMH operation of brm.bench.DeviceBenchmark (the shapes gpu_peer.py uses)
TOKENS = {"score": 32 * 256, "predictive": 16 * 256, "train": 8 * 2 * 256, "kfac": 8 * 2 * 256}


def seconds_per_op(metric):
    """JMH's median in seconds per operation, from a time per op (s/op, ms/op, us/op) or a throughput (ops/s)."""
    value, unit = metric["scorePercentiles"]["50.0"], metric["scoreUnit"]
    if unit == "ops/s":
        return 1 / value
    return value * {"s/op": 1, "ms/op": 1e-3, "us/op": 1e-6}[unit]


def brm_results(*paths):
    out = {}
    for path in paths:
        if path.exists():
            out.update(brm_file(path))
    return out


def brm_file(path):
    out = {}
    for r in json.loads(path.read_text()):
        op = r["benchmark"].rsplit(".", 1)[1]
        p = r.get("params", {})
        seconds = seconds_per_op(r["primaryMetric"])
        precision = p.get("precision", "fp32").lower()
        if op == "gemm":
            n = int(p.get("size", 4096))
            out[(f"{n}x{n}x{n}", f"gemm_{precision}")] = 2 * n ** 3 / seconds / 1e12
        else:
            out[(p["model"], op if precision == "fp32" else f"{op}_{precision}")] = TOKENS[op] / seconds
    return out


def peer_results(path):
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out[(r["model"], r["op"])] = r.get("tflops", r.get("tokens_per_s"))
    return out


def reward_agreement(results):
    rows = []
    for ref in sorted(results.glob("*-rewards.jsonl")):
        name = ref.name[: -len("-rewards.jsonl")]
        mine = results / f"{name}-brm.jsonl"
        if not mine.exists():
            rows.append((name, None))
            continue
        theirs = [json.loads(l)["pytorch_reward"] for l in ref.read_text().splitlines()]
        ours = [json.loads(l)["reward"] for l in mine.read_text().splitlines()]
        if len(theirs) != len(ours):
            rows.append((name, float("inf")))
            continue
        scale = max(abs(t) for t in theirs) or 1.0
        rows.append((name, max(abs(a - b) for a, b in zip(ours, theirs)) / scale))
    return rows


def main():
    results = Path(sys.argv[1])
    brm, peer = brm_results(results / "brm.json", results / "brm-gemm.json"), peer_results(results / "pytorch.jsonl")
    print(f"{'model':14} {'measure':16} {'brm':>12} {'PyTorch':>12} {'brm/PyTorch':>12}")
    ratios = {}
    for key in sorted(set(brm) | set(peer)):
        b, t = brm.get(key), peer.get(key)
        unit = "TFLOP/s" if key[1].startswith("gemm") else "tok/s"
        ratio = b / t if b and t else None
        ratios[key] = ratio
        fmt = lambda v: "-" if v is None else (f"{v:.1f}" if unit == "TFLOP/s" else f"{v:,.0f}")
        print(f"{key[0]:14} {key[1] + ' ' + unit:16} {fmt(b):>12} {fmt(t):>12} {'-' if ratio is None else f'{ratio:.2f}x':>12}")
    for name, error in reward_agreement(results):
        print(f"rewards {name}: brm CUDA vs transformers+PEFT, max |Δ| / max |r| = " + ("missing" if error is None else f"{error:.2e}"))
    goals = []
    for model in ("pythia-70m", "pythia-410m"):
        s, p = ratios.get((model, "score")), brm.get((model, "predictive"))
        goals.append((f"{model} scoring >= 2x PyTorch", s, s is not None and s >= 2))
        if p and brm.get((model, "score")):
            slow = brm[(model, "score")] / p
            goals.append((f"{model} scoring with sigma <= 2x scoring", slow, slow <= 2))
        t = ratios.get((model, "train"))
        goals.append((f"{model} training step >= 1.5x PyTorch", t, t is not None and t >= 1.5))
    for label, key, target in (("FP32 GEMM >= 70% of torch.mm", "gemm_fp32", 0.7), ("BF16 GEMM >= 50% of torch.mm", "gemm_bf16", 0.5)):
        r = ratios.get(("4096x4096x4096", key))
        goals.append((label, r, r is not None and r >= target))
    print("goals:")
    for label, value, ok in goals:
        print(f"  {'met ' if ok else 'MISS'} {label}: {'-' if value is None else f'{value:.2f}'}")


if __name__ == "__main__":
    main()
