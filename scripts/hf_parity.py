#!/usr/bin/env python3
"""keel <-> Hugging Face transformers parity for the Llama, Qwen2 and Mistral layouts (issue: models).

Needs PyTorch and transformers: ctest runs it with the pinned peers venv (scripts/peers_env.sh) as
Peers.TransformersLogitsBothWays; a GPU machine runs it with its own PyTorch (scripts/gpu_session.sh):

    scripts/peers/run.sh scripts/hf_parity.py --test-bin build/tests/models_tests [--work DIR] [--json OUT.json]

1. For each family, transformers builds a tiny random model (weights re-drawn with a larger spread
   than HF's init so that every tensor matters), saves it with save_pretrained, and computes fp32
   logits on CPU for a batch with left padding (position ids = cumsum(mask) - 1, as in generation).
2. The C++ test HfParityPeer (in --test-bin) loads each directory into keel, compares logits
   (max abs difference <= 1e-4 on real positions; CPU, CUDA fp32 and CUDA bf16 autocast reported),
   then saves a keel-initialised model of the same config with keel's writer, plus keel's logits.
3. This script loads keel's directory into transformers and compares the logits the same way.
Exit status 0 only when every comparison is within 1e-4.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

# Nothing is downloaded: every model is made here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

TOL = 1e-4
VOCAB, BATCH, SEQ = 256, 3, 24
PADS = [0, 5, 11]  # left padding per row


def make_config(family):
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=128, rms_norm_eps=1e-6,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if family == "llama":
        cls = transformers.LlamaConfig
        kw = dict(num_key_value_heads=2, tie_word_embeddings=False, attention_bias=False)
        rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    elif family == "qwen2":
        cls = transformers.Qwen2Config
        kw = dict(num_key_value_heads=2, tie_word_embeddings=True, use_sliding_window=False)
        rope = {"rope_type": "default", "rope_theta": 1000000.0}
    elif family == "qwen3":
        # q/k RMSNorm per head, no bias, an explicit head_dim unlike hidden / heads (as Qwen3's 128).
        cls = transformers.Qwen3Config
        kw = dict(num_key_value_heads=2, tie_word_embeddings=True, head_dim=32, attention_bias=False,
                  use_sliding_window=False)
        rope = {"rope_type": "default", "rope_theta": 1000000.0}
    else:
        cls = transformers.MistralConfig
        kw = dict(num_key_value_heads=1, tie_word_embeddings=False, sliding_window=8)
        rope = {"rope_type": "default", "rope_theta": 10000.0}
    # transformers >= 5 takes rope_parameters; older versions rope_theta + rope_scaling.
    if int(transformers.__version__.split(".")[0]) >= 5:
        cfg = cls(**common, **kw, rope_parameters=dict(rope))
    else:
        legacy = dict(rope_theta=rope["rope_theta"])
        if rope["rope_type"] != "default":
            legacy["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
        cfg = cls(**common, **kw, **legacy)
    return cfg


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, VOCAB, (BATCH, SEQ), generator=g)
    mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    for r, p in enumerate(PADS):
        mask[r, :p] = 0
        ids[r, :p] = 0
    return ids, mask


def hf_logits(model, ids, mask):
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()


def masked_max_diff(a, b, mask):
    m = mask.bool().unsqueeze(-1).expand_as(a)
    return (a - b).abs()[m].max().item()


def load_model(path_or_cfg):
    kw = {"attn_implementation": "eager"}
    if isinstance(path_or_cfg, str):
        m = transformers.AutoModelForCausalLM.from_pretrained(path_or_cfg, **kw)
    else:
        m = transformers.AutoModelForCausalLM.from_config(path_or_cfg, **kw)
    return m.float().eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--test-bin", required=True)
    ap.add_argument("--work", default="")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    tmp = None if a.work else tempfile.TemporaryDirectory(prefix="keel_hf_parity_")
    work = a.work or tmp.name
    os.makedirs(work, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, work dir {work}", flush=True)
    ids, mask = inputs()
    report = {"torch": torch.__version__, "transformers": transformers.__version__, "tolerance": TOL}
    ok = True
    for fam in ("llama", "qwen2", "qwen3", "mistral"):
        try:
            cfg = make_config(fam)
            model = load_model(cfg)
            randomize(model, {"llama": 1, "qwen2": 2, "qwen3": 4, "mistral": 3}[fam])
            d = os.path.join(work, "hf_" + fam)
            model.save_pretrained(d)  # safetensors
            # keel's safetensors reader takes float tensors only: ids and mask travel as exact fp32.
            save_file({"input_ids": ids.float(), "attention_mask": mask.float(),
                       "logits": hf_logits(model, ids, mask).contiguous()},
                      os.path.join(d, "parity_io.safetensors"))
            with open(os.path.join(d, "config.json")) as f:
                report[fam + "/hf_config"] = json.load(f)
        except Exception as e:  # report and go on with the next family
            report[fam + "/hf_error"] = repr(e)
            print(f"[parity] {fam}: building the transformers model FAILED: {e!r}", flush=True)
            ok = False
    env = dict(os.environ, KEEL_HF_PARITY_DIR=work)
    r = subprocess.run([a.test_bin, "--gtest_filter=HfParityPeer.*"], env=env, capture_output=True, text=True)
    print(r.stdout[-6000:], r.stderr[-3000:], flush=True)
    report["keel_test_rc"] = r.returncode
    report["keel_test_lines"] = [l for l in r.stdout.splitlines() if l.startswith("[parity]")]
    ran = "[  PASSED  ] 1 test." in r.stdout
    if not ran:
        print("[parity] HfParityPeer did not run and pass in the test binary", flush=True)
    ok &= r.returncode == 0 and ran
    for fam in ("llama", "qwen2", "qwen3", "mistral"):
        kd = os.path.join(work, "keel_" + fam)
        try:
            model = load_model(kd)
            keel = load_file(os.path.join(work, f"keel_{fam}_logits.safetensors"))["logits"].float()
            diff = masked_max_diff(hf_logits(model, ids, mask), keel, mask)
            report[fam + "/keel_to_hf_max_abs"] = diff
            print(f"[parity] {fam} keel->transformers cpu fp32 max|dlogit| = {diff:.3g}", flush=True)
            ok &= diff <= TOL
        except Exception as e:  # report and go on with the next family
            report[fam + "/keel_to_hf_error"] = repr(e)
            print(f"[parity] {fam} keel->transformers FAILED: {e!r}", flush=True)
            ok = False
    report["ok"] = bool(ok)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    print("HF PARITY", "PASSED" if ok else "FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
