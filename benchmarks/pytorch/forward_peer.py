#!/usr/bin/python3
"""PyTorch CPU peer of brm's forward-pass benchmark: tokens/s of a Pythia-70M-shaped GPT-NeoX reward model.

Run with Debian's torch 1.13 (CPU): /usr/bin/python3 benchmarks/pytorch/forward_peer.py --threads 1
Prints one JSON line per (batch, seq) configuration on stdout; the self-check and the BLAS in use go to stderr.

The model is peer_model.py's: Hugging Face's GPTNeoXForSequenceClassification as its eager modeling_gpt_neox.py
is, float32, random seeded weights; B sequences of T tokens, no padding, reward at the last token.

FLOPs per token (multiply-add = 2), with L = 6, h = 512, I = 2048:
  linears    2·L·(3h² + h² + 2·h·I) = 2 · 18,874,368 weights                = 37,748,736
  attention  q·kᵀ and p·v, 2·T·h each per layer: executed (eager computes the whole T×T square, then masks)
             4·L·T·h (T=256: 3,145,728), causal (only keys ≤ query) 2·L·(T+1)·h (T=256: 1,579,008)
  score      2·h per sequence, i.e. 2·h/T per token (HF applies it to every token, 2·h per token; both < 0.003 %)
  not counted: the embedding gather (no FLOPs) and LayerNorm / GELU / softmax / rotary (elementwise).
There is no LM head in a reward model; Pythia's embed_out (50304×512) would add 2·50304·512 = 51.5 MFLOP/token.
"""
import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch, OpenMP and BLAS threads")
    p.add_argument("--show-blas", action="store_true", help="print the BLAS torch loads, and exit")
    p.add_argument("--shapes", default="16x256,64x64", help="comma-separated BxT (sequences x tokens)")
    p.add_argument("--warmup", type=int, default=1, help="untimed forwards per shape")
    p.add_argument("--reps", type=int, default=7, help="timed forwards per shape")
    return p.parse_args()


ARGS = parse_args()
# torch 1.13 does not hand its thread count to the BLAS, and OpenMP / OpenBLAS read these once, at load.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import peer_model as peer  # noqa: E402


# ---------------------------------------------------------------- FLOPs, timing

def flops_per_token(config, t):
    """→ (executed, causal) FLOPs per token of the reward forward at sequence length t (see the file-top sum)."""
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    linears = 2 * layers * (3 * h * h + h * h + 2 * h * i)
    score = 2 * h / t
    return linears + 4 * layers * t * h + score, linears + 2 * layers * (t + 1) * h + score


def measure(model, config, b, t):
    """(wall seconds, process CPU seconds) of each of `reps` forwards of a B×T batch, after `warmup` untimed ones.
    CPU / wall below the thread count means the process waited for a core: other load on the machine."""
    ids = torch.from_numpy(np.random.default_rng(peer.SEED + b * t).integers(0, config["vocab_size"], size=(b, t)))
    timings = []
    with torch.inference_mode():
        for rep in range(ARGS.warmup + ARGS.reps):
            wall, cpu = time.perf_counter(), time.process_time()
            model(ids)
            if rep >= ARGS.warmup:
                timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    return timings


def main():
    if ARGS.show_blas:
        print(peer.blas_in_use())
        return
    torch.set_num_threads(ARGS.threads)
    config = peer.pythia70m_config()
    model, weights = peer.build(config)
    print(peer.check_against_reference(model, config, weights), file=sys.stderr)
    blas = peer.blas_in_use()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS: {blas}", file=sys.stderr)
    for shape in ARGS.shapes.split(","):
        b, t = map(int, shape.split("x"))
        loadavg = os.getloadavg()[0]
        timings = measure(model, config, b, t)
        print(peer.json_line({"threads": ARGS.threads, "batch": b, "seq": t}, timings, b * t,
                             flops_per_token(config, t), peer.gemm_gflop_per_s(config, b * t), blas, loadavg), flush=True)


if __name__ == "__main__":
    main()
