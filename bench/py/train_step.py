#!/usr/bin/python3
"""PyTorch-eager twin of bench/train_step_bench.cpp: the same ~25M-parameter Llama-layout model
(vocab 8192, hidden 512, 6 layers, 8 query / 4 key-value heads, head_dim 64, intermediate 1376,
untied; RMSNorm, RoPE rotate_half, GQA, SwiGLU), next-token cross-entropy, seq 256, batch 8,
AdamW(lr 1e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1), zero_grad before each step.

Written the way HF transformers' eager LlamaModel computes it (repeat_kv, matmul / sqrt(D) +
additive causal mask built once per forward, fp32 softmax), as a plain nn.Module: the baseline
that keel's C++ step is compared with. Run it with Debian's /usr/bin/python3 (python3-torch,
the same LibTorch 1.13 as keel), or with the peers venv's PyTorch 2.x (scripts/peers_env.sh), there
also under torch.compile (--compile: the model's forward and backward compiled by Inductor, whose
C++ kernels g++ builds during the warm-up steps; AdamW stays eager, as in most training scripts).
Not a reference for numerics beyond the step-0 loss check.

  /usr/bin/python3 bench/py/train_step.py [--threads 2] [--warmup 2] [--steps 5] [--init DIR/init.safetensors] [--profile trace.json] [--lockstep 1] [--compile]

--init loads the weights and token batch written by `train_step_bench --init-dir DIR`, so the
step-0 loss must equal keel's. Prints "RESULT key value" lines like the C++ bench.
"""
import argparse
import json
import math
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTER, EPS, THETA = 8192, 512, 8, 4, 64, 1376, 1e-5, 10000.0


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)
        return self.weight * xf.to(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def repeat_kv(x, rep):  # [B, Hkv, T, D] -> [B, Hkv * rep, T, D]
    if rep == 1:
        return x
    b, h, t, d = x.shape
    return x[:, :, None, :, :].expand(b, h, rep, t, d).reshape(b, h * rep, t, d)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(HIDDEN, HEADS * HEAD_DIM, bias=False)
        self.k_proj = nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.v_proj = nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.o_proj = nn.Linear(HEADS * HEAD_DIM, HIDDEN, bias=False)

    def forward(self, x, cos, sin, mask):  # x [B, T, H]; cos/sin [1, 1, T, D]; mask [1, 1, T, T] additive
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, HEADS, HEAD_DIM).transpose(1, 2)
        k = self.k_proj(x).view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
        v = self.v_proj(x).view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, HEADS // KV_HEADS)
        v = repeat_kv(v, HEADS // KV_HEADS)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(HEAD_DIM) + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, HEADS * HEAD_DIM)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(HIDDEN, INTER, bias=False)
        self.up_proj = nn.Linear(HIDDEN, INTER, bias=False)
        self.down_proj = nn.Linear(INTER, HIDDEN, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = Attention()
        self.mlp = MLP()
        self.input_layernorm = RMSNorm(HIDDEN)
        self.post_attention_layernorm = RMSNorm(HIDDEN)

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class Decoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList([DecoderLayer() for _ in range(layers)])
        self.norm = RMSNorm(HIDDEN)


class LlamaForCausalLM(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.model = Decoder(layers)
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)
        inv_freq = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        for name, p in self.named_parameters():  # HF init: N(0, 0.02), norms 1
            if "norm" not in name:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):  # ids [B, T] -> logits [B, T, V]
        t = ids.shape[1]
        pos = torch.arange(t, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]  # [1, 1, T, D]
        mask = torch.full((t, t), float("-inf")).triu(1)[None, None]  # [1, 1, T, T]
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


def read_safetensors(path):
    """Minimal F32-only safetensors reader (no `safetensors` package on Debian's python)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(data[b:end], dtype=torch.float32).reshape(e["shape"]).clone()
    return out


def matmul_peak_gflops(n, reps):
    x, y = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(x, y)
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(x, y)
        best = max(best, 2.0 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--peak-n", type=int, default=2048)
    ap.add_argument("--init", default="")
    ap.add_argument("--profile", default="", help="chrome trace of the last step's ops")
    ap.add_argument("--lockstep", type=int, default=0, help="1: each step waits for a line on stdin")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch 2.x)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = LlamaForCausalLM(a.layers)
    if a.init:
        tensors = read_safetensors(a.init)
        data = tensors.pop("bench.tokens").long()
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        assert data.shape == (a.batch, a.seq + 1), data.shape
    else:
        torch.manual_seed(1)
        data = torch.randint(0, VOCAB, (a.batch, a.seq + 1))
    inp, tgt = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    model.train()
    step_model = torch.compile(model) if a.compile else model

    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.model.embed_tokens.weight.numel()
    tokens = a.batch * a.seq
    flops = 6.0 * (n_params - n_embed) * tokens + 12.0 * a.layers * a.batch * a.seq ** 2 * HEADS * HEAD_DIM

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    times, losses = [], []
    for step in range(a.warmup + a.steps):
        if a.lockstep and not sys.stdin.readline():
            break
        prof = None
        if a.profile and step + 1 == a.warmup + a.steps:
            prof = torch.autograd.profiler.profile()
            prof.__enter__()
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = step_model(inp)
        loss = F.cross_entropy(logits.view(-1, VOCAB), tgt.view(-1))
        loss.backward()
        opt.step()
        l = loss.item()
        s = time.perf_counter() - t0
        if prof is not None:
            prof.__exit__(None, None, None)
            prof.export_chrome_trace(a.profile)
        losses.append(l)
        if step >= a.warmup:
            times.append(s)
        print(f"  python step {step}: loss {l:.6f}, {s * 1e3:.1f} ms{' (warm-up)' if step < a.warmup else ''}", flush=True)
    times.sort()
    median = times[len(times) // 2]
    peak = matmul_peak_gflops(a.peak_n, 5)
    achieved = flops / median / 1e9
    mode = "torch.compile" if a.compile else "eager"
    print(f"train_step.py (PyTorch {torch.__version__} {mode}): {n_params} parameters ({n_params / 1e6:.2f}M); "
          f"batch {a.batch} x seq {a.seq}; threads {torch.get_num_threads()}")
    print(f"  median {median * 1e3:.1f} ms/step (min {times[0] * 1e3:.1f}); {achieved:.1f} GFLOP/s = "
          f"{100 * achieved / peak:.1f}% of the measured sgemm peak {peak:.1f} GFLOP/s")
    print(f"RESULT py/params {n_params}")
    print(f"RESULT py/ms_per_step {median * 1e3:.3f}")
    print(f"RESULT py/gflops {achieved:.3f}")
    print(f"RESULT py/peak_gflops {peak:.3f}")
    print(f"RESULT py/loss0 {losses[0]:.6f}")
    print(f"RESULT py/loss_last {losses[-1]:.6f}")


if __name__ == "__main__":
    main()
