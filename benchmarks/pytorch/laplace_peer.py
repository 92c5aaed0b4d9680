#!/usr/bin/python3
"""PyTorch CPU peer of brm's Laplace-LoRA benchmarks: the predictive variance of rewards and the K-FAC fit, done the
usual way (laplace-torch / Laplace-LoRA: autograd Jacobians per response, module hooks for the factors).

Run with Debian's torch 1.13 (CPU): /usr/bin/python3 benchmarks/pytorch/laplace_peer.py --mode predictive --threads 1
Prints one JSON line on stdout (forward_peer.py's fields plus the mode's own); self-checks and the BLAS go to stderr.

The model is peer_model.py's GPT-NeoX reward model (Pythia-70M shape, float32, seeded weights) with peer_model's
LoRA (r = 8, alpha 16, s = 2) on every layer's query_key_value; A kaiming-uniform, B random (0.02·N(0, 1)), both
nonzero. The posterior is K-FAC over the 12 LoRA weights W [out, in] (lora_A [8, 512], lora_B [1536, 8], each its
own layer): precision G ⊗ A + δ·I per weight, A [in, in] from the layer's inputs, G [out, out] from its output
gradients, eigendecomposed A = Q_A·diag(λ_A)·Q_Aᵀ, G = Q_G·diag(λ_G)·Q_Gᵀ.

--mode predictive   B responses of T tokens (default 16 × 256), per response:
    r = model(ids[b:b+1]);  J_W = ∂r/∂W = torch.autograd.grad(r, LoRA weights)     one forward, one backward each
  then for the batch, per weight (laplace-torch's Kron functional variance, in the eigenbasis):
    C = Q_Gᵀ·J_W·Q_A [B, out, in];  σ²[b] = Σ_W Σ_ij C[b]_ij² / (λ_G,i·λ_A,j + δ),  δ = 1
  μ = r. Q / λ: QR of Gaussian matrices and λ uniform in [0.1, 10), drawn once (only their sizes matter for time).
  Each repetition also times the plain batched forward of the same ids (inference_mode, no σ), so the line carries
  responses/s with σ, responses/s of the forward alone, and their time ratio.
--mode kfac         N pairs (--pairs, default 64) in batches of P pairs × 2 × T tokens (default 8 × 2 × 256):
    r = model(ids) [2P], chosen then rejected;  p = σ(r_c − r_r);  one backward with the exact-Fisher seeds
    ∂/∂r_c = +√(p(1−p)), ∂/∂r_r = −√(p(1−p))   (the Bernoulli Fisher p(1−p) of the logit r_c − r_r, factored)
  forward hooks take each LoRA linear's input a [2P, T, in], backward hooks its output gradient g [2P, T, out]
  (lora_B's carries the scaling s), reduced per sequence (K-FAC reduce: weights shared over tokens):
    â = mean_t a [2P, in],  ĝ = Σ_t g [2P, out];   A += âᵀ·â,  G += ĝᵀ·ĝ   (float32)
  then torch.linalg.eigh of all 24 factors in float64 (A of lora_A 512², G of lora_B 1536², the rest 8²).
  Reported: the measured seconds for N pairs, linearly extrapolated to 1000 pairs, and the eigendecomposition
  measured once on the accumulated factors. At N < 768 pairs the 512² and 1536² factors have rank ≤ 2N, which makes
  LAPACK's divide and conquer faster (about 20 % at 1536), so the 1000-pair total uses the eigendecomposition of
  full-rank stand-ins instead (XᵀX, X [2000, n] Gaussian: the rank 1000 pairs' factors have), timed as well.

FLOPs per token (multiply-add = 2), T = 256, L = 6, r = 8, h = 512, out = 3h:
  forward + backward to the LoRA weights: peer_model.lora_step_flops_per_token (train_peer.py's sum), 79.75 M executed
  predictive adds σ²: per response Σ_layers 2·(r²·h + r·h²) + 2·(out²·r + out·r²) = 253,231,104 → /T = 989,184
  kfac adds the factor products: per sequence 2·L·(h² + r² + r² + out²) → /T = 122,886
  not counted: LayerNorm / GELU / softmax / rotary, C² / (λλ + δ) and the reductions (elementwise), eigh.
"""
import argparse
import os
import sys

EXTRAPOLATED_PAIRS = 1000


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=("predictive", "kfac"), required=True)
    p.add_argument("--threads", type=int, default=1, help="torch, OpenMP and BLAS threads")
    p.add_argument("--seq", type=int, default=256, help="tokens per sequence")
    p.add_argument("--batch", type=int, default=16, help="predictive: responses per batch")
    p.add_argument("--warmup", type=int, default=1, help="untimed batches")
    p.add_argument("--reps", type=int, default=5, help="predictive: timed batches")
    p.add_argument("--batch-pairs", type=int, default=8, help="kfac: preference pairs per batch")
    p.add_argument("--pairs", type=int, default=64, help="kfac: timed pairs (a multiple of --batch-pairs)")
    return p.parse_args()


ARGS = parse_args()
# as in forward_peer.py: torch 1.13 does not hand its thread count to the BLAS, which reads these once, at load
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import peer_model as peer  # noqa: E402
from peer_model import ref  # noqa: E402

PRIOR_PRECISION = 1.0  # δ


# ---------------------------------------------------------------- predictive: Jacobians, σ²

def lora_weights(loras):
    """→ [A0, B0, A1, B1, ...]: lora_A [r, in] and lora_B [out, r] of every layer."""
    return [t for m in loras for t in (m.lora_A.weight, m.lora_B.weight)]


def random_bases(weights, generator):
    """Per weight [out, in]: Q_G [out, out], Q_A [in, in] orthonormal (QR of Gaussian matrices), λ_G [out], λ_A [in]
    uniform in [0.1, 10) → (Q_G, Q_A, 1 / (λ_G·λ_Aᵀ + δ) [out, in]), float32."""
    def eigen(n):
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
        return q.float(), 0.1 + 9.9 * torch.rand(n, generator=generator)

    bases = []
    for w in weights:
        (q_g, l_g), (q_a, l_a) = eigen(w.shape[0]), eigen(w.shape[1])
        bases.append((q_g, q_a, 1.0 / (torch.outer(l_g, l_a) + PRIOR_PRECISION)))
    return bases


def jacobians(model, weights, ids):
    """ids [B, T] → (rewards [B], per weight its Jacobians [B, out, in]): one forward and one backward per response,
    nothing retained between them."""
    rewards, per_response = [], []
    for row in ids:
        r = model(row[None])[0]
        per_response.append(torch.autograd.grad(r, weights))
        rewards.append(r.detach())
    return torch.stack(rewards), [torch.stack(js) for js in zip(*per_response)]


def variance(jacs, bases):
    """Per weight J [B, out, in] and its (Q_G, Q_A, 1/(λλ + δ) [out, in])
    → σ² [B] = Σ_W Σ_ij (Q_Gᵀ·J·Q_A)_ij² / (λλ + δ)."""
    total = 0
    for j, (q_g, q_a, inverse) in zip(jacs, bases):
        c = q_g.T @ j @ q_a  # [B, out, in]
        total = total + (c * c * inverse).sum((1, 2))
    return total


def predictive_flops_per_token(config, t):
    """→ (executed, causal) FLOPs per token of Jacobians plus σ² (see the file-top sum)."""
    h, layers, out = config["hidden_size"], config["num_hidden_layers"], 3 * config["hidden_size"]
    sigma = layers * (2 * (peer.RANK ** 2 * h + peer.RANK * h * h) + 2 * (out * out * peer.RANK + out * peer.RANK ** 2))
    return tuple(f + sigma / t for f in peer.lora_step_flops_per_token(config, t))


# ---------------------------------------------------------------- kfac: hooks, Fisher backward

class Kfac:
    """K-FAC factors of every LoRA linear, accumulated by module hooks while registered: per linear A [in, in] += âᵀ·â
    (forward hook, â = mean over tokens of its input [B, in]) and G [out, out] += ĝᵀ·ĝ (full backward hook,
    ĝ = sum over tokens of its output gradient [B, out]), float32."""

    def __init__(self, loras):
        self.linears = [linear for m in loras for linear in (m.lora_A, m.lora_B)]
        self.a = {m: torch.zeros(m.in_features, m.in_features) for m in self.linears}
        self.g = {m: torch.zeros(m.out_features, m.out_features) for m in self.linears}
        self.handles = [h for m in self.linears for h in (m.register_forward_hook(self.forward_hook),
                                                          m.register_full_backward_hook(self.backward_hook))]

    def forward_hook(self, module, inputs, output):
        a = inputs[0].detach().mean(1)  # [B, T, in] → [B, in]
        self.a[module].addmm_(a.T, a)

    def backward_hook(self, module, grad_input, grad_output):
        g = grad_output[0].sum(1)  # [B, T, out] → [B, out]
        self.g[module].addmm_(g.T, g)

    def zero(self):
        for f in (*self.a.values(), *self.g.values()):
            f.zero_()

    def remove(self):
        for h in self.handles:
            h.remove()

    def factors(self):
        """→ [A, G of lora_A 0, A, G of lora_B 0, A, G of lora_A 1, ...]."""
        return [f for m in self.linears for f in (self.a[m], self.g[m])]


def fisher_backward(model, weights, ids):
    """ids [2P, T], chosen then rejected → one forward and one backward with the exact-Fisher seeds ±√(p(1−p)),
    p = σ(r_c − r_r), down to the LoRA weights (whose gradients are dropped: the hooks take what K-FAC needs)."""
    r = model(ids)
    pairs = r.shape[0] // 2
    p = torch.sigmoid(r[:pairs] - r[pairs:]).detach()
    seed = (p * (1 - p)).sqrt()
    torch.autograd.grad(r, weights, torch.cat((seed, -seed)))


def kfac_flops_per_token(config, t):
    """→ (executed, causal) FLOPs per token of a Fisher backward plus the factor products (see the file-top sum)."""
    h, layers, out = config["hidden_size"], config["num_hidden_layers"], 3 * config["hidden_size"]
    products = 2 * layers * (h * h + 2 * peer.RANK ** 2 + out * out)
    return tuple(f + products / t for f in peer.lora_step_flops_per_token(config, t))


def timed_eigh(factors):
    """→ seconds of torch.linalg.eigh(f.double()) for each factor, conversion included."""
    seconds = []
    for f in factors:
        start = time.perf_counter()
        torch.linalg.eigh(f.double())
        seconds.append(time.perf_counter() - start)
    return seconds


# ---------------------------------------------------------------- self-checks (float64 references)

def check_kronecker_form():
    """variance() against the dense vec(J)ᵀ·(G ⊗ A + δ·I)⁻¹·vec(J) (row-major vec of W [out, in]) at [5, 7]:
    checks which side is G and which is A."""
    generator = torch.Generator().manual_seed(peer.SEED + 5)
    x_g, x_a, j = (torch.randn(*shape, generator=generator, dtype=torch.float64)
                   for shape in ((9, 5), (11, 7), (3, 5, 7)))
    g, a = x_g.T @ x_g, x_a.T @ x_a
    (l_g, q_g), (l_a, q_a) = torch.linalg.eigh(g), torch.linalg.eigh(a)
    got = variance([j], [(q_g, q_a, 1.0 / (torch.outer(l_g, l_a) + PRIOR_PRECISION))])
    vec = j.reshape(3, 35)
    want = (vec * torch.linalg.solve(torch.kron(g, a) + PRIOR_PRECISION * torch.eye(35, dtype=torch.float64),
                                     vec.T).T).sum(1)
    worst = float(((got - want).abs() / want.abs()).max())
    if worst > 1e-10:
        raise SystemExit(f"self-check: the eigenbasis variance {got.tolist()} differs from the dense Kronecker form "
                         f"{want.tolist()}")
    return f"self-check: σ² in the eigenbasis matches the dense (G⊗A + δI)⁻¹ form at 5x7 (max rel diff {worst:.1e})"


def check_predictive(model, loras, bases, config, weights_f64):
    """Rewards, the Jacobians of all 12 LoRA weights and σ² of 2 responses of 17 tokens against make_fixtures'
    float64 autograd (σ² from the float64 Jacobians and the bases in float64)."""
    ids = torch.from_numpy(np.random.default_rng(peer.SEED + 3).integers(0, config["vocab_size"], size=(2, 17)))
    rewards, jacs = jacobians(model, lora_weights(loras), ids)
    sigma2 = variance(jacs, bases)

    reference, leaves = peer.reference_model(config, weights_f64, loras)
    score = model.score.weight.detach().double()
    want_rewards, per_response = [], []
    for row in ids:
        r = ref.reward_tensor(reference, ref.gpt_neox_hidden(reference, row), score)
        per_response.append(torch.autograd.grad(r, leaves))
        want_rewards.append(float(r))
    want_jacs = [torch.stack(js) for js in zip(*per_response)]
    want_sigma2 = variance(want_jacs, [tuple(t.double() for t in basis) for basis in bases])
    jac_diff = max(float((g - w).abs().max() / w.abs().max()) for g, w in zip(jacs, want_jacs))
    sigma_diff = float(((sigma2 - want_sigma2).abs() / want_sigma2).max())
    reward_diff = max(abs(g - w) / max(1.0, abs(w)) for g, w in zip(rewards.tolist(), want_rewards))
    if jac_diff > 1e-3 or sigma_diff > 1e-3 or reward_diff > 1e-4:
        raise SystemExit(f"self-check: float32 Jacobians / σ² differ from the float64 reference (Jacobians "
                         f"{jac_diff:.1e}, σ² {sigma2.tolist()} vs {want_sigma2.tolist()}, rewards {reward_diff:.1e})")
    return (f"self-check: 2x17 rewards {[round(w, 4) for w in want_rewards]}, σ² "
            f"{[round(v, 4) for v in want_sigma2.tolist()]} and the Jacobians of {len(want_jacs)} LoRA weights match "
            f"the float64 reference (max rel diff: rewards {reward_diff:.1e}, Jacobians {jac_diff:.1e}, "
            f"σ² {sigma_diff:.1e})")


class ProbedReference(ref.Model):
    """make_fixtures' float64 model with zero probes p_A [T, r] added to A·x and p_B [T, out] to B·(A·x) in every
    LoRA module: ∂/∂p_A and s·∂/∂(s·p_B) are the output gradients lora_A's and lora_B's backward hooks see. `seen`
    keeps per module, call by call, (x [T, in], A·x [T, r], p_A, p_B)."""

    def __init__(self, config, weights, lora):
        super().__init__(config, weights, lora)
        self.seen = {module: [] for module in lora}

    def linear(self, module, x):
        y = super().linear(module, x)
        if module not in self.lora:
            return y
        a, b, scale = self.lora[module]
        p_a = torch.zeros(x.shape[0], a.shape[0], dtype=torch.float64, requires_grad=True)
        p_b = torch.zeros(x.shape[0], b.shape[0], dtype=torch.float64, requires_grad=True)
        self.seen[module].append((x, x @ a.T, p_a, p_b))
        return y + scale * (p_a @ b.T + p_b)


def check_kfac(model, loras, config, weights_f64):
    """All 24 factors of 2 pairs of 17 tokens against make_fixtures' float64 autograd through probes."""
    ids = torch.from_numpy(np.random.default_rng(peer.SEED + 4).integers(0, config["vocab_size"], size=(4, 17)))
    kfac = Kfac(loras)
    fisher_backward(model, lora_weights(loras), ids)
    kfac.remove()

    reference, _ = peer.reference_model(config, weights_f64, loras, ProbedReference)
    score = model.score.weight.detach().double()
    r = torch.stack([ref.reward_tensor(reference, ref.gpt_neox_hidden(reference, row), score) for row in ids])
    p = torch.sigmoid(r[:2] - r[2:])
    surrogate = ((p * (1 - p)).sqrt().detach() * (r[:2] - r[2:])).sum()
    probes = [p for seen in reference.seen.values() for _, _, p_a, p_b in seen for p in (p_a, p_b)]
    grads = iter(torch.autograd.grad(surrogate, probes))
    want = []
    for seen in reference.seen.values():  # modules in layer order; per module the 4 sequences in order
        rows = [(x.mean(0), u.mean(0), next(grads).sum(0), next(grads).sum(0)) for x, u, _, _ in seen]
        x_bar, u_bar, g_a, g_b = (torch.stack(column) for column in zip(*rows))
        want += [x_bar.T @ x_bar, g_a.T @ g_a, u_bar.T @ u_bar, g_b.T @ g_b]
    worst = max(float((g.double() - w).abs().max() / w.abs().max()) for g, w in zip(kfac.factors(), want))
    if worst > 1e-3:
        raise SystemExit(f"self-check: float32 K-FAC factors differ from the float64 reference (max rel {worst:.1e})")
    return (f"self-check: the {len(want)} K-FAC factors of 2x2x17 tokens (exact-Fisher seeds, per-sequence reduce) "
            f"match the float64 reference (max rel diff {worst:.1e})")


# ---------------------------------------------------------------- measurements

def lapack_in_use():
    """The liblapack torch has mapped (OpenBLAS's own when PEER_BLAS_DIR holds it)."""
    mapped = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if "/" in line}
    return next((p for p in sorted(mapped) if Path(p).name.startswith("liblapack")), "no liblapack mapped")


def median_of(values):
    return round(statistics.median(values), 4)


def measure_predictive(model, loras, bases, config):
    """Per repetition, after `warmup` untimed ones: the plain forward (inference_mode) and the forward with σ² of the
    same B×T ids → ((wall, CPU seconds) with σ², (wall, CPU seconds) forward alone, σ²'s share of the time with it)."""
    b, t = ARGS.batch, ARGS.seq
    ids = torch.from_numpy(np.random.default_rng(peer.SEED + b * t).integers(0, config["vocab_size"], size=(b, t)))
    weights = lora_weights(loras)
    with_sigma, forward, share = [], [], []
    for rep in range(ARGS.warmup + ARGS.reps):
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            model(ids)
        plain = (time.perf_counter() - wall, time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        _, jacs = jacobians(model, weights, ids)
        middle = time.perf_counter()
        variance(jacs, bases)
        end = time.perf_counter()
        if rep >= ARGS.warmup:
            forward.append(plain)
            with_sigma.append((end - wall, time.process_time() - cpu))
            share.append((end - middle) / (end - wall))
    return with_sigma, forward, share


def predictive(model, loras, config, weights, blas):
    bases = random_bases(lora_weights(loras), torch.Generator().manual_seed(peer.SEED))
    print(check_kronecker_form(), file=sys.stderr)
    print(check_predictive(model, loras, bases, config, ref.to_torch(weights)), file=sys.stderr)
    b, t = ARGS.batch, ARGS.seq
    loadavg = os.getloadavg()[0]
    with_sigma, forward, share = measure_predictive(model, loras, bases, config)
    forward_tps = statistics.median(b * t / wall for wall, _ in forward)
    extra = {
        "responses_per_s_median": round(statistics.median(b / wall for wall, _ in with_sigma), 2),
        "forward_tokens_per_s_median": round(forward_tps, 1),
        "forward_responses_per_s_median": round(forward_tps / t, 2),
        "forward_cpu_per_wall_median": median_of([cpu / wall for wall, cpu in forward]),
        "time_with_variance_over_forward_median": median_of([s[0] / f[0] for s, f in zip(with_sigma, forward)]),
        "variance_math_share_median": median_of(share)}
    return peer.json_line({"mode": "predictive", "threads": ARGS.threads, "batch": b, "seq": t}, with_sigma, b * t,
                          predictive_flops_per_token(config, t), peer.gemm_gflop_per_s(config, b * t), blas, loadavg,
                          extra)


def kfac(model, loras, config, weights, blas):
    print(check_kfac(model, loras, config, ref.to_torch(weights)), file=sys.stderr)
    p, t = ARGS.batch_pairs, ARGS.seq
    if ARGS.pairs % p:
        raise SystemExit(f"laplace_peer.py: --pairs {ARGS.pairs} is not a multiple of --batch-pairs {p}")
    rng = np.random.default_rng(peer.SEED + p * t)
    batches = [torch.from_numpy(rng.integers(0, config["vocab_size"], size=(2 * p, t)))
               for _ in range(ARGS.warmup + ARGS.pairs // p)]
    params = lora_weights(loras)
    loadavg = os.getloadavg()[0]
    hooks = Kfac(loras)
    timings = []
    for n, ids in enumerate(batches):
        if n == ARGS.warmup:
            hooks.zero()  # the factors hold exactly the timed pairs
        wall, cpu = time.perf_counter(), time.process_time()
        fisher_backward(model, params, ids)
        if n >= ARGS.warmup:
            timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    hooks.remove()
    factors = hooks.factors()
    eigh = timed_eigh(factors)
    generator = torch.Generator().manual_seed(peer.SEED)
    stand_ins = {}  # size → XᵀX, X [2·1000, size]: full rank, as a 1000-pair fit's factors are
    for n in sorted({f.shape[0] for f in factors}):
        x = torch.randn(2 * EXTRAPOLATED_PAIRS, n, generator=generator, dtype=torch.float64)
        stand_ins[n] = (x.T @ x).float()
    eigh_full = timed_eigh([stand_ins[f.shape[0]] for f in factors])
    by_size = {n: [s for f, s in zip(factors, eigh_full) if f.shape[0] == n] for n in stand_ins}
    accumulate = sum(wall for wall, _ in timings)
    per_pair = accumulate / ARGS.pairs
    extra = {
        "pairs_measured": ARGS.pairs, "accumulate_s_measured": round(accumulate, 3),
        "accumulate_s_per_pair": round(per_pair, 5),
        f"accumulate_s_{EXTRAPOLATED_PAIRS}_pairs_extrapolated": round(per_pair * EXTRAPOLATED_PAIRS, 2),
        "eigh_s_measured": round(sum(eigh), 3), "eigh_s_full_rank": round(sum(eigh_full), 3),
        **{f"eigh_s_full_rank_{n}_median": median_of(s) for n, s in by_size.items()},
        "eigh_factors": len(factors),
        "total_s_measured": round(accumulate + sum(eigh), 3),
        f"total_s_{EXTRAPOLATED_PAIRS}_pairs_extrapolated": round(per_pair * EXTRAPOLATED_PAIRS + sum(eigh_full), 2),
        "lapack": lapack_in_use()}
    return peer.json_line({"mode": "kfac", "threads": ARGS.threads, "pairs": p, "batch": 2 * p, "seq": t}, timings,
                          2 * p * t, kfac_flops_per_token(config, t), peer.gemm_gflop_per_s(config, 2 * p * t), blas,
                          loadavg, extra)


def main():
    torch.set_num_threads(ARGS.threads)
    config = peer.pythia70m_config()
    model, weights = peer.build(config)
    loras = peer.with_lora(model)
    print(peer.check_against_reference(model, config, weights), file=sys.stderr)  # at B = 0: the base model
    peer.randomize_lora_b(loras, np.random.default_rng(peer.SEED + 2))
    blas = peer.blas_in_use()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS: {blas}", file=sys.stderr)
    run = predictive if ARGS.mode == "predictive" else kfac
    print(run(model, loras, config, weights, blas), flush=True)


if __name__ == "__main__":
    main()
