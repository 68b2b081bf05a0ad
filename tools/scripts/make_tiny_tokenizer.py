#!/usr/bin/env python3
"""Write a tiny Gemma-style tokenizer.json (512 ids) for the tiny random-weight test models.

Usage: make_tiny_tokenizer.py TESTDATA_ROOT
  e.g. make_tiny_tokenizer.py testdata/gemma4-tiny

Writes TESTDATA_ROOT/<variant>/{f32,bf16,bf16_cg}/tokenizer.json for every variant folder found.
Standard library only; the output is byte-reproducible.

The weights of the tiny models are random, so the tokenizer only has to be structurally faithful to
Gemma's (the same JSON layout as Gemma 3's tokenizer.json, which Gemma 4 shares):
- normalizer: Replace " " -> "\u2581"; no pre-tokenizer (the whole text is one BPE word);
- model: BPE with byte_fallback and fuse_unk, unk "<unk>";
- decoder: Sequence [Replace "\u2581" -> " ", ByteFallback, Fuse];
- post-processor: TemplateProcessing "<bos> $A" (garnet bypasses it and adds <bos> itself).

Id layout:
  0 <pad>, 1 <eos>, 2 <bos>, 3 <unk>, 98 <|think|>, 100 <|channel>, 101 <channel|>,
  105 <|turn>, 106 <turn|>                 special added tokens (Gemma 4's ids)
  other ids below 107                      <unusedN> placeholders (non-special added tokens)
  107 "\\n", 108 "\u2581"
  109..202                                 printable ASCII "!".."~"
  203..458                                 byte fallback <0x00>..<0xFF>
  459..511                                 BPE merges of common English pieces
"""

import json
import sys
from pathlib import Path

VOCAB_SIZE = 512
SPACE = "\u2581"
PRECISIONS = ("f32", "bf16", "bf16_cg")

SPECIALS = {
    0: "<pad>",
    1: "<eos>",
    2: "<bos>",
    3: "<unk>",
    98: "<|think|>",
    100: "<|channel>",
    101: "<channel|>",
    105: "<|turn>",
    106: "<turn|>",
}
FIRST_ORDINARY = 107

# Merges in priority order (rank = position). Each is (left, right); left + right becomes a token.
# Only as many as fit into VOCAB_SIZE are used; the script checks that every part already exists.
MERGES = [
    (SPACE, "t"), ("h", "e"), (SPACE + "t", "he"), ("i", "n"), ("e", "r"), ("a", "n"),
    ("o", "n"), ("r", "e"), (SPACE, "a"), (SPACE, "s"), ("in", "g"), ("e", "n"),
    ("a", "t"), ("o", "r"), (SPACE, "o"), (SPACE, "w"), ("e", "s"), ("i", "s"),
    (SPACE, "c"), (SPACE, "b"), ("n", "d"), (SPACE, "i"), ("o", "u"), (SPACE, "f"),
    (SPACE, "p"), (SPACE + "o", "f"), (SPACE + "a", "nd"), ("e", "d"), (SPACE, "m"), ("l", "l"),
    (SPACE + "t", "o"), (SPACE + "i", "n"), ("a", "r"), (SPACE, "d"), (SPACE, "h"),
    (SPACE + "i", "s"), ("i", "t"), (SPACE, "T"), (SPACE + "T", "he"), (SPACE, "l"),
    ("a", "l"), (SPACE, "e"), (SPACE, "n"), ("l", "e"), (SPACE, "re"), (SPACE + "w", "h"),
    (SPACE, "I"), (SPACE + "f", "or"), (SPACE + "o", "n"), (SPACE + "w", "it"),
    (SPACE + "wit", "h"), (SPACE + "c", "on"), ("\n", "\n"),
    # spares, used only if the layout above leaves room
    (SPACE, "g"), (SPACE + "s", "t"), (SPACE, "y"), (SPACE + "y", "ou"),
]


def build():
    """Return (vocab dict token -> id in id order, merges list, added_tokens list)."""
    tokens = [None] * VOCAB_SIZE
    for i, tok in SPECIALS.items():
        tokens[i] = tok
    unused = 0
    for i in range(FIRST_ORDINARY):
        if tokens[i] is None:
            tokens[i] = f"<unused{unused}>"
            unused += 1

    ordinary = ["\n", SPACE] + [chr(c) for c in range(0x21, 0x7F)]
    ordinary += [f"<0x{b:02X}>" for b in range(256)]
    next_id = FIRST_ORDINARY
    for tok in ordinary:
        tokens[next_id] = tok
        next_id += 1

    known = set(tokens[:next_id])
    merges = []
    for left, right in MERGES:
        if next_id == VOCAB_SIZE:
            break
        assert left in known and right in known, (left, right)
        merged = left + right
        assert merged not in known, merged
        tokens[next_id] = merged
        known.add(merged)
        merges.append([left, right])
        next_id += 1
    assert next_id == VOCAB_SIZE, f"only {next_id} ids filled; add merges"
    assert len(set(tokens)) == VOCAB_SIZE, "duplicate token"

    added = [
        {
            "id": i,
            "content": tokens[i],
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": i in SPECIALS,
        }
        for i in range(FIRST_ORDINARY)
    ]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    return vocab, merges, added


def tokenizer_json():
    """The tokenizer.json document as a dict, in Gemma 3's key order."""
    vocab, merges, added = build()
    bos = SPECIALS[2]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {bos: {"id": bos, "ids": [2], "tokens": [bos]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": SPECIALS[3],
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def main(argv):
    if len(argv) != 2:
        sys.exit(f"usage: {argv[0]} TESTDATA_ROOT (e.g. testdata/gemma4-tiny)")
    root = Path(argv[1])
    text = json.dumps(tokenizer_json(), ensure_ascii=False, indent=2) + "\n"
    written = 0
    for variant in sorted(p for p in root.iterdir() if p.is_dir()):
        for precision in PRECISIONS:
            folder = variant / precision
            if folder.is_dir():
                (folder / "tokenizer.json").write_text(text, encoding="utf-8")
                print(f"wrote {folder / 'tokenizer.json'}")
                written += 1
    if written == 0:
        sys.exit(f"{root}: no <variant>/{{{','.join(PRECISIONS)}}} folders found")


if __name__ == "__main__":
    main(sys.argv)
