//! A forward over K tokens gives every row the logits of K single-token decode steps (within
//! 1e-5 of the row's logit range at `Precision::Reference` on the fast CPU backend), so
//! speculative verification and batched decoding agree with plain greedy decoding. Checked on
//! the four tiny Gemma 4 variants, from an empty cache and after a prefix.

use garnet::api::{BackendKind, Engine, LoadOptions, Precision, SessionOptions};
use std::path::PathBuf;

const VARIANTS: [&str; 4] = ["dense_31b_like", "moe_26b_a4b_like", "edge_e2b_like", "edge_e4b_like"];

/// Largest `|a - b|` over a row, relative to that row's logit range in `b`.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let (lo, hi) = b.iter().fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / (hi - lo)
}

#[test]
fn k_row_forward_matches_k_decode_steps() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny");
    let load = LoadOptions { backend: BackendKind::Cpu, precision: Precision::Reference, ..Default::default() };
    let opts = SessionOptions { context: 64, prefill_chunk: 64 };
    for v in VARIANTS {
        let engine = Engine::load(root.join(v).join("f32"), load.clone()).unwrap();
        let vocab = engine.config().vocab_size;
        // Ids spread over the vocabulary, no two alike in a row.
        let ids: Vec<u32> = (0..40u32).map(|i| 2 + (i * 37 + 11) % (vocab as u32 - 2)).collect();
        for prefix in [0, 5] {
            for k in [2, 3, 4, 8, 16] {
                let (pre, run) = (&ids[..prefix], &ids[prefix..prefix + k]);
                let mut batched = engine.session(opts).unwrap();
                let mut stepped = engine.session(opts).unwrap();
                if prefix > 0 {
                    batched.prefill(pre).unwrap();
                    stepped.prefill(pre).unwrap();
                }
                let all = batched.prefill_all(run).unwrap();
                assert_eq!(all.len(), k * vocab);
                let mut worst = 0f32;
                for (i, &id) in run.iter().enumerate() {
                    let one = stepped.step(id).unwrap();
                    worst = worst.max(rel_err(&all[i * vocab..(i + 1) * vocab], &one));
                }
                eprintln!("{v:18} prefix {prefix} K={k:2}: max error / logit range {worst:.2e}");
                assert!(worst <= 1e-5, "{v} prefix {prefix} K={k}: {worst:e} > 1e-5");
            }
        }
    }
}
