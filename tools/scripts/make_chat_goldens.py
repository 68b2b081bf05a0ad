#!/usr/bin/env python3
"""Write the expected chat-template renders of engine/tests/chat_template.rs with HF's own renderer.

Usage: make_chat_goldens.py REPO_ROOT GEMMA4_TEMPLATE GEMMA3_TOKENIZER_CONFIG
  e.g. make_chat_goldens.py . "$(tools/scripts/fetch-chat-template.sh gemma4)" \\
           "$(tools/scripts/fetch-chat-template.sh gemma3)"
Needs transformers 5.25.0 and jinja2 (no torch):
  python3 -m venv venv && venv/bin/pip install transformers==5.25.0 jinja2

Reads every REPO_ROOT/testdata/chat/requests/NAME.json (an HF chat request: messages, tools,
add_generation_prompt and any template variables) and renders it as
`tokenizer.apply_chat_template(..., tokenize=False)` does: messages normalized (None-valued keys
dropped), special tokens then the request's other keys as template variables, through
`transformers.utils.chat_template_utils.render_jinja_template`. Writes, for each template T,
testdata/chat/T/NAME.txt (the prompt, byte for byte) or NAME.error (the template raised: its
message). Templates: gemma4 (Google's Gemma 4 template), gemma3 (Gemma 3's tokenizer_config.json
chat_template), builtin-gemma4 and builtin-gemma3 (garnet's fallbacks, engine/src/template/*.jinja).
Also renders testdata/chat/snippets.json (small templates probing Jinja's semantics, all on the
request snippets.request.json) into
snippets.expected.json. Records the versions and template hashes in testdata/chat/goldens.json.
"""

import hashlib
import json
import sys
from pathlib import Path

import jinja2
import transformers
from transformers.utils.chat_template_utils import _normalize_chat_messages, render_jinja_template

BOS, EOS = "<bos>", "<eos>"


def render(template, request, bos, eos):
    request = dict(request)
    messages = _normalize_chat_messages(request.pop("messages"))
    tools = request.pop("tools", None)
    documents = request.pop("documents", None)
    add_generation_prompt = request.pop("add_generation_prompt", False)
    kwargs = {"bos_token": bos, "eos_token": eos, **request}
    rendered, _ = render_jinja_template(
        conversations=[messages],
        tools=tools,
        documents=documents,
        chat_template=template,
        add_generation_prompt=add_generation_prompt,
        **kwargs,
    )
    return rendered[0]


def main():
    root, gemma4, gemma3_config = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    config = json.loads(gemma3_config.read_text(encoding="utf-8"))
    templates = {
        "gemma4": (gemma4.read_text(encoding="utf-8"), BOS, EOS),
        "gemma3": (config["chat_template"], config["bos_token"], config["eos_token"]),
        "builtin-gemma4": ((root / "engine/src/template/gemma4.jinja").read_text(encoding="utf-8"), BOS, EOS),
        "builtin-gemma3": ((root / "engine/src/template/gemma3.jinja").read_text(encoding="utf-8"), BOS, EOS),
    }
    chat = root / "testdata/chat"
    requests = sorted((chat / "requests").glob("*.json"))
    for name, (template, bos, eos) in templates.items():
        out = chat / name
        out.mkdir(exist_ok=True)
        for old in list(out.glob("*.txt")) + list(out.glob("*.error")):
            old.unlink()
        for path in requests:
            request = json.loads(path.read_text(encoding="utf-8"))
            try:
                text = render(template, request, bos, eos)
                (out / f"{path.stem}.txt").write_bytes(text.encode("utf-8"))
            except jinja2.exceptions.TemplateError as e:
                (out / f"{path.stem}.error").write_text(str(e), encoding="utf-8")
    # Small templates, each exercising one part of Jinja as HF runs it (printing, tests, filters,
    # loops, whitespace control): their renders, or the error type when HF raises.
    snippets = json.loads((chat / "snippets.json").read_text(encoding="utf-8"))
    request = json.loads((chat / "snippets.request.json").read_text(encoding="utf-8"))
    expected = {}
    for s in snippets:
        try:
            expected[s["name"]] = {"text": render(s["template"], request, BOS, EOS)}
        except Exception as e:  # noqa: BLE001 - any failure is the expected outcome
            expected[s["name"]] = {"error": type(e).__name__}
    (chat / "snippets.expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    meta = {
        "renderer": "transformers.utils.chat_template_utils.render_jinja_template",
        "transformers": transformers.__version__,
        "jinja2": jinja2.__version__,
        "bos_token": BOS,
        "eos_token": EOS,
        "templates": {
            name: hashlib.sha256(t.encode("utf-8")).hexdigest() for name, (t, _, _) in templates.items()
        },
    }
    (chat / "goldens.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"{len(requests)} requests x {len(templates)} templates -> {chat}")


if __name__ == "__main__":
    main()
