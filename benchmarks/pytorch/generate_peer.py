#!/usr/bin/python3
"""PyTorch CPU peer of brm's generation benchmark (GenerateBenchmark): tokens/s of sampling from stories260K with a KV cache.

Run with Debian's torch 1.13 (CPU):
    /usr/bin/python3 benchmarks/pytorch/generate_peer.py --model DIR --threads 1
where DIR is stories260K imported by brm (brm import llama2c --checkpoint stories260K.bin --tokenizer tok512.bin --out DIR).
Prints one JSON line per batch size on stdout; the self-check and the BLAS in use go to stderr.

The model is transformers' LlamaForCausalLM written in plain torch the way its eager modeling_llama.py is, for decoding:
  x = embed[ids]; per layer: h = x + o_proj(attn(rmsnorm(x))), x = h + down(silu(gate(n)) * up(n)), n = rmsnorm(h);
  logits = rmsnorm(x) · embedᵀ (tied). RMSNorm x·rsqrt(mean(x²) + eps)·w; rotary rotate_half with float32 cos/sin
  tables; attention q [B, H, 1, D] against the cache K, V [B, Hkv, t, D] repeated to H heads (repeat_kv), softmax(q·Kᵀ/√D)·V.
KV cache: K, V [B, Hkv, 64, D] per layer, written at each step's position (all sequences start from BOS, so they share it).

Measured, under torch.inference_mode(): B samples from the prompt BOS, each exactly 64 new tokens (no eos stop), drawn
at temperature 1 from the full softmax with torch.multinomial, with the log-probability of each drawn token gathered from
log_softmax (brm reports it too): one prefill step (BOS) and 63 decode steps of B rows. tokens/s = B·64 / wall seconds,
reported as median, min and max of --reps runs after --warmup untimed ones. Before timing, greedy decoding from BOS must
give the continuation of stories260K/SOURCE.txt (the numpy forward of the original llama2.c weights).
"""
import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="stories260K imported by brm (config.json, model.safetensors)")
    p.add_argument("--threads", type=int, default=1, help="torch, OpenMP and BLAS threads")
    p.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    p.add_argument("--warmup", type=int, default=2, help="untimed generations per batch size")
    p.add_argument("--reps", type=int, default=7, help="timed generations per batch size")
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import json  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import peer_model as peer  # noqa: E402

NEW_TOKENS = 64
BOS = 1
# stories260K/SOURCE.txt: greedy continuation ids after BOS (first 24)
GREEDY = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
          419, 292]


def read_safetensors(path):
    """name → float32 tensor of a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        start, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw, dtype="<f4", count=(end - start) // 4, offset=8 + n + start)
                                     .reshape(info["shape"]).copy())
    return out


class Llama:
    """LlamaForCausalLM's decoding forward over a KV cache; weights by Hugging Face parameter name."""

    def __init__(self, config, w):
        self.c, self.w = config, w
        self.layers = config["num_hidden_layers"]
        self.heads, self.kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
        self.dim = config.get("head_dim", config["hidden_size"] // self.heads)
        self.eps = config["rms_norm_eps"]
        inv_freq = 1.0 / (config["rope_theta"] ** (torch.arange(0, self.dim, 2, dtype=torch.float32) / self.dim))
        angles = torch.outer(torch.arange(config["max_position_embeddings"], dtype=torch.float32), inv_freq)
        emb = torch.cat((angles, angles), dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.head = w.get("lm_head.weight", w["model.embed_tokens.weight"])

    def rmsnorm(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w[name]

    @staticmethod
    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def new_cache(self, batch, length):
        return [(torch.zeros(batch, self.kv_heads, length, self.dim), torch.zeros(batch, self.kv_heads, length, self.dim))
                for _ in range(self.layers)]

    def step(self, ids, pos, cache):
        """logits [B, vocab] after ids [B, T] at positions pos..pos+T-1, their keys and values written to the cache."""
        b, t = ids.shape
        x = F.embedding(ids, self.w["model.embed_tokens.weight"])
        cos, sin = self.cos[pos:pos + t], self.sin[pos:pos + t]
        mask = None if t == 1 else torch.full((t, pos + t), float("-inf")).triu(pos + 1)
        for i in range(self.layers):
            p = f"model.layers.{i}."
            n = self.rmsnorm(x, p + "input_layernorm.weight")
            q = F.linear(n, self.w[p + "self_attn.q_proj.weight"]).view(b, t, self.heads, self.dim).transpose(1, 2)
            k = F.linear(n, self.w[p + "self_attn.k_proj.weight"]).view(b, t, self.kv_heads, self.dim).transpose(1, 2)
            v = F.linear(n, self.w[p + "self_attn.v_proj.weight"]).view(b, t, self.kv_heads, self.dim).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            keys, values = cache[i]
            keys[:, :, pos:pos + t] = k
            values[:, :, pos:pos + t] = v
            group = self.heads // self.kv_heads
            kk = keys[:, :, :pos + t].repeat_interleave(group, dim=1)
            vv = values[:, :, :pos + t].repeat_interleave(group, dim=1)
            scores = torch.matmul(q, kk.transpose(2, 3)) / (self.dim ** 0.5)
            if mask is not None:
                scores = scores + mask
            o = torch.matmul(scores.softmax(-1), vv).transpose(1, 2).reshape(b, t, self.heads * self.dim)
            h = x + F.linear(o, self.w[p + "self_attn.o_proj.weight"])
            n = self.rmsnorm(h, p + "post_attention_layernorm.weight")
            x = h + F.linear(F.silu(F.linear(n, self.w[p + "mlp.gate_proj.weight"])) * F.linear(n, self.w[p + "mlp.up_proj.weight"]),
                             self.w[p + "mlp.down_proj.weight"])
        return F.linear(self.rmsnorm(x[:, -1], "model.norm.weight"), self.head)

    def generate(self, batch, new_tokens, generator=None):
        """ids [B, new_tokens] and the sum of their log-probabilities [B], sampled (greedy when generator is None) from BOS."""
        cache = self.new_cache(batch, new_tokens)
        ids = torch.full((batch, 1), BOS, dtype=torch.long)
        out = torch.empty(batch, new_tokens, dtype=torch.long)
        logprob = torch.zeros(batch)
        for t in range(new_tokens):
            logits = self.step(ids, t, cache)
            if generator is None:
                ids = logits.argmax(-1, keepdim=True)
            else:
                ids = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            logprob += logits.log_softmax(-1).gather(1, ids)[:, 0]
            out[:, t] = ids[:, 0]
        return out, logprob


def main():
    torch.set_num_threads(ARGS.threads)
    config = json.loads((Path(ARGS.model) / "config.json").read_text())
    model = Llama(config, read_safetensors(Path(ARGS.model) / "model.safetensors"))
    blas = peer.blas_in_use()
    with torch.inference_mode():
        greedy, _ = model.generate(1, len(GREEDY))
        if greedy[0].tolist() != GREEDY:
            sys.exit(f"generate_peer: greedy from BOS {greedy[0].tolist()} differs from SOURCE.txt {GREEDY}")
        print(f"self-check: greedy from BOS matches SOURCE.txt; torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"BLAS: {blas}", file=sys.stderr)
        for batch in map(int, ARGS.batches.split(",")):
            loadavg = os.getloadavg()[0]
            generator = torch.Generator().manual_seed(batch)
            timings = []
            for rep in range(ARGS.warmup + ARGS.reps):
                wall, cpu = time.perf_counter(), time.process_time()
                model.generate(batch, NEW_TOKENS, generator)
                if rep >= ARGS.warmup:
                    timings.append((time.perf_counter() - wall, time.process_time() - cpu))
            rates = sorted(batch * NEW_TOKENS / wall for wall, _ in timings)
            print(json.dumps({
                "impl": "pytorch", "allocator": "glibc-tuned" if os.environ.get("GLIBC_TUNABLES") else "glibc",
                "threads": ARGS.threads, "batch": batch, "new_tokens": NEW_TOKENS,
                "tokens_per_s_median": round(statistics.median(rates), 1), "tokens_per_s_min": round(rates[0], 1),
                "tokens_per_s_max": round(rates[-1], 1), "reps": len(timings),
                "cpu_per_wall_median": round(statistics.median(cpu / wall for wall, cpu in timings), 2),
                "torch": torch.__version__, "blas": blas, "loadavg_1m_before": round(loadavg, 2)}), flush=True)


if __name__ == "__main__":
    main()
