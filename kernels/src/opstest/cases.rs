//! The ops-test's case list: real Gemma 4 shapes (E2B: hidden 1536, 8 heads on 1 KV head,
//! head_dim 256 sliding / 512 global, FFN 6144, vocab 262144, PLE 256 per layer; 26B-A4B: hidden
//! 2816, 128 experts top-8 of width 704; 31B: hidden 5376, 32 heads on 16 / 4 KV heads) and edge
//! shapes (one token, odd sizes, `k` not a multiple of 32 for float weights, rings that wrap,
//! ties in routing). Few and purposeful: the whole list runs in minutes on lavapipe; only the
//! decode LM head is vocab-sized.

use super::attention::{AttentionCase, KvWriteCase};
use super::elementwise::{AddCase, CopyCase, GegluCase, ScaleCase, SoftcapCase};
use super::matmul::{EmbedCase, MatmulCase};
use super::moe::{MoeExpertsCase, MoeRouteCase};
use super::norm::{AddRmsNormCase, LayerNormCase, RmsNormCase, RopeCase};
use super::sample::ArgmaxCase;
use super::Case;
use crate::args::*;
use crate::tensor::DType;

/// Every dtype a matmul weight can have in garnet's checkpoints: every storage format.
const WEIGHT_DTYPES: [DType; 14] = DType::ALL;

fn matmul(m: usize, n: usize, k: usize, dtype: DType) -> Case {
    matmul_scaled(m, n, k, dtype, 1.0)
}

fn matmul_scaled(m: usize, n: usize, k: usize, dtype: DType, x_scale: f32) -> Case {
    Box::new(MatmulCase { args: MatmulArgs { m, n, k }, dtype, x_scale })
}

fn embed(tokens: usize, width: usize, col_offset: usize, scale: f32, table: [usize; 2], dtype: DType) -> Case {
    let args = EmbedArgs { tokens, width, col_offset, scale };
    Box::new(EmbedCase { args, rows: table[0], row_len: table[1], dtype })
}

fn norm(rows: usize, dim: usize, weight: Option<DType>) -> Case {
    Box::new(RmsNormCase { args: RmsNormArgs { rows, dim, eps: 1e-6 }, weight })
}

fn layer_norm(rows: usize, dim: usize, eps: f32, weight: DType) -> Case {
    Box::new(LayerNormCase { args: LayerNormArgs { rows, dim, eps }, weight })
}

fn add_norm(rows: usize, dim: usize, weight: DType) -> Case {
    Box::new(AddRmsNormCase { args: RmsNormArgs { rows, dim, eps: 1e-6 }, weight })
}

/// RoPE of `[tokens, heads, head_dim]` from `pos0`, `pairs` rotating.
fn rope(tokens: usize, heads: usize, head_dim: usize, pairs: usize, theta: f32, pos0: usize, freq_scale: f32) -> Case {
    Box::new(RopeCase { args: RopeArgs { tokens, heads, head_dim, rotary_pairs: pairs, theta, pos0, freq_scale } })
}

fn kv_write(tokens: usize, kv_dim: usize, pos0: usize, capacity: usize) -> Case {
    Box::new(KvWriteCase { args: KvWriteArgs { tokens, kv_dim, pos0, capacity } })
}

/// Attention with `heads = [query heads, kv heads]` and the usual `1 / sqrt(head_dim)` scale.
fn attention(
    tokens: usize,
    heads: [usize; 2],
    head_dim: usize,
    pos0: usize,
    capacity: usize,
    window: Option<usize>,
) -> AttentionCase {
    let scale = 1.0 / (head_dim as f32).sqrt();
    let [n_heads, n_kv_heads] = heads;
    AttentionCase { args: AttentionArgs { tokens, n_heads, n_kv_heads, head_dim, pos0, capacity, window, scale } }
}

fn route(tokens: usize, n_experts: usize, top_k: usize, ties: bool) -> Case {
    Box::new(MoeRouteCase { args: RouteArgs { tokens, n_experts, top_k }, ties })
}

fn experts(tokens: usize, hidden: usize, inter: usize, n_experts: usize, top_k: usize, dtype: DType) -> Case {
    Box::new(MoeExpertsCase { args: MoeArgs { tokens, hidden, inter, n_experts, top_k }, dtype })
}

/// The default case list.
pub fn cases() -> Vec<Case> {
    use DType::*;
    // ---- embed: the token table at its real width, the PLE slice of one layer, odd tables ----
    let mut c = vec![
        embed(7, 1536, 0, 39.191835, [262_144, 1536], Q6_K), // E2B token table (several bindings on a GPU)
        embed(5, 1536, 0, 39.191835, [4096, 1536], BF16),    // E2B width, sqrt(hidden) scale
        embed(3, 256, 34 * 256, 16.0, [300, 35 * 256], BF16), // E2B PLE, last layer's columns
        embed(4, 256, 256, 16.0, [40, 1024], Q4_K),          // quantized PLE slice
        embed(6, 5, 3, 1.0, [11, 13], F32),                  // odd widths and offset
        embed(5, 96, 0, 0.5, [50, 96], F16),
        embed(4, 64, 32, 2.0, [40, 128], Q4_0),
        embed(2, 32, 32, 1.0, [9, 64], Q5_0),
        embed(3, 512, 0, 1.0, [20, 512], Q6_K),
        embed(1, 64, 0, 3.0, [7, 64], Q8_0),
    ];
    c.extend(WEIGHT_DTYPES.map(|dtype| embed(3, 256, 256, 2.0, [9, 512], dtype))); // every dtype

    // ---- matmul ----
    c.push(matmul(1, 262_144, 1536, Q6_K)); // E2B LM head, decode
    c.extend(WEIGHT_DTYPES.map(|dtype| matmul(1, 2048, 1536, dtype))); // E2B q_proj (sliding), decode
    c.extend([
        matmul(1, 1536, 6144, Q4_K),   // E2B down_proj, decode
        matmul(1, 128, 2816, F32),     // 26B-A4B router
        matmul(1, 5376, 8192, Q4_K),   // 31B o_proj (sliding), decode
        matmul(64, 6144, 1536, BF16),  // E2B gate_proj, prefill
        matmul(128, 4096, 1536, Q8_0), // E2B q_proj (full), prefill
        matmul(7, 1536, 6144, Q4_K),   // E2B down_proj, a short prefill
        matmul(3, 17, 70, F32),        // k not a multiple of 32
        matmul(17, 129, 33, F32),      // tile edges, odd k
        matmul(5, 33, 37, BF16),
        matmul(2, 7, 100, F16),
        matmul(1, 1, 32, Q8_0),
        matmul(3, 31, 96, Q5_0),
        matmul(33, 65, 64, Q4_0),
        matmul(2, 3, 256, Q4_K),
        matmul(4, 9, 512, Q6_K),
        matmul(9, 40, 256, Q5_K),
        // A few token rows (decode of a short chunk) and small prefills on every block format:
        // each dtype through the multi-row matvec and the tiled (tensor-core) GEMM.
        matmul(3, 64, 256, Q8_0),
        matmul(6, 48, 128, Q4_0),
        matmul(20, 96, 512, F16),
        matmul(24, 64, 256, Q5_0),
        matmul(18, 80, 512, Q4_K),
        matmul(16, 72, 256, Q6_K),
        // Activations beyond f16's 65504 (Gemma's reach 1e5) against f16 weights: a GEMM that
        // rounds them to f16 returns inf / NaN.
        matmul_scaled(20, 96, 512, F16, 1e5),
    ]);
    // Every dtype through the multi-row matvec and the GEMM.
    c.extend(WEIGHT_DTYPES.map(|dtype| matmul(3, 40, 512, dtype)));
    c.extend(WEIGHT_DTYPES.map(|dtype| matmul(20, 40, 512, dtype)));

    // ---- rms_norm, add_rms_norm ----
    c.extend([
        norm(1, 1536, Some(BF16)),   // E2B input norm, decode
        norm(1, 5376, Some(F32)),    // 31B
        norm(64, 2816, Some(BF16)),  // 26B-A4B, prefill
        norm(7 * 8, 256, Some(F32)), // per-head q norm, 7 tokens
        norm(7, 256, None),          // v norm (no weight)
        norm(5, 512, Some(BF16)),    // k norm of a full layer
        norm(3, 17, Some(F16)),
        norm(2, 33, None),
        add_norm(1, 1536, BF16), // E2B post-norm into the residual
        add_norm(5, 2816, F32),
        add_norm(3, 17, BF16),
    ]);

    // ---- layer_norm: vision and audio tower widths, odd sizes, a large eps ----
    c.extend([
        layer_norm(256, 1152, 1e-6, BF16), // a SigLIP-width vision tower, 256 patches
        layer_norm(1, 1536, 1e-5, F32),
        layer_norm(3, 37, 1e-6, F16),
        layer_norm(4, 64, 0.5, BF16),
    ]);

    // ---- rope ----
    c.extend([
        rope(5, 8, 256, 128, 1e4, 0, 1.0),      // E2B sliding q
        rope(1, 1, 256, 128, 1e4, 4000, 1.0),   // the k of a decode step
        rope(128, 8, 256, 128, 1e4, 0, 1.0),    // prefill
        rope(7, 8, 512, 64, 1e6, 4093, 1.0),    // proportional RoPE (full layers, factor 0.25)
        rope(1, 32, 512, 64, 1e6, 30_000, 1.0), // 31B full layer, long context
        rope(9, 4, 256, 128, 1e6, 37, 0.125),   // linear scaling (Gemma 3)
        rope(3, 2, 6, 2, 1e4, 0, 1.0),          // odd sizes
        rope(2, 3, 8, 0, 1e4, 5, 1.0),          // nothing rotates
    ]);

    // ---- kv_write ----
    c.extend([
        kv_write(1, 256, 4095, 512),      // E2B sliding decode, wraps
        kv_write(64, 256, 480, 512),      // prefill chunk across the ring's end
        kv_write(1, 512, 700, 1024),      // E2B full layer
        kv_write(1, 16 * 256, 993, 1024), // 31B sliding, 16 KV heads
        kv_write(5, 16, 0, 8),
        kv_write(20, 16, 11, 8), // more tokens than slots: the last 8 remain
        kv_write(3, 7, 2, 3),
    ]);

    // ---- attention ----
    let mut attention_cases = [
        attention(128, [8, 1], 256, 0, 512, Some(512)),     // E2B sliding prefill
        attention(64, [8, 1], 512, 37, 300, None),          // E2B full prefill chunk
        attention(40, [8, 1], 256, 600, 32, Some(32)),      // chunk > window on a wrapped ring
        attention(1, [8, 1], 256, 0, 512, Some(512)),       // the first token
        attention(1, [8, 1], 256, 5000, 512, Some(512)),    // E2B sliding decode, wrapped
        attention(1, [8, 1], 512, 700, 1024, None),         // E2B full decode
        attention(1, [32, 16], 256, 993, 1024, Some(1024)), // 31B sliding decode, GQA 2:1
        attention(1, [32, 4], 512, 3000, 4096, None),       // 31B full decode, GQA 8:1
        attention(16, [32, 16], 256, 1500, 1024, Some(1024)), // 31B sliding prefill chunk
        attention(5, [6, 2], 24, 0, 16, None),              // odd head_dim
        attention(3, [6, 3], 10, 9, 16, Some(4)),           // window smaller than the chunk
        attention(33, [4, 1], 40, 9, 64, None),
        attention(1, [4, 2], 64, 37, 64, None),     // small heads, GQA 2:1 decode
        attention(1, [16, 8], 512, 100, 256, None), // head_dim 512, GQA 2:1 decode
        attention(2, [4, 1], 256, 300, 400, None),  // two tokens
    ];
    if let Some(last) = attention_cases.last_mut() {
        last.args.scale = 1.0; // Gemma 4: q/k norms instead of 1/sqrt(head_dim)
    }
    c.extend(attention_cases.map(|a| Box::new(a) as Case));

    // ---- elementwise ----
    for (rows, width) in [(1, 6144), (64, 6144), (2, 704), (7, 256), (1, 5), (3, 37)] {
        c.push(Box::new(GegluCase { args: GegluArgs { rows, width } }));
    }
    for (len, cap) in [(262_144, 30.0), (7, 30.0), (1001, 0.5)] {
        c.push(Box::new(SoftcapCase { args: SoftcapArgs { len, cap } }));
    }
    for (len, factor) in [(1536, 0.5), (2816, 0.0625), (3, 0.37), (100_001, -1.5)] {
        c.push(Box::new(ScaleCase { args: ScaleArgs { len, factor } }));
    }
    for (len, scale) in [(7 * 1536, 1.0), (2816, std::f32::consts::FRAC_1_SQRT_2), (3, 0.7)] {
        c.push(Box::new(AddCase { args: AddArgs { len, scale } }));
    }
    for (len, src_offset, dst_offset) in [(1536, 63 * 1536, 0), (2816, 0, 2 * 2816), (5, 2, 1)] {
        c.push(Box::new(CopyCase { args: CopyArgs { len, src_offset, dst_offset } }));
    }

    // ---- moe ----
    c.extend([
        route(1, 128, 8, false), // 26B-A4B decode
        route(64, 128, 8, true), // prefill, ties
        route(3, 128, 8, true),
        route(4, 300, 4, true),
        route(2, 5, 5, true),               // every expert chosen
        experts(1, 2816, 704, 16, 8, BF16), // 26B-A4B widths, decode (16 of the 128 experts)
        experts(3, 2816, 704, 16, 8, Q8_0),
        experts(5, 64, 32, 128, 8, Q4_0), // 128 experts, top-8
        experts(2, 512, 256, 4, 2, Q4_K),
        experts(7, 40, 24, 5, 2, F32), // odd widths
    ]);
    // Every dtype on the decode path (one token) and on the grouped prefill path.
    c.extend(WEIGHT_DTYPES.map(|dtype| experts(1, 256, 256, 4, 2, dtype)));
    c.extend(WEIGHT_DTYPES.map(|dtype| experts(3, 256, 256, 4, 2, dtype)));

    // ---- argmax ----
    for (rows, len, special) in [(1, 262_144, false), (6, 1000, true), (3, 33, true), (2, 262_144, true)] {
        c.push(Box::new(ArgmaxCase { args: ArgmaxArgs { rows, len }, special }));
    }
    c
}
