//! The WGSL backend's elementwise ops and RMSNorm against the reference (scaffolding until the
//! ops-test covers them).
#![cfg(feature = "wgpu")]

mod common;
use common::*;
use garnet_kernels::wgsl::Wgpu;
use garnet_kernels::*;

fn gpu() -> Option<Wgpu> {
    match Wgpu::new() {
        Ok(g) => Some(g),
        Err(e) => {
            println!("skipped: no wgpu adapter ({e})");
            None
        }
    }
}

fn to_gpu(g: &Wgpu, x: &[f32]) -> <Wgpu as Backend>::Buf {
    let mut b = g.alloc(x.len()).unwrap();
    g.upload(x, &mut b).unwrap();
    b
}

fn from_gpu(g: &Wgpu, b: &<Wgpu as Backend>::Buf) -> Vec<f32> {
    let mut out = vec![0.0; g.buf_len(b)];
    g.download(b, 0, &mut out).unwrap();
    out
}

fn nerr(got: &[f32], want: &[f32]) -> f64 {
    assert!(got.iter().all(|v| v.is_finite()), "non-finite output");
    let m = want.iter().fold(0.0f64, |m, w| m.max(w.abs() as f64)).max(1e-30);
    got.iter().zip(want).fold(0.0f64, |e, (g, w)| e.max((*g as f64 - *w as f64).abs())) / m
}

#[test]
fn elementwise_and_norm_match_reference() {
    let Some(g) = gpu() else { return };
    println!("adapter: {}", g.gpu().describe());
    let mut rng = Rng(7);
    for (rows, dim) in [(1, 5), (3, 1536), (2, 70_001)] {
        let n = rows * dim;
        let (x, y) = (rng.vec(n, 3.0), rng.vec(n, 2.0));
        let w = HostTensor::from_f32_as(&rng.around_one(dim, 0.5), vec![dim], DType::BF16).unwrap();
        let gw = g.weight(&w).unwrap();

        let mut want = buf(&y);
        be().add(&AddArgs { len: n, scale: 0.7 }, &buf(&x), &mut want).unwrap();
        let mut got = to_gpu(&g, &y);
        g.add(&AddArgs { len: n, scale: 0.7 }, &to_gpu(&g, &x), &mut got).unwrap();
        assert!(nerr(&from_gpu(&g, &got), &host(&want)) < 1e-6, "add {rows}x{dim}");

        let mut want = z(n);
        be().geglu(&GegluArgs { rows, width: dim }, &buf(&x), &buf(&y), &mut want).unwrap();
        let mut got = g.alloc(n).unwrap();
        g.geglu(&GegluArgs { rows, width: dim }, &to_gpu(&g, &x), &to_gpu(&g, &y), &mut got).unwrap();
        let e = nerr(&from_gpu(&g, &got), &host(&want));
        assert!(e < 1e-5, "geglu {rows}x{dim}: {e:e}");

        let a = RmsNormArgs { rows, dim, eps: 1e-6 };
        let mut want = z(n);
        be().rms_norm(&a, &buf(&x), Some(&w), &mut want).unwrap();
        let mut got = g.alloc(n).unwrap();
        g.rms_norm(&a, &to_gpu(&g, &x), Some(&gw), &mut got).unwrap();
        let e = nerr(&from_gpu(&g, &got), &host(&want));
        assert!(e < 1e-5, "rms_norm {rows}x{dim}: {e:e}");

        let mut want = buf(&y);
        be().add_rms_norm(&a, &buf(&x), &w, &mut want).unwrap();
        let mut got = to_gpu(&g, &y);
        g.add_rms_norm(&a, &to_gpu(&g, &x), &gw, &mut got).unwrap();
        let e = nerr(&from_gpu(&g, &got), &host(&want));
        assert!(e < 1e-5, "add_rms_norm {rows}x{dim}: {e:e}");

        let mut want = buf(&x);
        be().softcap(&SoftcapArgs { len: n, cap: 2.0 }, &mut want).unwrap();
        be().scale(&ScaleArgs { len: n, factor: -1.5 }, &mut want).unwrap();
        let mut got = to_gpu(&g, &x);
        g.softcap(&SoftcapArgs { len: n, cap: 2.0 }, &mut got).unwrap();
        g.scale(&ScaleArgs { len: n, factor: -1.5 }, &mut got).unwrap();
        let e = nerr(&from_gpu(&g, &got), &host(&want));
        assert!(e < 1e-5, "softcap+scale {rows}x{dim}: {e:e}");
    }
    println!("{:?}", g.gpu().stats());
}
