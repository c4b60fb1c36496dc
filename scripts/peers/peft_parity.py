#!/usr/bin/env python3
"""keel <-> PEFT LoRA parity: the same adapters give the same logits, both ways.

    scripts/peers/run.sh scripts/peers/peft_parity.py --test-bin build/tests/models_tests [--work DIR]

ctest runs it as Peers.PeftLoraBothWays with the peers venv (scripts/peers_env.sh).
1. For Llama and Qwen2 layouts, transformers builds a tiny random base model (scripts/hf_parity.py's
   configs and weights) and saves it; PEFT puts a LoRA adapter (r 4, alpha 8, no dropout) on every
   linear layer of the decoder, with A and B drawn at random (PEFT starts B at zero, which would
   hide a wrong B), saves the adapter, and computes the fp32 logits of a left-padded batch.
2. The C++ test LoraParityPeer (in --test-bin) applies the adapter in keel and compares logits
   (max abs difference <= 1e-4 on real positions); then writes random keel adapters with keel's
   save_adapter plus keel's logits.
3. This script loads keel's adapter with PeftModel.from_pretrained and compares the same way.
Exit status 0 only when every comparison is within 1e-4.
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hf_parity import TOL, hf_logits, inputs, load_model, make_config, masked_max_diff, randomize  # noqa: E402

import peft  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--test-bin", required=True)
    ap.add_argument("--work", default="")
    a = ap.parse_args()
    tmp = None if a.work else tempfile.TemporaryDirectory(prefix="keel_peft_parity_")
    work = a.work or tmp.name
    print(f"torch {torch.__version__}, peft {peft.__version__}, work dir {work}", flush=True)
    ids, mask = inputs()
    families = ("llama", "qwen2")
    for i, fam in enumerate(families):
        d = os.path.join(work, fam)
        base = load_model(make_config(fam))
        randomize(base, 10 + i)
        base.save_pretrained(os.path.join(d, "base"))
        cfg = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, bias="none",
                              task_type="CAUSAL_LM")
        model = peft.get_peft_model(base, cfg)
        g = torch.Generator().manual_seed(20 + i)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
        model.eval()
        model.save_pretrained(os.path.join(d, "peft_adapter"))
        save_file({"input_ids": ids.float(), "attention_mask": mask.float(),
                   "logits": hf_logits(model, ids, mask).contiguous()}, os.path.join(d, "peft_io.safetensors"))
    env = dict(os.environ, KEEL_PEFT_PARITY_DIR=work)
    r = subprocess.run([a.test_bin, "--gtest_filter=LoraParityPeer.*"], env=env, capture_output=True, text=True)
    print(r.stdout[-6000:], r.stderr[-3000:], flush=True)
    ok = r.returncode == 0 and "[  PASSED  ] 1 test." in r.stdout
    if not ok:
        print("[parity] LoraParityPeer did not run and pass in the test binary", flush=True)
    for fam in families:
        d = os.path.join(work, fam)
        try:
            base = load_model(os.path.join(d, "base"))
            model = peft.PeftModel.from_pretrained(base, os.path.join(d, "keel_adapter")).eval()
            keel = load_file(os.path.join(d, "keel_lora_logits.safetensors"))["logits"].float()
            diff = masked_max_diff(hf_logits(model, ids, mask), keel, mask)
            print(f"[parity] {fam} keel adapter -> PEFT cpu fp32 max|dlogit| = {diff:.3g}", flush=True)
            ok &= diff <= TOL
        except Exception as e:  # report and go on with the next family
            print(f"[parity] {fam} keel adapter -> PEFT FAILED: {e!r}", flush=True)
            ok = False
    print("PEFT PARITY", "PASSED" if ok else "FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
