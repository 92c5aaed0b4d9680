#!/usr/bin/python3
"""PyTorch CPU peer of brm's training benchmark: tokens/s of one LoRA reward-model training step (Pythia-70M shape).

Run with Debian's torch 1.13 (CPU): /usr/bin/python3 benchmarks/pytorch/train_peer.py --threads 1
Prints one JSON line per (pairs, seq) configuration on stdout, forward_peer.py's fields plus "pairs" ("batch" is
the 2·P sequences); the self-checks and the BLAS in use go to stderr.

The model is peer_model.py's GPT-NeoX reward model (float32, seeded random weights), trained the way users run
PEFT LoRA on it, with the LoRA written by hand (no peft package here). Every layer's query_key_value becomes

  y = W·x + b + s·B·(A·x)      A [8, 512] kaiming-uniform (a = √5), B [1536, 8] zeros (PEFT's init), s = 16/8 = 2

W, b and every other base weight are frozen (requires_grad False); A, B and the score head [1, 512]
(modules_to_save) train. No dropout (Pythia's is 0; the LoRA's is left out). One step, P pairs of T tokens:

  ids [2P, T]: rows 0..P−1 chosen, P..2P−1 rejected (random ids, equal lengths, no padding)
  r = model(ids) [2P];  L = mean_p −log σ(r[p] − r[P+p])                (Bradley–Terry)
  L.backward();  AdamW(lr 1e-4, weight decay 0.01).step();  zero_grad(set_to_none=True)
tokens/s = 2·P·T / wall seconds of the whole step (forward, backward, optimizer, zero_grad).

FLOPs per token (multiply-add = 2), L = 6, h = 512, I = 2048, r = 8, T tokens; W = 3h² + h² + 2hI per layer:
  forward    forward_peer.py's: linears 2·L·W = 37,748,736, attention executed 4·L·T·h / causal 2·L·(T+1)·h,
             score 2h/T;  plus LoRA 2·L·r·(h + 3h) = 196,608
  backward   input gradients only (frozen weights get none); autograd skips what leads to no trainable tensor:
             layer 0's MLP (its input is the embedding) and the input gradient of layer 0's query_key_value
             linears   2·((L−1)·W + h²) = 31,981,568                          (layer 0: dense only)
             attention dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q: executed 8·L·T·h, causal 4·L·(T+1)·h
             LoRA      dB, d(A·x), dA every layer, A's input gradient above layer 0: 2r·(L·7h + (L−1)·h) = 385,024
  T = 256:   executed 79,749,124 (forward 41,091,076, backward 38,658,048), causal 75,048,964
  not counted: the score head (HF applies it to every token: 2h forward, 2·2h backward per token), LayerNorm /
             GELU / softmax / rotary and their backward (elementwise), AdamW (elementwise, 98,816 trainable values).
torch.profiler(with_flops=True) over one step's mm / addmm / bmm / baddbmm at T = 64 and 128 gives exactly this
executed sum plus the score head's 3·2h per token.
"""
import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch, OpenMP and BLAS threads")
    p.add_argument("--shapes", default="8x256", help="comma-separated PxT (preference pairs x tokens per sequence)")
    p.add_argument("--warmup", type=int, default=2, help="untimed training steps per shape")
    p.add_argument("--reps", type=int, default=5, help="timed training steps per shape")
    return p.parse_args()


ARGS = parse_args()
# as in forward_peer.py: torch 1.13 does not hand its thread count to the BLAS, which reads these once, at load
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import peer_model as peer  # noqa: E402
from peer_model import ref  # noqa: E402

LR = 1e-4


def trainable_lora(model):
    """peer_model's LoRA on every query_key_value, plus the score head (PEFT's modules_to_save) → (LoraLinears,
    the trainable tensors: A, B per layer, then the score)."""
    loras = peer.with_lora(model)
    model.score.weight.requires_grad_(True)
    return loras, [t for m in loras for t in (m.lora_A.weight, m.lora_B.weight)] + [model.score.weight]


def bt_loss(rewards):
    """rewards [2P]: chosen then rejected → mean_p −log σ(r_c − r_r)."""
    pairs = rewards.shape[0] // 2
    return -nn.functional.logsigmoid(rewards[:pairs] - rewards[pairs:]).mean()


# ---------------------------------------------------------------- self-check, FLOPs, timing

def check_gradients(model, loras, trainable, config, weights):
    """Loss and the gradients of every A, B and the score for 2 pairs of 17 tokens against make_fixtures' float64
    autograd, with B set to random values for the check (peer_model.randomize_lora_b)."""
    rng = np.random.default_rng(peer.SEED + 2)
    ids = torch.from_numpy(rng.integers(0, config["vocab_size"], size=(4, 17)))
    peer.randomize_lora_b(loras, rng)
    loss = bt_loss(model(ids))
    got = torch.autograd.grad(loss, trainable)

    reference, leaves = peer.reference_model(config, ref.to_torch(weights), loras)
    leaves.append(model.score.weight.detach().double().requires_grad_())
    rewards = torch.stack([ref.reward_tensor(reference, ref.gpt_neox_hidden(reference, row), leaves[-1]) for row in ids])
    want_loss = bt_loss(rewards)
    want = torch.autograd.grad(want_loss, leaves)
    worst = max(float((g - w).abs().max() / w.abs().max()) for g, w in zip(got, want))
    loss_diff = abs(float(loss) - float(want_loss))
    with torch.no_grad():
        for m in loras:
            m.lora_B.weight.zero_()
    if worst > 1e-3 or loss_diff > 1e-4:
        raise SystemExit(f"self-check: float32 gradients differ from the float64 reference (max rel {worst:.1e}, "
                         f"loss {float(loss)} vs {float(want_loss)})")
    return (f"self-check: 2x2x17 BT loss {float(want_loss):.5f} and the {len(want)} trainable tensors' gradients match "
            f"the float64 reference (loss diff {loss_diff:.1e}, max rel grad diff {worst:.1e})")


def measure(model, optimizer, config, pairs, t):
    """(wall seconds, process CPU seconds) of each of `reps` training steps on P pairs of T tokens,
    after `warmup` untimed ones. CPU / wall below the thread count means the process waited for a core."""
    ids = torch.from_numpy(np.random.default_rng(peer.SEED + pairs * t).integers(0, config["vocab_size"],
                                                                                 size=(2 * pairs, t)))
    timings = []
    for rep in range(ARGS.warmup + ARGS.reps):
        wall, cpu = time.perf_counter(), time.process_time()
        bt_loss(model(ids)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if rep >= ARGS.warmup:
            timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    return timings


def main():
    torch.set_num_threads(ARGS.threads)
    config = peer.pythia70m_config()
    model, weights = peer.build(config)
    loras, trainable = trainable_lora(model)
    model.train()
    print(peer.check_against_reference(model, config, weights), file=sys.stderr)
    print(check_gradients(model, loras, trainable, config, weights), file=sys.stderr)
    blas = peer.blas_in_use()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS: {blas}", file=sys.stderr)
    for shape in ARGS.shapes.split(","):
        pairs, t = map(int, shape.split("x"))
        optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.01)
        loadavg = os.getloadavg()[0]
        timings = measure(model, optimizer, config, pairs, t)
        print(peer.json_line({"threads": ARGS.threads, "pairs": pairs, "batch": 2 * pairs, "seq": t}, timings,
                             2 * pairs * t, peer.lora_step_flops_per_token(config, t),
                             peer.gemm_gflop_per_s(config, 2 * pairs * t), blas, loadavg), flush=True)


if __name__ == "__main__":
    main()
