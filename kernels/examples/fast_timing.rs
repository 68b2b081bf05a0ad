// Throwaway timing harness (not to be committed).
use garnet_kernels::fast::{Activations, FastCpu, Isa};
use garnet_kernels::*;
use std::time::Instant;

fn vals(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn best<F: FnMut()>(n: usize, mut f: F) -> f64 {
    f();
    let mut b = f64::MAX;
    for _ in 0..n {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b * 1e3
}

fn main() {
    let only: Option<String> = std::env::args().nth(1);
    for isa in Isa::supported() {
        if let Some(o) = &only {
            if o != isa.name() {
                continue;
            }
        }
        let b = FastCpu::with_isa(isa, Activations::Exact);
        println!("== {}", isa.name());
        for (nh, nkv, hd, tokens, pos0, cap, window) in [
            (4, 1, 256, 512, 0, 512, Some(512)),
            (8, 1, 512, 512, 0, 4096, None),
            (4, 1, 256, 1, 4095, 4096, None),
            (4, 1, 256, 1, 300, 512, Some(512)),
            (8, 1, 512, 1, 4095, 4096, None),
        ] {
            let a = AttentionArgs {
                tokens,
                n_heads: nh,
                n_kv_heads: nkv,
                head_dim: hd,
                pos0,
                capacity: cap,
                window,
                scale: 0.0625,
            };
            let q = vals(tokens * nh * hd, 1, 1.0);
            let k = vals(tokens * nkv * hd, 2, 1.0);
            let v = vals(tokens * nkv * hd, 3, 1.0);
            let ck = vals(cap * nkv * hd, 4, 1.0);
            let cv = vals(cap * nkv * hd, 5, 1.0);
            let mut out = vec![0.0; q.len()];
            if std::env::var("DEC").is_ok() && tokens > 1 {
                continue;
            }
            if std::env::var("PRE").is_ok() && (tokens == 1 || hd != 256) {
                continue;
            }
            let reps = std::env::var("REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
            let ms = best(if tokens > 1 { 5 * reps } else { 50 * reps }, || {
                b.attention(&a, &q, &k, &v, &ck, &cv, &mut out).unwrap()
            });
            let pairs: usize = (0..tokens)
                .map(|t| {
                    let p = pos0 + t;
                    p + 1 - window.map_or(0, |w| (p + 1).saturating_sub(w))
                })
                .sum();
            let gf = 4.0 * (pairs * nh * hd) as f64 / ms / 1e6;
            println!("attention {nh}x{nkv}x{hd} t{tokens} pos{pos0}: {ms:.3} ms ({gf:.1} GFLOP/s)");
        }
        let mut logits = vals(262_144, 7, 40.0);
        let ms = best(50, || b.softcap(&SoftcapArgs { len: 262_144, cap: 30.0 }, &mut logits).unwrap());
        println!("softcap 262144: {ms:.3} ms");
        let (g, u) = (vals(512 * 6144, 8, 3.0), vals(512 * 6144, 9, 3.0));
        let mut o = vec![0.0; 512 * 6144];
        let ms = best(10, || b.geglu(&GegluArgs { rows: 512, width: 6144 }, &g, &u, &mut o).unwrap());
        println!("geglu 512x6144: {ms:.3} ms");
        let ms = best(50, || b.geglu(&GegluArgs { rows: 1, width: 6144 }, &g, &u, &mut o).unwrap());
        println!("geglu 1x6144: {:.1} us", ms * 1e3);
        let x = vals(512 * 1536, 10, 2.0);
        let w = HostTensor::from_f32_as(&vals(1536, 11, 1.0), vec![1536], DType::BF16).unwrap();
        let mut o2 = vec![0.0; 512 * 1536];
        let ms =
            best(20, || b.rms_norm(&RmsNormArgs { rows: 512, dim: 1536, eps: 1e-6 }, &x, Some(&w), &mut o2).unwrap());
        println!("rms_norm 512x1536: {ms:.3} ms");
        let ms =
            best(50, || b.rms_norm(&RmsNormArgs { rows: 1, dim: 1536, eps: 1e-6 }, &x, Some(&w), &mut o2).unwrap());
        println!("rms_norm 1x1536: {:.1} us", ms * 1e3);
        let mut xq = vals(512 * 4 * 256, 12, 1.0);
        let mut p = 0;
        let ms = best(5, || {
            p += 1;
            b.rope(
                &RopeArgs {
                    tokens: 512,
                    heads: 4,
                    head_dim: 256,
                    rotary_pairs: 128,
                    theta: 1e4,
                    pos0: p,
                    freq_scale: 1.0,
                },
                &mut xq,
            )
            .unwrap()
        });
        println!("rope 512x4x256 cold: {ms:.3} ms");
        let ms = best(5, || {
            b.rope(
                &RopeArgs {
                    tokens: 512,
                    heads: 4,
                    head_dim: 256,
                    rotary_pairs: 128,
                    theta: 1e4,
                    pos0: 0,
                    freq_scale: 1.0,
                },
                &mut xq,
            )
            .unwrap()
        });
        println!("rope 512x4x256 cached: {ms:.3} ms");
        let ms = best(50, || {
            p += 1;
            b.rope(
                &RopeArgs {
                    tokens: 1,
                    heads: 8,
                    head_dim: 256,
                    rotary_pairs: 128,
                    theta: 1e4,
                    pos0: p,
                    freq_scale: 1.0,
                },
                &mut xq,
            )
            .unwrap()
        });
        println!("rope decode 1x8x256: {:.1} us", ms * 1e3);
    }
}
