#!/usr/bin/python3
"""Independent PyTorch reference for brm's three architectures; writes java/src/test/resources/fixtures/.

Run with Debian's torch 1.13 (CPU): /usr/bin/python3 java/src/test/python/make_fixtures.py
Every case is drawn from a fixed numpy seed (PCG64), so regenerating gives identical bytes.

The math follows Hugging Face transformers (modeling_gpt_neox.py, modeling_llama.py, modeling_bert.py)
and PEFT's LoRA (tuners/lora/layer.py, utils/save_and_load.py), evaluated in float64 from the float32
weights exactly as stored (after BF16/F16 rounding where the fixture stores those). One sequence of T tokens:

  GPT-NeoX   x = embed_in[ids]
             per layer:  qkv = Wqkv·ln1(x) + b, viewed [T, heads, 3·hd] → q | k | v per head
                         rotary on the first rd = int(hd·rotary_pct) dims of q and k, the rest passes
                         a = dense(causal_softmax(q·kᵀ/√hd)·v)
                         parallel:   x = x + a + mlp(ln2(x))
                         sequential: h = x + a;  x = h + mlp(ln2(h))
                         mlp(u) = W2·gelu_erf(W1·u + b1) + b2
             h = final_layer_norm(x)
  Llama      x = embed_tokens[ids]
             per layer:  u = rms(x)·g1;  q = Wq·u, k = Wk·u, v = Wv·u (no biases); rotary over all of hd
                         with rope_theta; key/value head j serves query heads j·n_rep .. (j+1)·n_rep − 1
                         x = x + Wo·causal_softmax(q·kᵀ/√hd)·v
                         x = x + Wdown·(silu(Wgate·rms(x)·g2) ∘ Wup·rms(x)·g2)
             h = rms(x)·g;  rms(x) = x / √(mean(x²) + eps)
  BERT       x = LN(word[ids] + position[0..T−1] + token_type[0])
             per layer:  h = LN(x + Wo·softmax(q·kᵀ/√hd)·v)        (bidirectional, no mask)
                         x = LN(h + Wout·gelu_erf(Wint·h + bint) + bout)
             h = x (no pooler)
  rotary     inv_freq_i = base^(−2i/rd), angle = pos·inv_freq, cos/sin over cat(angles, angles),
             rot(x) = x·cos + rotate_half(x)·sin,  rotate_half([x1 | x2]) = [−x2 | x1]
  heads      reward = score · h[T−1] (decoders), score · mean_t h[t] (bert, pooling "mean") or score · h[0] ("cls");
             logits = lm_head · h (gpt_neox: embed_out, llama: lm_head or embed_tokens when tied)
  LoRA       W' = W + s·B·A, A [r, in], B [out, r], s = lora_alpha / r (or lora_alpha / √r with use_rslora);
             an adapter that carries base_model.model.score.weight replaces the score head.

Training cases (<name>_train/): a frozen base, a LoRA adapter with nonzero A and B and its own score head, and
N preference pairs (pairs.jsonl: chosen_ids, rejected_ids, margin m_n), each sequence scored on its own (no padding):

  L_full  = mean_n −log σ(r_c − r_r − m_n) + C·mean_n (r_c + r_r)² + β·mean_n ½(r_c² + r_r²),   C = 0.01, β = 0.05
  L_plain = mean_n −log σ(r_c − r_r)
  grads.safetensors / grads_plain.safetensors (F64): dL/dθ by float64 autograd for every adapter tensor θ,
  under its key in adapter_model.safetensors (…lora_A.weight [r, in], …lora_B.weight [out, r], score.weight [1, H]).

Self-checks (run before anything is written; any failure stops the script): causal mask, merged LoRA equals
unmerged h = W0·x + s·B(A·x), a hand-computed RoPE example, GPT-NeoX's per-head q|k|v layout, BERT attends
both ways, BF16/F16 rounding against torch's own casts, a safetensors read-back, and the real stories260K
model (llama2.c format, ../shared/data) against the top-5 next-token logits and greedy ids of its SOURCE.txt.
Training cases: autograd against central finite differences, a read-back of the F64 gradients, and that zeroing
lora_B (PEFT's initialisation) would move the rewards.
"""
import json
import math
import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

F64 = torch.float64
HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "resources" / "fixtures"


# ---------------------------------------------------------------- safetensors (written by hand)

def round_to_dtype(values, dtype):
    """array → (little-endian bytes in `dtype`, the values those bytes hold: float64 for F64, else float32)."""
    if dtype == "F64":
        values = np.ascontiguousarray(values, dtype=np.float64)
        return values.astype("<f8").tobytes(), values
    values = np.ascontiguousarray(values, dtype=np.float32)
    if dtype == "F32":
        return values.astype("<f4").tobytes(), values
    if dtype == "F16":
        half = values.astype(np.float16)  # IEEE round-to-nearest-even
        if not np.all(np.isfinite(half)):
            raise ValueError("value out of F16 range")
        return half.astype("<f2").tobytes(), half.astype(np.float32)
    if dtype == "BF16":
        bits = values.view(np.uint32).astype(np.uint64)
        top = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round-to-nearest-even
        return top.astype("<u2").tobytes(), (top.astype(np.uint32) << 16).view(np.float32)
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    """tensors: [(name, array)] in file order → the values as stored, by name."""
    header, blobs, stored, offset = {}, [], {}, 0
    for name, values in tensors:
        blob, stored[name] = round_to_dtype(values, dtype)
        header[name] = {"dtype": dtype, "shape": list(values.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return stored


def read_safetensors(path):
    """The inverse of write_safetensors, for the read-back check: name → float32 (F64: float64) array."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data, out, end = raw[8 + n:], {}, 0
    for name, info in header.items():
        begin, stop = info["data_offsets"]
        assert begin == end, f"{path}: {name} does not follow the previous tensor"
        chunk = data[begin:stop]
        if info["dtype"] == "F64":
            flat = np.frombuffer(chunk, "<f8")
        elif info["dtype"] == "F32":
            flat = np.frombuffer(chunk, "<f4")
        elif info["dtype"] == "F16":
            flat = np.frombuffer(chunk, "<f2").astype(np.float32)
        else:
            flat = (np.frombuffer(chunk, "<u2").astype(np.uint32) << 16).view(np.float32)
        out[name] = flat.reshape(info["shape"])
        end = stop
    assert end == len(data), f"{path}: trailing bytes"
    return out


# ---------------------------------------------------------------- the forward passes (float64)

class Model:
    """A config, float64 weights by tensor name, and an optional unmerged LoRA {module: (A, B, scale)}."""

    def __init__(self, config, weights, lora=None):
        self.config, self.w, self.lora = config, weights, lora or {}

    def linear(self, module, x):
        """x [T, in] → [T, out]: W·x + b, plus s·B·(A·x) when the module carries an unmerged adapter."""
        y = x @ self.w[module + ".weight"].T
        if module + ".bias" in self.w:
            y = y + self.w[module + ".bias"]
        if module in self.lora:
            a, b, scale = self.lora[module]
            y = y + scale * ((x @ a.T) @ b.T)
        return y

    def layer_norm(self, module, x):
        return F.layer_norm(x, x.shape[-1:], self.w[module + ".weight"], self.w[module + ".bias"],
                            self.config["layer_norm_eps"])

    def rms_norm(self, module, x):
        return self.w[module + ".weight"] * x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.config["rms_norm_eps"])


def rotary(x, base):
    """x [heads, T, rd] at positions 0..T−1 → rotated, HF rotate_half pairing (i, i + rd/2)."""
    rd, t = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / base ** (torch.arange(0, rd, 2, dtype=F64) / rd)
    angles = torch.outer(torch.arange(t, dtype=F64), inv_freq)
    emb = torch.cat((angles, angles), dim=-1)
    half = torch.cat((-x[..., rd // 2:], x[..., :rd // 2]), dim=-1)
    return x * emb.cos() + half * emb.sin()


def attend(q, k, v, causal):
    """q [heads, T, hd], k/v [heads, T, hd] → [T, heads·hd]: softmax(q·kᵀ/√hd [+ causal mask])·v."""
    heads, t, hd = q.shape
    scores = q @ k.transpose(1, 2) / math.sqrt(hd)
    if causal:
        future = torch.ones(t, t, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(t, heads * hd)


def gpt_neox_hidden(m, ids):
    """ids [T] → final hidden states [T, hidden]."""
    c = m.config
    heads = c["num_attention_heads"]
    hd = c["hidden_size"] // heads
    rd = int(hd * c["rotary_pct"])
    x = m.w["gpt_neox.embed_in.weight"][ids]
    t = len(ids)
    for n in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{n}."
        qkv = m.linear(p + "attention.query_key_value", m.layer_norm(p + "input_layernorm", x))
        qkv = qkv.view(t, heads, 3 * hd).transpose(0, 1)
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q = torch.cat((rotary(q[..., :rd], c["rotary_emb_base"]), q[..., rd:]), dim=-1)
        k = torch.cat((rotary(k[..., :rd], c["rotary_emb_base"]), k[..., rd:]), dim=-1)
        attn = m.linear(p + "attention.dense", attend(q, k, v, causal=True))
        mlp_in = x if c["use_parallel_residual"] else x + attn
        mlp = m.linear(p + "mlp.dense_4h_to_h",
                       F.gelu(m.linear(p + "mlp.dense_h_to_4h", m.layer_norm(p + "post_attention_layernorm", mlp_in))))
        x = x + attn + mlp
    return m.layer_norm("gpt_neox.final_layer_norm", x)


def llama_head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def llama_hidden(m, ids):
    """ids [T] → final hidden states [T, hidden]."""
    c = m.config
    heads, kv_heads, hd = c["num_attention_heads"], c["num_key_value_heads"], llama_head_dim(c)
    x = m.w["model.embed_tokens.weight"][ids]
    t = len(ids)
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        u = m.rms_norm(p + "input_layernorm", x)
        q = m.linear(p + "self_attn.q_proj", u).view(t, heads, hd).transpose(0, 1)
        k = m.linear(p + "self_attn.k_proj", u).view(t, kv_heads, hd).transpose(0, 1)
        v = m.linear(p + "self_attn.v_proj", u).view(t, kv_heads, hd).transpose(0, 1)
        q, k = rotary(q, c["rope_theta"]), rotary(k, c["rope_theta"])
        n_rep = heads // kv_heads
        k, v = k.repeat_interleave(n_rep, dim=0), v.repeat_interleave(n_rep, dim=0)
        x = x + m.linear(p + "self_attn.o_proj", attend(q, k, v, causal=True))
        u = m.rms_norm(p + "post_attention_layernorm", x)
        x = x + m.linear(p + "mlp.down_proj", F.silu(m.linear(p + "mlp.gate_proj", u)) * m.linear(p + "mlp.up_proj", u))
    return m.rms_norm("model.norm", x)


def bert_hidden(m, ids):
    """ids [T] → last layer's hidden states [T, hidden] (no pooler)."""
    c = m.config
    heads = c["num_attention_heads"]
    hd = c["hidden_size"] // heads
    t = len(ids)
    e = "bert.embeddings."
    x = m.w[e + "word_embeddings.weight"][ids] + m.w[e + "token_type_embeddings.weight"][0] \
        + m.w[e + "position_embeddings.weight"][:t]
    x = m.layer_norm(e + "LayerNorm", x)
    for n in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{n}."
        q, k, v = (m.linear(p + "attention.self." + s, x).view(t, heads, hd).transpose(0, 1)
                   for s in ("query", "key", "value"))
        h = m.layer_norm(p + "attention.output.LayerNorm",
                         x + m.linear(p + "attention.output.dense", attend(q, k, v, causal=False)))
        x = m.layer_norm(p + "output.LayerNorm",
                         h + m.linear(p + "output.dense", F.gelu(m.linear(p + "intermediate.dense", h))))
    return x


HIDDEN = {"gpt_neox": gpt_neox_hidden, "llama": llama_hidden, "bert": bert_hidden}


def reward_tensor(m, hidden, score):
    """hidden [T, H], score [1, H] → 0-dim tensor, differentiable in both."""
    if m.config["model_type"] == "bert":
        pooled = hidden.mean(0) if m.config["pooling"] == "mean" else hidden[0]
    else:
        pooled = hidden[-1]
    return score[0] @ pooled


def reward(m, hidden, score):
    """hidden [T, H], score [1, H] → float."""
    return float(reward_tensor(m, hidden, score))


def lm_logits(m, hidden):
    """hidden [T, H] → [T, vocab]."""
    c = m.config
    if c["model_type"] == "gpt_neox":
        return hidden @ m.w["embed_out.weight"].T
    head = "model.embed_tokens.weight" if c["tie_word_embeddings"] else "lm_head.weight"
    return hidden @ m.w[head].T


# ---------------------------------------------------------------- PEFT LoRA

def peft_targets(target_modules, module_names):
    """PEFT's check_target_module_exists: a string is re.fullmatch'ed, a list matches `name` or `*.name`."""
    if isinstance(target_modules, str):
        return [n for n in module_names if re.fullmatch(target_modules, n)]
    return [n for n in module_names if any(n == t or n.endswith("." + t) for t in target_modules)]


def merged(weights, lora):
    """W' = W + s·B·A for every adapted module."""
    out = dict(weights)
    for module, (a, b, scale) in lora.items():
        out[module + ".weight"] = weights[module + ".weight"] + scale * (b @ a)
    return out


# ---------------------------------------------------------------- the cases

def normal(rng, shape, std, mean=0.0):
    return (mean + std * rng.standard_normal(shape)).astype(np.float32)


def gpt_neox_tensors(c, rng):
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    t = [("gpt_neox.embed_in.weight", normal(rng, (v, h), 0.5))]
    for n in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{n}."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            t += [(p + norm + ".weight", normal(rng, (h,), 0.1, 1.0)), (p + norm + ".bias", normal(rng, (h,), 0.1))]
        for name, out_f, in_f in (("attention.query_key_value", 3 * h, h), ("attention.dense", h, h),
                                  ("mlp.dense_h_to_4h", i, h), ("mlp.dense_4h_to_h", h, i)):
            t += [(p + name + ".weight", normal(rng, (out_f, in_f), 1.2 / math.sqrt(in_f))),
                  (p + name + ".bias", normal(rng, (out_f,), 0.1))]
    t += [("gpt_neox.final_layer_norm.weight", normal(rng, (h,), 0.1, 1.0)),
          ("gpt_neox.final_layer_norm.bias", normal(rng, (h,), 0.1)),
          ("embed_out.weight", normal(rng, (v, h), 0.2)),
          ("score.weight", normal(rng, (1, h), 0.2))]
    return t


def llama_tensors(c, rng):
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = llama_head_dim(c)
    q_out, kv_out = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    t = [("model.embed_tokens.weight", normal(rng, (v, h), 0.5))]
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        t.append((p + "input_layernorm.weight", normal(rng, (h,), 0.1, 1.0)))
        for name, out_f, in_f in (("self_attn.q_proj", q_out, h), ("self_attn.k_proj", kv_out, h),
                                  ("self_attn.v_proj", kv_out, h), ("self_attn.o_proj", h, q_out)):
            t.append((p + name + ".weight", normal(rng, (out_f, in_f), 1.2 / math.sqrt(in_f))))
        t.append((p + "post_attention_layernorm.weight", normal(rng, (h,), 0.1, 1.0)))
        for name, out_f, in_f in (("mlp.gate_proj", i, h), ("mlp.up_proj", i, h), ("mlp.down_proj", h, i)):
            t.append((p + name + ".weight", normal(rng, (out_f, in_f), 1.2 / math.sqrt(in_f))))
    t.append(("model.norm.weight", normal(rng, (h,), 0.1, 1.0)))
    if not c["tie_word_embeddings"]:
        t.append(("lm_head.weight", normal(rng, (v, h), 0.2)))
    t.append(("score.weight", normal(rng, (1, h), 0.2)))
    return t


def bert_tensors(c, rng):
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    e = "bert.embeddings."
    t = [(e + "word_embeddings.weight", normal(rng, (v, h), 0.5)),
         (e + "position_embeddings.weight", normal(rng, (c["max_position_embeddings"], h), 0.5)),
         (e + "token_type_embeddings.weight", normal(rng, (c["type_vocab_size"], h), 0.5)),
         (e + "LayerNorm.weight", normal(rng, (h,), 0.1, 1.0)),
         (e + "LayerNorm.bias", normal(rng, (h,), 0.1))]
    for n in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{n}."
        for name, out_f, in_f in (("attention.self.query", h, h), ("attention.self.key", h, h),
                                  ("attention.self.value", h, h), ("attention.output.dense", h, h)):
            t += [(p + name + ".weight", normal(rng, (out_f, in_f), 1.2 / math.sqrt(in_f))),
                  (p + name + ".bias", normal(rng, (out_f,), 0.1))]
        t += [(p + "attention.output.LayerNorm.weight", normal(rng, (h,), 0.1, 1.0)),
              (p + "attention.output.LayerNorm.bias", normal(rng, (h,), 0.1)),
              (p + "intermediate.dense.weight", normal(rng, (i, h), 1.2 / math.sqrt(h))),
              (p + "intermediate.dense.bias", normal(rng, (i,), 0.1)),
              (p + "output.dense.weight", normal(rng, (h, i), 1.2 / math.sqrt(i))),
              (p + "output.dense.bias", normal(rng, (h,), 0.1)),
              (p + "output.LayerNorm.weight", normal(rng, (h,), 0.1, 1.0)),
              (p + "output.LayerNorm.bias", normal(rng, (h,), 0.1))]
    t.append(("score.weight", normal(rng, (1, h), 0.2)))
    return t


TENSORS = {"gpt_neox": gpt_neox_tensors, "llama": llama_tensors, "bert": bert_tensors}


def gpt_neox_config(hidden, heads, intermediate, vocab, rotary_pct, parallel):
    return {"architectures": ["GPTNeoXForSequenceClassification"], "model_type": "gpt_neox",
            "vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": 2, "num_attention_heads": heads,
            "intermediate_size": intermediate, "hidden_act": "gelu", "rotary_pct": rotary_pct,
            "rotary_emb_base": 10000, "max_position_embeddings": 64, "initializer_range": 0.02,
            "layer_norm_eps": 1e-5, "use_cache": True, "use_parallel_residual": parallel,
            "tie_word_embeddings": False, "attention_bias": True, "attention_dropout": 0.0, "hidden_dropout": 0.0,
            "bos_token_id": 0, "eos_token_id": 0, "num_labels": 1, "torch_dtype": "float32"}


def llama_config(hidden, heads, kv_heads, intermediate, vocab, rope_theta, tied, dtype, head_dim=None):
    config = {"architectures": ["LlamaForSequenceClassification"], "model_type": "llama",
              "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": intermediate,
              "num_hidden_layers": 2, "num_attention_heads": heads, "num_key_value_heads": kv_heads}
    if head_dim is not None:
        config["head_dim"] = head_dim
    config.update({"hidden_act": "silu", "max_position_embeddings": 64, "initializer_range": 0.02,
                   "rms_norm_eps": 1e-6, "use_cache": True, "pretraining_tp": 1, "tie_word_embeddings": tied,
                   "rope_theta": rope_theta, "rope_scaling": None, "attention_bias": False, "attention_dropout": 0.0,
                   "mlp_bias": False, "bos_token_id": 1, "eos_token_id": 2, "num_labels": 1, "torch_dtype": dtype})
    return config


def bert_config(hidden, heads, intermediate, vocab, pooling, dtype):
    return {"architectures": ["BertForSequenceClassification"], "model_type": "bert",
            "vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": 2, "num_attention_heads": heads,
            "intermediate_size": intermediate, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64, "type_vocab_size": 2,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "position_embedding_type": "absolute", "use_cache": True, "classifier_dropout": None,
            "pooling": pooling, "num_labels": 1, "torch_dtype": dtype}


def lora_config(r, alpha, targets, use_rslora=False, modules_to_save=None):
    """PEFT's adapter_config.json for a LoRA SEQ_CLS adapter (the fields PEFT writes)."""
    return {"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": None, "bias": "none",
            "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layers_pattern": None,
            "layers_to_transform": None, "lora_alpha": alpha, "lora_dropout": 0.05, "modules_to_save": modules_to_save,
            "peft_type": "LORA", "r": r, "rank_pattern": {}, "revision": None, "target_modules": targets,
            "task_type": "SEQ_CLS", "use_dora": False, "use_rslora": use_rslora}


# name, seed, config, model dtype, sequence lengths (the first one also gets every position's logits), adapter
CASES = [
    ("gpt_neox_parallel", 101, gpt_neox_config(32, 2, 128, 96, 0.25, True), "F32", [16, 1, 2, 7, 33],
     lora_config(4, 8, ["query_key_value"])),
    ("gpt_neox_sequential", 202, gpt_neox_config(48, 4, 96, 80, 1.0, False), "F32", [7, 33, 1, 16, 2, 5],
     lora_config(2, 4, ["query_key_value", "dense"])),
    ("llama_gqa", 313, llama_config(48, 4, 2, 128, 128, 500000.0, False, "float32", head_dim=12), "F32",
     [16, 2, 1, 33, 7], lora_config(4, 8, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                           "down_proj"], use_rslora=True)),
    ("llama_tied", 404, llama_config(32, 4, 4, 96, 64, 10000.0, True, "bfloat16"), "BF16", [9, 1, 33, 2, 16],
     lora_config(8, 16, ["q_proj", "v_proj"], modules_to_save=["score"])),
    ("bert_mean", 505, bert_config(48, 4, 192, 100, "mean", "float32"), "F32", [7, 1, 16, 33, 2],
     lora_config(4, 8, r"bert\.encoder\.layer\.\d+\.attention\.self\.(query|value)")),
    ("bert_cls", 606, bert_config(32, 2, 64, 60, "cls", "float16"), "F16", [16, 2, 1, 7, 33, 5], None),
]


def to_torch(arrays):
    return {name: torch.from_numpy(np.array(values, dtype=np.float64)) for name, values in arrays.items()}


def make_adapter(rng, spec, tensors):
    """Draws A and B for every module PEFT would target → (saved tensors in PEFT's order, lora dict, score or None)."""
    shapes = dict((name, values.shape) for name, values in tensors)
    modules = [name[:-len(".weight")] for name, _ in tensors if name.endswith(".weight")]
    targets = peft_targets(spec["target_modules"], modules)
    assert targets and all(len(shapes[t + ".weight"]) == 2 for t in targets), targets
    r = spec["r"]
    scale = spec["lora_alpha"] / (math.sqrt(r) if spec["use_rslora"] else r)
    saved, lora = [], {}
    for module in targets:
        out_f, in_f = shapes[module + ".weight"]
        a, b = normal(rng, (r, in_f), 0.2), normal(rng, (out_f, r), 0.1)
        saved += [(f"base_model.model.{module}.lora_A.weight", a), (f"base_model.model.{module}.lora_B.weight", b)]
        lora[module] = (torch.from_numpy(a.astype(np.float64)), torch.from_numpy(b.astype(np.float64)), scale)
    score = None
    if spec["modules_to_save"]:
        assert spec["modules_to_save"] == ["score"]
        score = normal(rng, shapes["score.weight"], 0.2)
        # ModulesToSaveWrapper's state dict entry score.modules_to_save.default.weight, saved without the wrapper
        saved.append(("base_model.model.score.weight", score))
        score = torch.from_numpy(score.astype(np.float64))
    return saved, lora, score


def dump_expected(path, expected):
    """One top-level key per line; floats as repr (shortest round-trip form of the float64)."""
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in expected.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def build_case(name, seed, config, dtype, lengths, adapter_spec):
    rng = np.random.default_rng(seed)
    tensors = TENSORS[config["model_type"]](config, rng)
    sequences = [rng.integers(0, config["vocab_size"], size=n).tolist() for n in lengths]
    out = OUT / name
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    stored = write_safetensors(out / "model.safetensors", tensors, dtype)
    readback = read_safetensors(out / "model.safetensors")
    assert all(np.array_equal(readback[k], stored[k]) for k in stored) and list(readback) == list(stored)
    weights = to_torch(stored)
    base = Model(config, weights)
    hidden = HIDDEN[config["model_type"]]
    finals = [hidden(base, torch.tensor(ids)) for ids in sequences]
    expected = {"sequences": sequences, "rewards": [reward(base, h, weights["score.weight"]) for h in finals]}
    if config["model_type"] != "bert":
        expected["last_logits"] = [lm_logits(base, h)[-1].tolist() for h in finals]
        expected["all_logits_first"] = lm_logits(base, finals[0]).tolist()
    checks = [f"{name}: {dtype}, {sum(v.size for _, v in tensors)} weights"]
    if dtype != "F32":
        checks.append(check_rounding(tensors, stored, dtype, config, sequences, hidden))
    if adapter_spec is not None:
        saved, lora, adapter_score = make_adapter(rng, adapter_spec, tensors)
        (out / "adapter").mkdir()
        (out / "adapter" / "adapter_config.json").write_text(json.dumps(adapter_spec, indent=2) + "\n")
        write_safetensors(out / "adapter" / "adapter_model.safetensors", saved, "F32")
        score = adapter_score if adapter_score is not None else weights["score.weight"]
        adapted = Model(config, merged(weights, lora))
        expected["rewards_with_adapter"] = [reward(adapted, hidden(adapted, torch.tensor(ids)), score)
                                            for ids in sequences]
        checks.append(check_lora(config, weights, lora, score, sequences, hidden,
                                 expected["rewards_with_adapter"], expected["rewards"]))
    checks.append(check_attention_direction(base, sequences[0], hidden))
    dump_expected(out / "expected.json", expected)
    return checks


# ---------------------------------------------------------------- self-checks

def check_rounding(tensors, stored, dtype, config, sequences, hidden):
    """Our RNE rounding equals torch's cast, really changes the weights, and the changes reach the outputs."""
    cast = torch.bfloat16 if dtype == "BF16" else torch.float16
    for name, values in tensors:
        assert np.array_equal(torch.from_numpy(values).to(cast).float().numpy(), stored[name]), name
    changed = sum(int(np.count_nonzero(values != stored[name])) for name, values in tensors)
    unrounded = Model(config, to_torch(dict(tensors)))
    rounded = Model(config, to_torch(stored))
    ids = torch.tensor(sequences[0])
    delta = abs(reward(unrounded, hidden(unrounded, ids), unrounded.w["score.weight"])
                - reward(rounded, hidden(rounded, ids), rounded.w["score.weight"]))
    assert delta > 1e-6, delta
    return f"  {dtype} rounding = torch cast; {changed} weights changed by rounding; reward moves {delta:.2e} vs F32 weights"


def check_lora(config, weights, lora, score, sequences, hidden, merged_rewards, base_rewards):
    """Merged W + s·B·A equals the unmerged W0·x + s·B(A·x) path, and the adapter matters."""
    unmerged = Model(config, weights, lora)
    worst = 0.0
    for ids, want in zip(sequences, merged_rewards):
        got = reward(unmerged, hidden(unmerged, torch.tensor(ids)), score)
        worst = max(worst, abs(got - want))
    assert worst < 1e-10, worst
    moved = max(abs(a - b) for a, b in zip(merged_rewards, base_rewards))
    assert moved > 1e-3, moved
    modules = [m.split(".", 1)[1] for m in lora]
    return f"  LoRA merged = unmerged (max diff {worst:.1e}); adapter moves rewards by up to {moved:.3f}; " \
           f"{len(modules)} modules: {', '.join(modules[:4])}{' ...' if len(modules) > 4 else ''}"


def check_attention_direction(m, ids, hidden):
    """Decoders: changing tokens after position p leaves positions ≤ p unchanged and moves the rest.
    BERT: changing the last token moves the first position (bidirectional)."""
    ids = torch.tensor(ids)
    changed = ids.clone()
    p = len(ids) // 2
    changed[p + 1:] = (changed[p + 1:] + 1) % m.config["vocab_size"]
    a, b = hidden(m, ids), hidden(m, changed)
    if m.config["model_type"] == "bert":
        moved = float((a[0] - b[0]).abs().max())
        assert moved > 1e-6, moved
        return f"  bidirectional: position 0 moves {moved:.2e} when later tokens change"
    still = float((a[:p + 1] - b[:p + 1]).abs().max())
    moved = float((a[p + 1:] - b[p + 1:]).abs().max())
    assert still < 1e-12 and moved > 1e-6, (still, moved)
    return f"  causal: positions <= {p} unchanged ({still:.1e}) when later tokens change; later moved {moved:.2e}"


def check_rope_by_hand():
    """One 4-dim head at position 3, theta 500000: pairs (0, 2) and (1, 3) rotate by 3·θ^0 and 3·θ^(-1/2)."""
    x = torch.tensor([0.3, -1.2, 0.7, 2.0], dtype=F64)
    t = torch.zeros(1, 4, 4, dtype=F64)
    t[0, 3] = x
    got = rotary(t, 500000.0)[0, 3]
    a0, a1 = 3.0, 3.0 / math.sqrt(500000.0)
    want = torch.tensor([0.3 * math.cos(a0) - 0.7 * math.sin(a0), -1.2 * math.cos(a1) - 2.0 * math.sin(a1),
                         0.7 * math.cos(a0) + 0.3 * math.sin(a0), 2.0 * math.cos(a1) + -1.2 * math.sin(a1)], dtype=F64)
    diff = float((got - want).abs().max())
    assert diff < 1e-14, diff
    return f"RoPE hand example (hd 4, pos 3, theta 5e5): max diff {diff:.1e}"


def check_neox_layout():
    """Head h's q/k/v are rows [3h·hd, 3h·hd+hd), [+hd, +2hd), [+2hd, +3hd) of query_key_value (not [q|k|v] blocks)."""
    rng = np.random.default_rng(7)
    heads, hd, t = 3, 4, 5
    w = torch.from_numpy(rng.standard_normal((3 * heads * hd, heads * hd)))
    x = torch.from_numpy(rng.standard_normal((t, heads * hd)))
    qkv = (x @ w.T).view(t, heads, 3 * hd).transpose(0, 1)
    for h in range(heads):
        base = 3 * h * hd
        for part in range(3):
            rows = w[base + part * hd: base + (part + 1) * hd]
            assert torch.allclose(qkv[h, :, part * hd:(part + 1) * hd], x @ rows.T, rtol=0, atol=1e-12)
    return "GPT-NeoX query_key_value per-head q|k|v row layout: ok"


def check_peft_matching():
    """A list target `dense` matches attention.dense but not mlp.dense_h_to_4h / dense_4h_to_h."""
    names = ["gpt_neox.layers.0.attention.query_key_value", "gpt_neox.layers.0.attention.dense",
             "gpt_neox.layers.0.mlp.dense_h_to_4h", "gpt_neox.layers.0.mlp.dense_4h_to_h"]
    assert peft_targets(["query_key_value", "dense"], names) == names[:2]
    return "PEFT target matching: 'dense' spares dense_h_to_4h/dense_4h_to_h: ok"


def find_shared_data():
    for d in [HERE, *HERE.parents]:
        if (d.parent / "shared" / "data").is_dir():
            return d.parent / "shared" / "data"
    return None


def load_llama2c(path):
    """llama2.c v0 checkpoint → (HF-style llama config, float64 weights by HF name); wq/wk rows go from
    llama2.c's interleaved RoPE pairs (2j, 2j+1) to HF's rotate_half pairs (j, j + hd/2)."""
    raw = path.read_bytes()
    dim, hidden_dim, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    floats = np.frombuffer(raw, "<f4", offset=28)
    hd = dim // heads
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        out = floats[pos:pos + n].reshape(shape)
        pos += n
        return out

    def to_rotate_half(w, n_heads):
        order = np.concatenate([np.arange(0, hd, 2), np.arange(1, hd, 2)])
        return w.reshape(n_heads, hd, dim)[:, order].reshape(n_heads * hd, dim)

    emb = take(abs(vocab), dim)
    rms_att, wq = take(layers, dim), take(layers, dim, dim)
    wk, wv = take(layers, kv_heads * hd, dim), take(layers, kv_heads * hd, dim)
    wo, rms_ffn = take(layers, dim, dim), take(layers, dim)
    w1, w2, w3 = take(layers, hidden_dim, dim), take(layers, dim, hidden_dim), take(layers, hidden_dim, dim)
    rms_final = take(dim)
    w = {"model.embed_tokens.weight": emb, "model.norm.weight": rms_final}
    for n in range(layers):
        p = f"model.layers.{n}."
        w.update({p + "input_layernorm.weight": rms_att[n], p + "post_attention_layernorm.weight": rms_ffn[n],
                  p + "self_attn.q_proj.weight": to_rotate_half(wq[n], heads),
                  p + "self_attn.k_proj.weight": to_rotate_half(wk[n], kv_heads),
                  p + "self_attn.v_proj.weight": wv[n], p + "self_attn.o_proj.weight": wo[n],
                  p + "mlp.gate_proj.weight": w1[n], p + "mlp.down_proj.weight": w2[n], p + "mlp.up_proj.weight": w3[n]})
    config = {"model_type": "llama", "hidden_size": dim, "intermediate_size": hidden_dim, "num_hidden_layers": layers,
              "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": abs(vocab),
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": vocab > 0,
              "max_position_embeddings": seq_len}
    return config, to_torch(w)


def check_stories260k():
    """The real trained stories260K (SOURCE.txt): BOS → top-5 next ids and logits, and 24 greedy ids.
    BOS sits at position 0, where RoPE is the identity, so it is the greedy ids that test the wq/wk row
    permutation (without it they part from SOURCE.txt's at the 11th id)."""
    data = find_shared_data()
    path = data / "stories260K" / "stories260K.bin" if data else None
    if path is None or not path.is_file():
        raise SystemExit("stories260K check: ../shared/data/stories260K/stories260K.bin not found")
    config, weights = load_llama2c(path)
    m = Model(config, weights)
    logits = lm_logits(m, llama_hidden(m, torch.tensor([1])))[-1]
    top = torch.topk(logits, 5)
    want_ids, want_logits = [403, 385, 410, 317, 407], [17.0235, 15.4062, 13.1083, 12.7692, 12.4181]
    diff = max(abs(a - b) for a, b in zip(top.values.tolist(), want_logits))
    assert top.indices.tolist() == want_ids and diff < 1e-3, (top.indices.tolist(), top.values.tolist())
    ids = [1]
    for _ in range(24):
        ids.append(int(lm_logits(m, llama_hidden(m, torch.tensor(ids)))[-1].argmax()))
    want_greedy = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426,
                   338, 401, 396, 267, 337, 410, 408, 419, 292]
    assert ids[1:] == want_greedy, ids[1:]
    return (f"stories260K: BOS -> top-5 {top.indices.tolist()} logits "
            f"{[round(v, 4) for v in top.values.tolist()]} (max diff {diff:.1e} vs SOURCE.txt); 24 greedy ids match")


# ---------------------------------------------------------------- training gradients (float64 autograd)

CENTER, L2 = 0.01, 0.05  # C and β of the full loss

# (chosen length, rejected length, margin) per preference pair; token ids are drawn from the case's rng
PAIRS = [(5, 3, 0.5), (7, 11, 0.0), (9, 4, -0.25), (3, 8, 1.0), (11, 6, 0.0), (6, 10, 0.125)]

# name, seed, config, adapter (F32 model; the adapter always saves its own score head). BERT's list target
# "dense" matches attention.output.dense, intermediate.dense and output.dense, as in PEFT.
TRAIN_CASES = [
    ("gpt_neox_parallel_train", 707, gpt_neox_config(16, 2, 20, 16, 0.5, True),
     lora_config(4, 8, ["query_key_value", "dense", "dense_h_to_4h"], modules_to_save=["score"])),
    ("llama_gqa_train", 808, llama_config(14, 4, 2, 20, 16, 10000.0, True, "float32", head_dim=6),
     lora_config(4, 8, ["q_proj", "v_proj", "o_proj", "down_proj"], modules_to_save=["score"])),
    ("bert_mean_train", 909, {**bert_config(14, 2, 20, 16, "mean", "float32"), "max_position_embeddings": 12},
     lora_config(4, 8, ["query", "value", "dense"], modules_to_save=["score"])),
]


def bt_loss(chosen, rejected, margins, center, l2):
    """chosen, rejected, margins [N] → L = mean −log σ(r_c − r_r − m) + C·mean (r_c + r_r)² + β·mean ½(r_c² + r_r²)."""
    return (-F.logsigmoid(chosen - rejected - margins)).mean() + center * ((chosen + rejected) ** 2).mean() \
        + l2 * (0.5 * (chosen ** 2 + rejected ** 2)).mean()


def pair_rewards(m, score, pairs):
    """→ rewards (chosen [N], rejected [N]), one unpadded sequence at a time."""
    hidden = HIDDEN[m.config["model_type"]]
    r = [[reward_tensor(m, hidden(m, torch.tensor(p[key])), score) for p in pairs]
         for key in ("chosen_ids", "rejected_ids")]
    return torch.stack(r[0]), torch.stack(r[1])


def build_train_case(name, seed, config, adapter_spec):
    """Writes config.json, model.safetensors, adapter/, pairs.jsonl, expected.json, grads(_plain).safetensors."""
    rng = np.random.default_rng(seed)
    tensors = TENSORS[config["model_type"]](config, rng)
    pairs = [{"chosen_ids": rng.integers(0, config["vocab_size"], size=nc).tolist(),
              "rejected_ids": rng.integers(0, config["vocab_size"], size=nr).tolist(), "margin": m}
             for nc, nr, m in PAIRS]
    saved, lora, score = make_adapter(rng, adapter_spec, tensors)
    out = OUT / name
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = to_torch(write_safetensors(out / "model.safetensors", tensors, "F32"))
    (out / "adapter").mkdir()
    (out / "adapter" / "adapter_config.json").write_text(json.dumps(adapter_spec, indent=2) + "\n")
    write_safetensors(out / "adapter" / "adapter_model.safetensors", saved, "F32")
    (out / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))

    # the trainable tensors under their adapter keys: make_adapter's float64 A, B and score become leaves
    params = {}
    for module, (a, b, _) in lora.items():
        params[f"base_model.model.{module}.lora_A.weight"] = a.requires_grad_()
        params[f"base_model.model.{module}.lora_B.weight"] = b.requires_grad_()
    params["base_model.model.score.weight"] = score.requires_grad_()
    assert list(params) == [key for key, _ in saved]
    model = Model(config, weights, lora)
    margins = torch.tensor([m for _, _, m in PAIRS], dtype=F64)

    def loss(full):
        chosen, rejected = pair_rewards(model, score, pairs)
        return bt_loss(chosen, rejected, margins if full else 0 * margins, CENTER if full else 0.0, L2 if full else 0.0)

    chosen, rejected = pair_rewards(model, score, pairs)
    expected = {"loss_full": None, "loss_plain": None, "C": CENTER, "beta": L2,
                "rewards_chosen": chosen.tolist(), "rewards_rejected": rejected.tolist()}
    checks = [f"{name}: {sum(v.size for _, v in tensors)} weights, {sum(v.size for _, v in saved)} trainable"]
    for full, key, file in ((True, "loss_full", "grads.safetensors"), (False, "loss_plain", "grads_plain.safetensors")):
        value = loss(full)
        grads = torch.autograd.grad(value, list(params.values()))
        expected[key] = float(value)
        assert all(float(g.abs().max()) > 0 for g in grads), key
        stored = write_safetensors(out / file, [(k, g.numpy()) for k, g in zip(params, grads)], "F64")
        readback = read_safetensors(out / file)
        assert list(readback) == list(params) and all(np.array_equal(readback[k], stored[k]) for k in stored)
        checks.append(check_gradients(lambda: float(loss(full)), params, dict(zip(params, grads)), seed, key))
    checks.append(check_lora_b_matters(model, score, pairs, chosen, rejected))
    dump_expected(out / "expected.json", expected)
    return checks


def check_gradients(loss, params, grads, seed, label):
    """Autograd against central finite differences (h = 1e-5) at 8 coordinates: one per tensor kind (A, B, score)
    and then random tensors, each at a random coordinate among the larger half of its gradient's magnitudes."""
    rng = np.random.default_rng(seed + 1)
    names = list(params)
    picks = [next(n for n in names if n.endswith(kind)) for kind in ("lora_A.weight", "lora_B.weight", "score.weight")]
    picks += [names[i] for i in rng.integers(0, len(names), size=5)]
    h, worst = 1e-5, 0.0
    for name in picks:
        flat_grad = grads[name].reshape(-1)
        big = torch.nonzero(flat_grad.abs() >= flat_grad.abs().median()).reshape(-1)
        i = int(big[rng.integers(0, len(big))])
        theta = params[name].data.view(-1)
        keep = float(theta[i])
        theta[i] = keep + h
        up = loss()
        theta[i] = keep - h
        down = loss()
        theta[i] = keep
        fd, g = (up - down) / (2 * h), float(flat_grad[i])
        worst = max(worst, abs(fd - g) / abs(g))
    assert worst <= 1e-7, (label, worst)
    return f"  {label}: autograd = central differences at {len(picks)} coordinates (max rel err {worst:.1e})"


def check_lora_b_matters(model, score, pairs, chosen, rejected):
    """Zeroing every lora_B (the PEFT init) moves the rewards: the nonzero B reaches the outputs."""
    zero_b = Model(model.config, model.w, {k: (a, torch.zeros_like(b), s) for k, (a, b, s) in model.lora.items()})
    with torch.no_grad():
        c0, r0 = pair_rewards(zero_b, score, pairs)
    moved = float(torch.cat((chosen - c0, rejected - r0)).abs().max())
    assert moved > 1e-3, moved
    return f"  lora_B = 0 would move the rewards by up to {moved:.3f}"


def main():
    torch.set_num_threads(1)  # one thread: same summation order, same bytes, every run
    print(check_rope_by_hand())
    print(check_neox_layout())
    print(check_peft_matching())
    print(check_stories260k())
    if OUT.exists():
        shutil.rmtree(OUT)
    for case in CASES:
        print("\n".join(build_case(*case)))
    for case in TRAIN_CASES:
        print("\n".join(build_train_case(*case)))
    sizes = sorted((p.stat().st_size, p.relative_to(OUT)) for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures: {len(sizes)} files, {sum(s for s, _ in sizes)} bytes in {OUT}")


if __name__ == "__main__":
    sys.exit(main())
