"""The model the PyTorch peers time (forward_peer.py, train_peer.py, laplace_peer.py): Pythia-70M-shaped GPT-NeoX
reward model, and the hand-written PEFT LoRA the training and Laplace peers put on it.

Hugging Face's GPTNeoXForSequenceClassification written the way its eager modeling_gpt_neox.py is (nn.Linear /
nn.LayerNorm modules, HF parameter names, baddbmm scores, torch.where causal mask, softmax, matmul, rotate_half
rotary from a cos/sin cache), float32, random seeded weights. B sequences of T tokens:

  x = embed_in[ids]                                                        [B, T, 512]
  per layer (6):  qkv = query_key_value(input_layernorm(x))                [B, T, 8, 3·64] → q | k | v per head
                  q, k: rotary on the first 16 dims (rotary_pct 0.25), base 10000
                  a = dense(softmax(q·kᵀ/√64, future keys at finfo.min)·v)  [B, T, 512]
                  x = x + a + dense_4h_to_h(gelu_erf(dense_h_to_4h(post_attention_layernorm(x))))   (parallel residual)
  h = final_layer_norm(x);  reward[b] = score · h[b, T−1]                  (no padding: the last token)

LoRA (with_lora), PEFT's lora.Linear on every layer's query_key_value, no dropout:
  y = W·x + b + s·B·(A·x)      A [8, 512] kaiming-uniform (a = √5), B [1536, 8] zeros (PEFT's init), s = 16/8 = 2

java/src/test/python/make_fixtures.py is the independent float64 reference of the same math. Its functions work
on one sequence and build the rotary angles in float64 (they promote float32 inputs), so they cannot be the
timed float32 batched model; they are imported for the config, the seeded weights and the self-checks instead.

Import this module only after the thread variables are set (the peers do it first thing): importing it loads
torch, and OpenMP / OpenBLAS read OMP_NUM_THREADS / OPENBLAS_NUM_THREADS once, at load.
"""
import ctypes
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "java" / "src" / "test" / "python"))
import make_fixtures as ref  # noqa: E402

SEED = 70


def pythia70m_config():
    config = ref.gpt_neox_config(hidden=512, heads=8, intermediate=2048, vocab=50304, rotary_pct=0.25, parallel=True)
    config.update(num_hidden_layers=6, max_position_embeddings=2048)
    return config


# ---------------------------------------------------------------- the model (HF eager GPT-NeoX, float32)

def rotate_half(x):
    """[..., rd] → [..., rd]: [x1 | x2] → [−x2 | x1]."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RotaryEmbedding(nn.Module):
    """cos/sin cache [max_pos, rd] over cat(angles, angles), angle = pos · base^(−2i/rd), built in float32 like HF."""

    def __init__(self, rd, max_pos, base):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, rd, 2).float() / rd)
        angles = torch.outer(torch.arange(max_pos, dtype=torch.float32), inv_freq)
        emb = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos_cached", emb.cos(), persistent=False)
        self.register_buffer("sin_cached", emb.sin(), persistent=False)

    def forward(self, q, k, position_ids):
        """q, k [B, heads, T, rd], position_ids [1, T] → rotated q, k."""
        cos = self.cos_cached[position_ids].unsqueeze(1)
        sin = self.sin_cached[position_ids].unsqueeze(1)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads = c["num_attention_heads"]
        self.head_dim = c["hidden_size"] // self.heads
        self.rotary_dims = int(self.head_dim * c["rotary_pct"])
        self.norm_factor = self.head_dim ** -0.5
        max_pos = c["max_position_embeddings"]
        self.register_buffer("bias", torch.ones(max_pos, max_pos, dtype=torch.bool).tril().view(1, 1, max_pos, max_pos),
                             persistent=False)
        self.rotary_emb = RotaryEmbedding(self.rotary_dims, max_pos, c["rotary_emb_base"])
        self.query_key_value = nn.Linear(c["hidden_size"], 3 * c["hidden_size"])
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x, position_ids):
        """x [B, T, h] → [B, T, h]."""
        b, t, _ = x.shape
        hd, rd = self.head_dim, self.rotary_dims
        qkv = self.query_key_value(x).view(b, t, self.heads, 3 * hd)
        q, k, v = (qkv[..., i * hd:(i + 1) * hd].permute(0, 2, 1, 3) for i in range(3))  # [B, heads, T, hd]
        q_rot, k_rot = self.rotary_emb(q[..., :rd], k[..., :rd], position_ids)
        q = torch.cat((q_rot, q[..., rd:]), dim=-1)
        k = torch.cat((k_rot, k[..., rd:]), dim=-1)
        # HF: scores from baddbmm into a zeroed buffer, future keys set to the dtype's minimum, then softmax · v
        q, k = q.reshape(b * self.heads, t, hd), k.reshape(b * self.heads, t, hd)
        scores = torch.baddbmm(torch.zeros(b * self.heads, t, t), q, k.transpose(1, 2), beta=1.0, alpha=self.norm_factor)
        scores = torch.where(self.bias[:, :, :t, :t], scores.view(b, self.heads, t, t),
                             torch.tensor(torch.finfo(scores.dtype).min))
        out = torch.matmul(nn.functional.softmax(scores, dim=-1), v)  # [B, heads, T, hd]
        return self.dense(out.permute(0, 2, 1, 3).contiguous().view(b, t, self.heads * hd))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.act = nn.GELU()  # HF "gelu": the exact erf form
        self.dense_4h_to_h = nn.Linear(c["intermediate_size"], c["hidden_size"])

    def forward(self, x):
        return self.dense_4h_to_h(self.act(self.dense_h_to_4h(x)))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.parallel = c["use_parallel_residual"]
        self.input_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.post_attention_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.attention = Attention(c)
        self.mlp = Mlp(c)

    def forward(self, x, position_ids):
        """x [B, T, h] → [B, T, h]."""
        attn = self.attention(self.input_layernorm(x), position_ids)
        if self.parallel:
            return self.mlp(self.post_attention_layernorm(x)) + attn + x
        attn = attn + x
        return self.mlp(self.post_attention_layernorm(attn)) + attn


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_in = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.final_layer_norm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, ids):
        """ids [B, T] → final hidden states [B, T, h]."""
        position_ids = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.embed_in(ids)
        for layer in self.layers:
            x = layer(x, position_ids)
        return self.final_layer_norm(x)


class RewardModel(nn.Module):
    """GPTNeoXForSequenceClassification with num_labels 1: the score head read at each sequence's last token."""

    def __init__(self, c):
        super().__init__()
        self.gpt_neox = Backbone(c)
        self.score = nn.Linear(c["hidden_size"], 1, bias=False)

    def forward(self, ids):
        """ids [B, T] → rewards [B]."""
        logits = self.score(self.gpt_neox(ids))  # [B, T, 1], every token as in HF; then pooled at T−1
        return logits[:, -1, 0]


def build(config):
    """The seeded reward model and its float32 weights by name (make_fixtures' draw, minus the LM head)."""
    weights = {name: values for name, values in ref.gpt_neox_tensors(config, np.random.default_rng(SEED))
               if name != "embed_out.weight"}
    model = RewardModel(config).eval()
    model.load_state_dict({name: torch.from_numpy(values) for name, values in weights.items()}, strict=True)
    return model, weights


# ---------------------------------------------------------------- LoRA (PEFT's, written by hand: no peft package here)

RANK, ALPHA = 8, 16


class LoraLinear(nn.Module):
    """PEFT's lora.Linear without dropout: base_layer(x) + lora_B(lora_A(x))·scaling, base_layer frozen."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        """x [B, T, in] → [B, T, out]."""
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def with_lora(model):
    """Freezes the whole reward model, then wraps every query_key_value in LoRA (A, B trainable) → the LoraLinears."""
    model.requires_grad_(False)
    torch.manual_seed(SEED)
    for layer in model.gpt_neox.layers:
        layer.attention.query_key_value = LoraLinear(layer.attention.query_key_value, RANK, ALPHA)
    return [layer.attention.query_key_value for layer in model.gpt_neox.layers]


def randomize_lora_b(loras, rng):
    """B ← 0.02·N(0, 1) in every LoraLinear: at PEFT's B = 0, ∂/∂A is zero and a check of it checks nothing."""
    with torch.no_grad():
        for m in loras:
            m.lora_B.weight.copy_(torch.from_numpy(0.02 * rng.standard_normal(m.lora_B.weight.shape)))


def lora_step_flops_per_token(config, t):
    """→ (executed, causal) FLOPs per token of a forward and a backward to the LoRA weights at sequence length t
    (train_peer.py's file-top sum)."""
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    w = 3 * h * h + h * h + 2 * h * i
    linears = 2 * layers * w + 2 * ((layers - 1) * w + h * h)
    lora = 2 * layers * RANK * 4 * h + 2 * RANK * (layers * 7 * h + (layers - 1) * h)
    fixed = linears + lora + 2 * h / t
    return fixed + 12 * layers * t * h, fixed + 6 * layers * (t + 1) * h


def reference_model(config, weights_f64, loras, model_class=ref.Model):
    """make_fixtures' float64 model carrying `loras`' A and B as float64 leaves that require grad
    → (model, leaves [A0, B0, A1, B1, ...]). weights_f64: ref.to_torch of build's weights (converted once)."""
    leaves = [t.detach().double().requires_grad_() for m in loras for t in (m.lora_A.weight, m.lora_B.weight)]
    lora = {f"gpt_neox.layers.{n}.attention.query_key_value": (leaves[2 * n], leaves[2 * n + 1], ALPHA / RANK)
            for n in range(len(loras))}
    return model_class(config, weights_f64, lora), leaves


# ---------------------------------------------------------------- self-check, BLAS, GEMM ceiling

def check_against_reference(model, config, weights):
    """Rewards of a 3×33 batch against make_fixtures' float64 reference, sequence by sequence."""
    ids = torch.from_numpy(np.random.default_rng(SEED + 1).integers(0, config["vocab_size"], size=(3, 33)))
    with torch.inference_mode():
        got = model(ids).tolist()
    reference = ref.Model(config, ref.to_torch(weights))
    want = [ref.reward(reference, ref.gpt_neox_hidden(reference, row), reference.w["score.weight"]) for row in ids]
    worst = max(abs(g - w) / max(1.0, abs(w)) for g, w in zip(got, want))
    if worst > 1e-4:
        raise SystemExit(f"self-check: float32 rewards {got} differ from the float64 reference {want}")
    return f"self-check: 3x33 rewards {[round(w, 4) for w in want]} match the float64 reference (max rel diff {worst:.1e})"


def blas_in_use():
    """The libblas.so.3 torch has mapped, named: OpenBLAS reports its build and core, the netlib one has no query."""
    mapped = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if "/" in line}
    real = next((p for p in sorted(mapped) if Path(p).name.startswith(("libblas.so", "libopenblas"))), None)
    if real is None:
        return "no libblas mapped"
    lib = ctypes.CDLL(real)
    if hasattr(lib, "openblas_get_config"):
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return (f"{lib.openblas_get_config().decode().strip()}, core {lib.openblas_get_corename().decode()}, "
                f"{lib.openblas_get_num_threads()} threads ({real})")
    if "/blas/libblas.so" in real:
        return f"netlib reference BLAS, single-threaded ({real})"
    return real


def gemm_gflop_per_s(config, rows):
    """Median GFLOP/s of the forward's biggest GEMM, dense_h_to_4h: [rows, h] · [h, I]ᵀ + b (5 timed of 6)."""
    h, i = config["hidden_size"], config["intermediate_size"]
    generator = torch.Generator().manual_seed(SEED)
    x, w, bias = (torch.randn(*shape, generator=generator) for shape in ((rows, h), (i, h), (i,)))
    seconds = []
    with torch.inference_mode():
        for _ in range(6):
            start = time.perf_counter()
            nn.functional.linear(x, w, bias)
            seconds.append(time.perf_counter() - start)
    return 2 * rows * h * i / statistics.median(seconds[1:]) / 1e9


def json_line(fields, timings, tokens, flops, gemm, blas, loadavg, extra=None):
    """One result line: `fields` (threads, shape), then tokens/s of (wall, CPU seconds) `timings` of steps of `tokens`
    tokens each (median, min, max), `flops` (executed, causal) per token, the GEMM ceiling, the BLAS, the allocator,
    then a peer's `extra` fields."""
    tokens_per_s = sorted(tokens / wall for wall, _ in timings)
    median = statistics.median(tokens_per_s)
    executed, causal = flops
    return json.dumps({
        "impl": "pytorch", "allocator": "glibc-tuned" if os.environ.get("GLIBC_TUNABLES") else "glibc", **fields,
        "tokens_per_s_median": round(median, 1), "tokens_per_s_min": round(tokens_per_s[0], 1),
        "tokens_per_s_max": round(tokens_per_s[-1], 1), "reps": len(timings),
        "mflop_per_token_executed": round(executed / 1e6, 3), "mflop_per_token_causal": round(causal / 1e6, 3),
        "gflop_per_s_executed_median": round(median * executed / 1e9, 2),
        "cpu_per_wall_median": round(statistics.median(cpu / wall for wall, cpu in timings), 2),
        "gemm_h_to_4h_gflop_per_s": round(gemm, 2), "torch": torch.__version__, "blas": blas,
        "env": {k: os.environ.get(k) for k in ("GLIBC_TUNABLES", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "loadavg_1m_before": round(loadavg, 2), **(extra or {})})
