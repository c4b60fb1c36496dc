#!/usr/bin/env python3
"""Real Qwen and Llama-3 tokenizers for keel's tokenizer parity test, and the reference ids of
Hugging Face's `tokenizers` (the Rust library transformers uses) for the committed test strings.

Run with the peers venv (scripts/peers_env.sh):

    $(scripts/peers_env.sh --python) scripts/peers/make_test_tokenizers.py DEST

Where the files come from: npm is gone, and no PyPI package ships the HF tokenizer.json files. Two
PyPI packages ship the BPE ranks those files were made from, in tiktoken's format:
  - dashscope (Alibaba's SDK) ships qwen.tiktoken: the 151643 byte-level BPE pieces of Qwen, which
    Qwen2, Qwen2.5 and Qwen3 share;
  - llama-models (Meta's) ships llama3/tokenizer.model: Llama-3's 128000 pieces.
They are downloaded at pinned versions with pinned hashes. This script writes each as an HF
tokenizer.json the way transformers' TikTokenConverter does (vocab = the ranks; one merge per way a
piece splits into two lower-ranked pieces, in the order of the merged piece's rank), with the
normalizer, pre-tokenizer regex, added tokens and post-processor of the published Qwen3 and
Llama-3.1 tokenizer.json files, plus a tokenizer_config.json naming bos / eos / pad as theirs do.

Outputs, under DEST: qwen3/tokenizer.json, qwen3/tokenizer_config.json, llama3/... and
reference-tokenizers.json: for every string of tests/models/tokenizer_parity/reference.json, the
ids `tokenizers` gives with and without special tokens, and its decodes with and without skipping
specials. The C++ test (TokenizerParitySlow) compares keel against this file, and against the
committed ids that transformers.js produced on the original HF files.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (package, version, sha256, member inside the wheel)
SOURCES = {
    "qwen3": ("dashscope", "2.0.2", "0602d1800f7433bdb7953560986eaf5146454ed3988636c0a91963ba24e74258",
              "dashscope/resources/qwen.tiktoken"),
    "llama3": ("llama-models", "0.3.0", "7f77f78ff13fca09f70d76a376aff6414cd901623fb9d57e69c2f8367a73032f",
               "llama_models/llama3/tokenizer.model"),
}

QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Qwen3's 26 added tokens (ids 151643..151668); the tool / think markers are added but not special.
QWEN3_ADDED = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
    "</tool_response>", "<think>", "</think>",
]
QWEN3_NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"}

# Llama-3.1's 256 special tokens (ids 128000..128255).
LLAMA3_NAMED = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
LLAMA3_ADDED = LLAMA3_NAMED + [f"<|reserved_special_token_{i}|>" for i in range(3, 3 + 256 - len(LLAMA3_NAMED))]


def fetch(name, workdir):
    pkg, ver, sha, member = SOURCES[name]
    req = os.path.join(workdir, f"{name}.req")
    with open(req, "w") as f:
        f.write(f"{pkg}=={ver} --hash=sha256:{sha}\n")
    dl = os.path.join(workdir, name)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes", "-d", dl,
                    "-r", req], check=True)
    (wheel,) = [os.path.join(dl, w) for w in os.listdir(dl) if w.endswith(".whl")]
    with zipfile.ZipFile(wheel) as z:
        return z.read(member)


def bytes_to_unicode():
    """GPT-2's byte -> printable character map, which byte-level BPE vocabularies are written in."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def vocab_and_merges(tiktoken_text):
    ranks = {}
    for line in tiktoken_text.decode().splitlines():
        if line.strip():
            piece, rank = line.split()
            ranks[base64.b64decode(piece)] = int(rank)
    enc = bytes_to_unicode()
    text = lambda b: "".join(enc[c] for c in b)
    vocab = {text(p): r for p, r in ranks.items()}
    merges = []
    for piece, rank in ranks.items():
        splits = [(piece[:i], piece[i:]) for i in range(1, len(piece)) if piece[:i] in ranks and piece[i:] in ranks]
        splits.sort(key=lambda lr: (ranks[lr[0]], ranks[lr[1]]))
        merges.extend((rank, l, r) for l, r in splits)
    merges.sort(key=lambda m: m[0])
    return vocab, [(text(l), text(r)) for _, l, r in merges]


def build(name, ranks_text):
    vocab, merges = vocab_and_merges(ranks_text)
    if name == "qwen3":
        tok = Tokenizer(BPE(vocab, merges, fuse_unk=False, byte_fallback=False, ignore_merges=False))
        tok.normalizer = normalizers.NFC()
        pattern, added, not_special = QWEN_PATTERN, QWEN3_ADDED, QWEN3_NOT_SPECIAL
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                  "model_max_length": 131072, "tokenizer_class": "Qwen2Tokenizer"}
    else:
        tok = Tokenizer(BPE(vocab, merges, fuse_unk=False, byte_fallback=False, ignore_merges=True))
        pattern, added, not_special = LLAMA3_PATTERN, LLAMA3_ADDED, set()
        config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                  "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    first = len(vocab)
    for i, t in enumerate(added):
        tok.add_tokens([AddedToken(t, special=t not in not_special, normalized=False)])
        assert tok.token_to_id(t) == first + i, (t, tok.token_to_id(t))
    if name == "llama3":
        bos = "<|begin_of_text|>"
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                          special_tokens=[(bos, tok.token_to_id(bos))]),
        ])
    return tok, config


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_test_tokenizers.py DEST")
    dest = sys.argv[1]
    strings = json.load(open(os.path.join(ROOT, "tests/models/tokenizer_parity/reference.json")))["strings"]
    out = {"generator": "scripts/peers/make_test_tokenizers.py", "reference": f"tokenizers {tokenizers.__version__}",
           "sources": {n: f"{p}=={v} {m}" for n, (p, v, _, m) in SOURCES.items()}, "strings": strings}
    with tempfile.TemporaryDirectory() as work:
        for name in SOURCES:
            tok, config = build(name, fetch(name, work))
            d = os.path.join(dest, name)
            os.makedirs(d, exist_ok=True)
            for fname, write in (("tokenizer.json", lambda p: tok.save(p)),
                                 ("tokenizer_config.json", lambda p: json.dump(config, open(p, "w"), indent=1))):
                tmp = os.path.join(d, fname + ".tmp")
                write(tmp)
                os.replace(tmp, os.path.join(d, fname))
            ref = {"vocab_size": tok.get_vocab_size(with_added_tokens=True), "ids": [], "ids_add_special": [],
                   "decoded": [], "decoded_skip_special": []}
            for s in strings:
                ids = tok.encode(s, add_special_tokens=False).ids
                ref["ids"].append(ids)
                ref["ids_add_special"].append(tok.encode(s, add_special_tokens=True).ids)
                ref["decoded"].append(tok.decode(ids, skip_special_tokens=False))
                ref["decoded_skip_special"].append(tok.decode(ids, skip_special_tokens=True))
            out[name] = ref
            print(f"make_test_tokenizers: {d}/tokenizer.json ({ref['vocab_size']} tokens, {SOURCES[name][0]})")
    tmp = os.path.join(dest, "reference-tokenizers.json.tmp")
    with open(tmp, "w") as f:
        json.dump(out, f, ensure_ascii=False)
    os.replace(tmp, os.path.join(dest, "reference-tokenizers.json"))
    print(f"make_test_tokenizers: {dest}/reference-tokenizers.json ({len(strings)} strings)")


if __name__ == "__main__":
    main()
