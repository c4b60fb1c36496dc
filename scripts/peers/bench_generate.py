#!/usr/bin/env python3
"""`keel generate` against transformers' `generate`, same model, same prompts, same sampling.

    scripts/peers/run.sh scripts/peers/bench_generate.py --keel build/keel [--reps 3] [--threads 2]

The model is the ~25M-parameter Llama layout of the train-step bench (vocab 8192, hidden 512, 6
layers, 8 query / 4 key-value heads, intermediate 1376), random weights written by transformers'
save_pretrained, with a byte-level BPE tokenizer.json of 8192 pieces (256 bytes + byte pairs) and
no end-of-sequence token, so both sides produce exactly --new tokens per row. Prompts: --prompt
random ids per row. Sampling: temperature 1, top-k off, top-p 1.

Both sides get the same threads (OMP_NUM_THREADS, torch.set_num_threads). transformers runs its
default attention (SDPA) and its default dynamic KV cache; only the generate() call is timed, after
one warm-up call. keel is timed as the whole `keel generate` command (process start, model and
tokenizer load, prefill, decode, writing the JSONL), and again with --max-new-tokens 1: their
difference is keel's time for the other new tokens, without the ~1 s a LibTorch process takes to
start (which a training run pays once). The commands alternate (lockstep), --reps times per batch
size; each ratio is the median over the rounds. Prints a markdown table and "RESULT key value" lines.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from make_test_tokenizers import bytes_to_unicode  # noqa: E402  (this directory is on sys.path)

VOCAB = 8192


def write_tokenizer(d):
    """A byte-level BPE tokenizer.json of VOCAB pieces: the 256 bytes, then byte pairs (a merge each)."""
    char = bytes_to_unicode()
    vocab = {char[b]: b for b in range(256)}
    merges = []
    letters = [ord(c) for c in "etaoinshrdlucmfwypvbgkjqxz ETAOINSHRDLUCMFWYPVBGKJQXZ0123456789.,"]
    pairs = [(a, b) for a in letters for b in range(256)]
    for a, b in pairs[: VOCAB - 256]:
        piece = char[a] + char[b]
        vocab[piece] = len(vocab)
        merges.append(f"{char[a]} {char[b]}")
    assert len(vocab) == VOCAB, len(vocab)
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                                 "use_regex": True},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                     "merges": merges}}
    json.dump(tok, open(os.path.join(d, "tokenizer.json"), "w"))
    json.dump({"bos_token": None, "eos_token": None, "pad_token": None}, open(os.path.join(d, "tokenizer_config.json"), "w"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keel", required=True, help="the keel binary")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--work", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    tmp = None if a.work else tempfile.TemporaryDirectory(prefix="keel_bench_generate_")
    work = a.work or tmp.name
    model_dir = os.path.join(work, "model")
    os.makedirs(model_dir, exist_ok=True)
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=512, intermediate_size=1376, num_hidden_layers=6,
                                   num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
                                   rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=None,
                                   eos_token_id=None, pad_token_id=None)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).float().eval()
    model.save_pretrained(model_dir)
    write_tokenizer(model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"bench_generate: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{n_params / 1e6:.1f}M parameters, prompt {a.prompt}, {a.new} new tokens, {a.threads} threads", flush=True)

    results = {}
    for b in [int(x) for x in a.batches.split(",")]:
        g = torch.Generator().manual_seed(b)
        ids = torch.randint(256, VOCAB, (b, a.prompt), generator=g)
        prompts = os.path.join(work, f"prompts_b{b}.jsonl")
        with open(prompts, "w") as f:
            for r in range(b):
                f.write(json.dumps({"id": r, "prompt_ids": ids[r].tolist()}) + "\n")
        out = os.path.join(work, f"out_b{b}.jsonl")
        keel_cmd = [a.keel, "generate", model_dir, prompts, "-o", out, "--max-new-tokens", str(a.new),
                    "--temperature", "1", "--top-k", "0", "--top-p", "1", "--batch-size", str(b), "--device", "cpu"]
        gen_kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=a.new, min_new_tokens=a.new,
                      attention_mask=torch.ones_like(ids), pad_token_id=0)

        def hf():
            t0 = time.perf_counter()
            with torch.no_grad():
                o = model.generate(ids, **gen_kw)
            s = time.perf_counter() - t0
            assert o.shape == (b, a.prompt + a.new), o.shape
            return s

        def keel(new):
            cmd = list(keel_cmd)
            cmd[cmd.index("--max-new-tokens") + 1] = str(new)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
            s = time.perf_counter() - t0
            rows = [json.loads(l) for l in open(out)]
            assert len(rows) == b and all(r["num_tokens"] == new for r in rows), "keel did not produce every token"
            return s

        hf(), keel(a.new), keel(1)  # warm-up: first-call allocations, page cache
        hs, ks, k1s = [], [], []
        for rep in range(a.reps):
            hs.append(hf())
            ks.append(keel(a.new))
            k1s.append(keel(1))
            print(f"  batch {b} round {rep}: transformers {hs[-1]:.2f} s; keel {ks[-1]:.2f} s, with 1 new token "
                  f"{k1s[-1]:.2f} s", flush=True)
        med = statistics.median
        tok = b * a.new
        # transformers' tok/s; keel's over the whole command; keel's over the other new tokens (whole - 1-token
        # command) against transformers' over the same tokens (its call, less one token's share).
        results[b] = (tok / med(hs), tok / med(ks), b * (a.new - 1) / med(k - k1 for k, k1 in zip(ks, k1s)),
                      med(h / k for h, k in zip(hs, ks)),
                      med(h * (a.new - 1) / a.new / (k - k1) for h, k, k1 in zip(hs, ks, k1s)))
        for key, v in zip(("transformers_tok_s", "keel_tok_s", "keel_decode_tok_s", "speedup", "decode_speedup"),
                          results[b]):
            print(f"RESULT generate/b{b}/{key} {v:.3f}")
    print()
    print(f"| batch | transformers {transformers.__version__} generate() tok/s | keel generate tok/s, whole command "
          f"(ratio) | keel, without start-up (ratio) |")
    print("|---|---|---|---|")
    for b, (h, k, kd, r, rd) in results.items():
        print(f"| {b} | {h:.1f} | {k:.1f} ({r:.2f}x) | {kd:.1f} ({rd:.2f}x) |")
    print(f"(medians of {a.reps} lockstep rounds; prompt {a.prompt}, {a.new} new tokens per row, {a.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
