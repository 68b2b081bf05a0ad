#!/usr/bin/env python3
"""Write the GGUF test files of engine/tests/gguf_files.rs (needs numpy and gguf-py >= 0.19).

Usage: make_gguf_fixtures.py REPO_ROOT
  e.g. make_gguf_fixtures.py .

Writes to REPO_ROOT/engine/tests/data/:
- gemma4_moe_tiny.gguf, gemma4_e2b_tiny.gguf: testdata/gemma4-tiny/{moe_26b_a4b_like,edge_e2b_like}/f32
  converted the way llama.cpp's converter (`Gemma4Model` in convert_hf_to_gguf) converts Gemma 4:
  the same metadata keys, tensor names and `rope_freqs` tensor, every tensor kept F32 (so the
  garnet test can compare the bytes with the safetensors store). The tokenizer keys are filled
  from the fixture's tokenizer.json (scores 0, special added tokens CONTROL, others NORMAL).
- tiny_valid.gguf: a ~2 KB file with every metadata value type (nested array included) and
  F32, F16, Q8_0 and I32 tensors: the seed of the fuzz loop.

The output is byte-reproducible (gguf-py writes keys and tensors in insertion order).
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import gguf

# HF (text-only layout, prefix "model.") -> GGUF, as gguf-py's tensor_mapping + Gemma4Model.
GLOBAL = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "model.embed_tokens_per_layer.weight": "per_layer_token_embd.weight",
    "model.per_layer_model_projection.weight": "per_layer_model_proj.weight",
    "model.per_layer_projection_norm.weight": "per_layer_proj_norm.weight",
}
LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "layer_scalar": "layer_output_scale.weight",
    "router.proj.weight": "ffn_gate_inp.weight",
    "router.scale": "ffn_gate_inp.scale",
    "router.per_expert_scale": "ffn_down_exps.scale",
    "pre_feedforward_layernorm_2.weight": "pre_ffw_norm_2.weight",
    "post_feedforward_layernorm_1.weight": "post_ffw_norm_1.weight",
    "post_feedforward_layernorm_2.weight": "post_ffw_norm_2.weight",
    "experts.gate_up_proj": "ffn_gate_up_exps.weight",
    "experts.down_proj": "ffn_down_exps.weight",
    "per_layer_input_gate.weight": "inp_gate.weight",
    "per_layer_projection.weight": "proj.weight",
    "post_per_layer_input_norm.weight": "post_norm.weight",
}


def gguf_name(hf: str) -> str:
    if hf in GLOBAL:
        return GLOBAL[hf]
    _, _, layer, rest = hf.split(".", 3)
    return f"blk.{layer}.{LAYER[rest]}"


def read_safetensors(path: Path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", name
        begin, end = e["data_offsets"]
        arr = np.frombuffer(data[8 + n + begin : 8 + n + end], dtype="<f4").reshape(e["shape"])
        yield name, arr


def convert(src: Path, out: Path):
    c = json.loads((src / "config.json").read_text())
    L = c["num_hidden_layers"]
    w = gguf.GGUFWriter(str(out), "gemma4")
    w.add_name(src.parent.name)
    # TextModel.set_gguf_parameters, Gemma3Model.set_gguf_parameters, Gemma4Model.set_gguf_parameters
    w.add_block_count(L)
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    rope = c["rope_parameters"]
    w.add_rope_freq_base(rope["full_attention"]["rope_theta"])
    w.add_rope_freq_base_swa(rope["sliding_attention"]["rope_theta"])
    if c.get("num_experts") is not None:
        w.add_expert_count(c["num_experts"])
        w.add_expert_used_count(c["top_k_experts"])
    w.add_final_logit_softcapping(c["final_logit_softcapping"])
    w.add_sliding_window(c["sliding_window"])
    w.add_shared_kv_layers(c["num_kv_shared_layers"])
    w.add_embedding_length_per_layer_input(c.get("hidden_size_per_layer_input") or 0)
    swa = [t == "sliding_attention" for t in c["layer_types"]]
    w.add_sliding_window_pattern(swa)
    w.add_key_length(c["global_head_dim"])
    w.add_value_length(c["global_head_dim"])
    w.add_key_length_swa(c["head_dim"])
    w.add_value_length_swa(c["head_dim"])
    if c.get("moe_intermediate_size") is not None:
        w.add_expert_feed_forward_length(c["moe_intermediate_size"])
    first_shared = L - c["num_kv_shared_layers"]
    n_ff = c["intermediate_size"]
    if c.get("use_double_wide_mlp"):
        w.add_feed_forward_length([n_ff if i < first_shared else 2 * n_ff for i in range(L)])
    else:
        w.add_feed_forward_length(n_ff)
    if c.get("num_global_key_value_heads") is not None:
        w.add_head_count_kv([c["num_key_value_heads"] if s else c["num_global_key_value_heads"] for s in swa])
    else:
        w.add_head_count_kv(c["num_key_value_heads"])
    w.add_rope_dimension_count(c["global_head_dim"])
    w.add_rope_dimension_count_swa(c["head_dim"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    tok = json.loads((src / "tokenizer.json").read_text())
    vocab = {i: t for t, i in tok["model"]["vocab"].items()}
    special = {a["id"] for a in tok["added_tokens"] if a["special"]}
    tokens = [vocab[i] for i in range(len(vocab))]
    w.add_tokenizer_model("gemma4")
    w.add_token_list(tokens)
    # Real gemma4 GGUFs rank BPE merges with tokenizer.ggml.merges ("a b"), not scores.
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_token_merges(merges)
    w.add_token_types([int(gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL) for i in range(len(tokens))])
    w.add_bos_token_id(c["bos_token_id"])
    w.add_eos_token_id(c["eos_token_id"])
    w.add_unk_token_id(3)
    w.add_pad_token_id(c["pad_token_id"])
    w.add_add_space_prefix(False)
    w.add_add_bos_token(True)

    # Gemma4Model.generate_extra_tensors: proportional RoPE as frequency factors.
    full = rope["full_attention"]
    n_rot = int(c["global_head_dim"] * full["partial_rotary_factor"] / 2)
    n_unrot = c["global_head_dim"] // 2 - n_rot
    w.add_tensor("rope_freqs.weight", np.array([1.0] * n_rot + [1e30] * n_unrot, dtype=np.float32))
    for name, arr in read_safetensors(src / "model.safetensors"):
        w.add_tensor(gguf_name(name), arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tiny_valid(out: Path):
    w = gguf.GGUFWriter(str(out), "gemma4")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_uint64("test.u64", 1 << 40)
    w.add_int64("test.i64", -(1 << 40))
    w.add_float32("test.f32", 0.5)
    w.add_float64("test.f64", 0.25)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo")
    w.add_array("test.strings", ["a", "", "\u2581b"])
    w.add_array("test.ints", [1, -2, 3])
    w.add_array("test.bools", [True, False])
    w.add_array("test.floats", [1.5, -2.0])
    w.add_array("test.nested", [[1, 2], [3]])
    w.add_block_count(1)
    rng = np.random.default_rng(7)
    w.add_tensor("blk.0.attn_norm.weight", rng.standard_normal(8).astype(np.float32))
    w.add_tensor("token_embd.weight", rng.standard_normal((4, 8)).astype(np.float16))
    q8 = np.frombuffer(rng.integers(0, 256, 2 * 34, dtype=np.uint8).tobytes(), dtype=np.uint8).copy()
    q8[0:2] = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)  # finite block scales
    q8[34:36] = q8[0:2]
    w.add_tensor("blk.0.attn_q.weight", q8, raw_shape=(2, 34), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("blk.0.ids", np.arange(3, dtype=np.int32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out = root / "engine/tests/data"
    out.mkdir(parents=True, exist_ok=True)
    tiny = root / "testdata/gemma4-tiny"
    convert(tiny / "moe_26b_a4b_like/f32", out / "gemma4_moe_tiny.gguf")
    convert(tiny / "edge_e2b_like/f32", out / "gemma4_e2b_tiny.gguf")
    tiny_valid(out / "tiny_valid.gguf")


if __name__ == "__main__":
    main()
