#!/usr/bin/env python3
"""GPU peer of brm's CUDA backend: Hugging Face transformers + PEFT doing the work brm does, on the same GPU and the
same random models, in one process. Run by scripts/device-check.sh on the GPU machine (PyTorch 2.11, transformers,
PEFT there); prints one JSON line per measurement on stdout, progress on stderr.

Models: the directories `brm-bench DeviceModels` writes (brm's RandomCheckpoint: a Pythia-70M- or Pythia-410M-shaped
GPT-NeoX with random weights, config.json + model.safetensors, and a PEFT LoRA adapter r = 8, alpha 16 on every
layer's query_key_value with the head under modules_to_save). Loaded with GPTNeoXForSequenceClassification.
from_pretrained (float32, transformers' default attention: SDPA) and PeftModel.from_pretrained: the model brm scores
is the model PyTorch scores, so the rewards of both are compared too (--rewards).

Measurements (median of --reps after 3 warm-ups, torch.cuda.synchronize() around each, token ids from 1..50276 so no
id is the pad id 0):
  score       B × T tokens (32 × 256) under inference_mode: rewards only                     -> tokens/s
  score_bf16  the same with the model cast to bfloat16                                        -> tokens/s
  predictive  B responses (16 × 256), the Laplace-LoRA way: per response one forward and one backward to the
              LoRA weights (torch.autograd.grad), then per LoRA matrix C = Q_Gᵀ·J·Q_A and
              σ² = Σ C² / (λ_G λ_A + 1) with fixed random eigenbases                          -> tokens/s
  train       one Bradley–Terry step on P pairs × 2 × T (8 × 2 × 256): forward, -logsigmoid(r_c - r_r).mean(),
              backward, AdamW on the LoRA weights and the head                                 -> tokens/s
  kfac        a K-FAC fit on one batch (8 pairs × 2 × 256): forward, backward seeded with the exact Fisher's
              ±√(p(1-p)), hooks reduce each LoRA layer's inputs (mean over tokens) and output gradients (sum)
              and accumulate A += âᵀâ, G += ĝᵀĝ in float32, then torch.linalg.eigh of every factor in float64
              (what brm's DeviceBenchmark.kfac, a whole Laplace.fit on the batch, also does)   -> tokens/s
  gemm        torch.mm at 4096³: float32 (TF32 off) and bfloat16                               -> TFLOP/s
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

VOCAB = 50277


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def timed(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ids(generator, b, t):
    return torch.randint(1, VOCAB, (b, t), generator=generator).cuda()


def load(root, trainable):
    from peft import PeftModel
    from transformers import GPTNeoXForSequenceClassification

    model = GPTNeoXForSequenceClassification.from_pretrained(root / "model", dtype=torch.float32)
    model.config.pad_token_id = 0  # ids are drawn from 1..: every sequence ends at its last token, as in brm
    model = PeftModel.from_pretrained(model, root / "adapter", is_trainable=trainable)
    return model.cuda()


def lora_params(model):
    return [(n, p) for n, p in model.named_parameters() if "lora_" in n]


def emit(**fields):
    print(json.dumps(fields), flush=True)


def score(root, name, reps, bf16):
    model = load(root, trainable=False).eval()
    if bf16:
        model = model.to(torch.bfloat16)
    g = torch.Generator().manual_seed(11)
    x = ids(g, 32, 256)

    def run():
        with torch.inference_mode():
            return model(input_ids=x).logits

    s = timed(run, reps)
    emit(peer="pytorch", model=name, op="score_bf16" if bf16 else "score", seconds=s, tokens_per_s=x.numel() / s)


def predictive(root, name, reps):
    model = load(root, trainable=True).eval()
    g = torch.Generator().manual_seed(12)
    x = ids(g, 16, 256)
    params = lora_params(model)
    bases = []  # (Q_G [out, out], Q_A [in, in], λ_G λ_A + 1 [out, in]) per LoRA matrix W [out, in]
    for _, p in params:
        out, inp = p.shape
        qg = torch.linalg.qr(torch.randn(out, out, generator=g))[0].cuda()
        qa = torch.linalg.qr(torch.randn(inp, inp, generator=g))[0].cuda()
        lam = (torch.rand(out, generator=g) * 9.9 + 0.1)[:, None] * (torch.rand(inp, generator=g) * 9.9 + 0.1)[None, :]
        bases.append((qg, qa, (lam + 1).cuda()))
    weights = [p for _, p in params]

    def run():
        variances = []
        for b in range(x.shape[0]):
            r = model(input_ids=x[b:b + 1]).logits.sum()
            jac = torch.autograd.grad(r, weights)
            v = 0.0
            for j, (qg, qa, w) in zip(jac, bases):
                c = qg.T @ j @ qa
                v = v + (c * c / w).sum()
            variances.append(v)
        return torch.stack(variances)

    s = timed(run, reps)
    emit(peer="pytorch", model=name, op="predictive", seconds=s, tokens_per_s=x.numel() / s)


def train(root, name, reps):
    model = load(root, trainable=True).train()
    for module in model.modules():  # no dropout: brm's step has none either
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    g = torch.Generator().manual_seed(13)
    chosen, rejected = ids(g, 8, 256), ids(g, 8, 256)
    both = torch.cat([chosen, rejected])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.0)

    def run():
        optimizer.zero_grad(set_to_none=True)
        r = model(input_ids=both).logits.squeeze(-1)
        loss = -torch.nn.functional.logsigmoid(r[:8] - r[8:]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()

    s = timed(run, reps)
    emit(peer="pytorch", model=name, op="train", seconds=s, tokens_per_s=both.numel() / s)


def kfac(root, name, reps):
    model = load(root, trainable=True).eval()
    g = torch.Generator().manual_seed(14)
    x = torch.cat([ids(g, 8, 256), ids(g, 8, 256)])
    factors, hooks = {}, []
    for n, m in model.named_modules():
        if n.endswith("lora_A.default") or n.endswith("lora_B.default"):
            factors[n] = [torch.zeros(m.in_features, m.in_features, device="cuda"),
                          torch.zeros(m.out_features, m.out_features, device="cuda")]

            def forward_hook(module, inputs, output, key=n):
                a = inputs[0].detach().mean(dim=1)
                factors[key][0] += a.T @ a

            def backward_hook(module, grad_input, grad_output, key=n):
                gr = grad_output[0].detach().sum(dim=1)
                factors[key][1] += gr.T @ gr

            hooks.append(m.register_forward_hook(forward_hook))
            hooks.append(m.register_full_backward_hook(backward_hook))

    def run():
        for pair in factors.values():
            for f in pair:
                f.zero_()
        r = model(input_ids=x).logits.squeeze(-1)
        p = torch.sigmoid(r[:8] - r[8:]).detach()
        seed = torch.sqrt(p * (1 - p))
        torch.autograd.backward(r, torch.cat([seed, -seed]))
        return [torch.linalg.eigh(f.double() / (x.shape[0] if i == 0 else 1)) for pair in factors.values() for i, f in enumerate(pair)]

    s = timed(run, reps)
    emit(peer="pytorch", model=name, op="kfac", seconds=s, tokens_per_s=x.numel() / s)
    for h in hooks:
        h.remove()


def rewards(root, name, out):
    """Rewards of fixed sequences, float32: brm scores the same ids (device-check compares the two)."""
    model = load(root, trainable=False).eval()
    g = torch.Generator().manual_seed(15)
    x = ids(g, 8, 128)
    with torch.inference_mode():
        r = model(input_ids=x).logits.squeeze(-1).double().cpu().tolist()
    with open(out, "w") as f:
        for row, reward in zip(x.cpu().tolist(), r):
            f.write(json.dumps({"input_ids": row, "pytorch_reward": reward}) + "\n")
    log(f"{name}: wrote {len(r)} reference rewards to {out}")


def gemm(reps):
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 4096
    for dtype, label in ((torch.float32, "gemm_fp32"), (torch.bfloat16, "gemm_bf16")):
        sets = [(torch.randn(n, n, device="cuda", dtype=dtype), torch.randn(n, n, device="cuda", dtype=dtype)) for _ in range(4)]
        c = torch.empty(n, n, device="cuda", dtype=dtype)
        i = [0]

        def run():
            a, b = sets[i[0] % 4]
            i[0] += 1
            torch.mm(a, b, out=c)

        s = timed(run, reps)
        emit(peer="pytorch", model=f"{n}x{n}x{n}", op=label, seconds=s, tflops=2 * n ** 3 / s / 1e12)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, required=True, help="folder with pythia-70m/ and pythia-410m/ (model/, adapter/)")
    ap.add_argument("--names", default="pythia-70m,pythia-410m")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rewards", type=Path, help="folder to write <name>-rewards.jsonl (fixed ids and PyTorch's rewards)")
    a = ap.parse_args()
    torch.manual_seed(0)
    log(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    gemm(a.reps)
    failures = []
    for name in a.names.split(","):
        root = a.models / name
        if a.rewards:
            rewards(root, name, a.rewards / f"{name}-rewards.jsonl")
        ops = {"score": lambda: score(root, name, a.reps, False), "score_bf16": lambda: score(root, name, a.reps, True),
               "predictive": lambda: predictive(root, name, max(3, a.reps // 3)), "train": lambda: train(root, name, a.reps),
               "kfac": lambda: kfac(root, name, a.reps)}
        for op, run in ops.items():
            try:  # one failing measurement leaves the others standing; the table shows it missing
                run()
            except Exception as e:  # noqa: BLE001
                log(f"{name} {op}: failed: {e!r}")
                failures.append(f"{name} {op}")
            torch.cuda.empty_cache()
    if failures:
        sys.exit(f"gpu_peer: failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
