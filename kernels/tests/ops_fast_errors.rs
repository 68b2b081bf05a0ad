//! Bad arguments to every op of the fast CPU backend: each returns the same error as the
//! reference (same variant and message), none panics. One list of calls, generic over the
//! backend, run on `RefCpu` and on `FastCpu` at every supported level.

mod common;
use common::*;
use garnet_kernels::cpu::{FastCpu, Isa};
use garnet_kernels::reference::RefCpu;
use garnet_kernels::Precision;
use garnet_kernels::*;

/// `a` with one change.
fn with<A: Copy>(a: A, change: impl FnOnce(&mut A)) -> A {
    let mut b = a;
    change(&mut b);
    b
}

/// An f32 weight of `shape`.
fn f32w(shape: &[usize]) -> HostTensor {
    HostTensor::from_f32(&vec![0.5; shape.iter().product()], shape.to_vec()).unwrap()
}

/// Every call of the list, good ones (`Ok`) and bad ones, with its result as a string.
fn calls<B: Backend<Buf = Vec<f32>, Ids = Vec<u32>, Weight = HostTensor>>(b: &B) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut note = |what: &str, r: Result<()>| out.push((what.to_string(), format!("{r:?}")));

    let a = MatmulArgs { m: 2, n: 3, k: 4 };
    let w = f32w(&[3, 4]);
    note("matmul ok", b.matmul(&a, &z(8), &w, &mut z(6)));
    note("matmul x", b.matmul(&a, &z(7), &w, &mut z(6)));
    note("matmul out", b.matmul(&a, &z(8), &w, &mut z(5)));
    note("matmul w", b.matmul(&a, &z(8), &f32w(&[4, 3]), &mut z(6)));
    note("matmul overflow", b.matmul(&with(a, |a| a.m = usize::MAX), &z(8), &w, &mut z(6)));

    let a = RmsNormArgs { rows: 2, dim: 4, eps: 1e-6 };
    note("rms_norm ok", b.rms_norm(&a, &z(8), Some(&f32w(&[4])), &mut z(8)));
    note("rms_norm w", b.rms_norm(&a, &z(8), Some(&f32w(&[5])), &mut z(8)));
    note("rms_norm x", b.rms_norm(&a, &z(7), None, &mut z(8)));
    note("rms_norm out", b.rms_norm(&a, &z(8), None, &mut z(7)));
    note("rms_norm overflow", b.rms_norm(&with(a, |a| a.rows = usize::MAX), &z(8), None, &mut z(8)));
    note("add_rms_norm residual", b.add_rms_norm(&a, &z(8), &f32w(&[4]), &mut z(7)));
    note("add_rms_norm w", b.add_rms_norm(&a, &z(8), &f32w(&[2, 2]), &mut z(8)));

    let a = rope_args(8, 4, 1e4, 3); // 3 tokens x 4 heads x 8
    note("rope ok", b.rope(&a, &mut z(96)));
    note("rope x", b.rope(&a, &mut z(95)));
    note("rope pairs", b.rope(&with(a, |a| a.rotary_pairs = 5), &mut z(96)));
    note("rope odd", b.rope(&with(a, |a| (a.head_dim, a.rotary_pairs) = (7, 3)), &mut z(96)));
    note("rope pos", b.rope(&with(a, |a| a.pos0 = usize::MAX), &mut z(96)));
    note("rope scale", b.rope(&with(a, |a| a.freq_scale = 0.0), &mut z(96)));

    let a = KvWriteArgs { tokens: 2, kv_dim: 4, pos0: 7, capacity: 3 };
    note("kv_write ok", b.kv_write(&a, &z(8), &z(8), &mut z(12), &mut z(12)));
    note("kv_write k", b.kv_write(&a, &z(7), &z(8), &mut z(12), &mut z(12)));
    note("kv_write cache", b.kv_write(&a, &z(8), &z(8), &mut z(12), &mut z(11)));
    note("kv_write capacity", b.kv_write(&with(a, |a| a.capacity = 0), &z(8), &z(8), &mut z(12), &mut z(12)));
    note("kv_write pos", b.kv_write(&with(a, |a| a.pos0 = usize::MAX), &z(8), &z(8), &mut z(12), &mut z(12)));

    // 2 tokens, 4 query heads on 2 KV heads of 8, a 4-slot cache. Lengths: q/out, k/v, caches.
    let a = with(full(4, 2), |a| (a.n_heads, a.n_kv_heads, a.head_dim, a.capacity) = (4, 2, 8, 4));
    let mut att = |what: &str, a: AttentionArgs, q: usize, kv: usize, cache: usize, o: usize| {
        note(what, b.attention(&a, &z(q), &z(kv), &z(kv), &z(cache), &z(cache), &mut z(o)))
    };
    att("attention ok", a, 64, 32, 64, 64);
    att("attention window ok", with(a, |a| (a.pos0, a.window) = (10, Some(5))), 64, 32, 64, 64);
    att("attention past", with(a, |a| (a.pos0, a.window) = (10, Some(6))), 64, 32, 64, 64);
    att("attention no window", with(a, |a| a.pos0 = 5), 64, 32, 64, 64);
    att("attention heads", with(a, |a| a.n_kv_heads = 3), 64, 48, 96, 64);
    att("attention kv 0", with(a, |a| a.n_kv_heads = 0), 64, 0, 0, 64);
    att("attention heads <", with(a, |a| (a.n_heads, a.n_kv_heads) = (2, 4)), 32, 64, 128, 32);
    att("attention window 0", with(a, |a| a.window = Some(0)), 64, 32, 64, 64);
    att("attention pos", with(a, |a| (a.pos0, a.window) = (usize::MAX, Some(1))), 64, 32, 64, 64);
    att("attention q", a, 63, 32, 64, 64);
    att("attention k", a, 64, 31, 64, 64);
    att("attention cache", a, 64, 32, 63, 64);
    att("attention out", a, 64, 32, 64, 63);
    att("attention overflow", with(a, |a| a.tokens = usize::MAX / 2), 64, 32, 64, 64);

    let a = RouteArgs { tokens: 2, n_experts: 4, top_k: 2 };
    let mut route = |what: &str, a: RouteArgs, scale: &HostTensor, ids: usize, w: usize| {
        note(what, b.moe_route(&a, &z(8), scale, &mut vec![0; ids], &mut z(w)))
    };
    route("moe_route ok", a, &f32w(&[4]), 4, 4);
    route("moe_route k 0", with(a, |a| a.top_k = 0), &f32w(&[4]), 4, 4);
    route("moe_route k 5", with(a, |a| a.top_k = 5), &f32w(&[4]), 10, 10);
    route("moe_route scale", a, &f32w(&[5]), 4, 4);
    route("moe_route ids", a, &f32w(&[4]), 3, 4);
    route("moe_route weights", a, &f32w(&[4]), 4, 3);
    route("moe_route scores", with(a, |a| a.tokens = 3), &f32w(&[4]), 6, 6);

    let a = MoeArgs { tokens: 2, hidden: 4, inter: 3, n_experts: 4, top_k: 2 };
    let (gu, dn) = (f32w(&[4, 6, 4]), f32w(&[4, 4, 3]));
    let mut moe = |what: &str, a: MoeArgs, gu: &HostTensor, dn: &HostTensor, ids: &[u32], x: usize, o: usize| {
        note(what, b.moe_experts(&a, &z(x), gu, dn, &ids.to_vec(), &z(4), &mut z(o)))
    };
    moe("moe ok", a, &gu, &dn, &[0, 1, 2, 3], 8, 8);
    moe("moe id", a, &gu, &dn, &[0, 1, 4, 3], 8, 8);
    moe("moe ids", a, &gu, &dn, &[0, 1, 2], 8, 8);
    moe("moe gate_up", a, &f32w(&[4, 3, 4]), &dn, &[0, 1, 2, 3], 8, 8);
    moe("moe down", a, &gu, &f32w(&[4, 3, 4]), &[0, 1, 2, 3], 8, 8);
    moe("moe k 0", with(a, |a| a.top_k = 0), &gu, &dn, &[0, 1, 2, 3], 8, 8);
    moe("moe k 5", with(a, |a| a.top_k = 5), &gu, &dn, &[0; 10], 8, 8);
    moe("moe x", a, &gu, &dn, &[0, 1, 2, 3], 7, 8);
    moe("moe out", a, &gu, &dn, &[0, 1, 2, 3], 8, 7);

    let table = f32w(&[10, 8]);
    let a = EmbedArgs { tokens: 2, width: 4, col_offset: 4, scale: 1.0 };
    note("embed ok", b.embed(&a, &table, &vec![0, 9], &mut z(8)));
    note("embed id", b.embed(&a, &table, &vec![0, 10], &mut z(8)));
    note("embed cols", b.embed(&with(a, |a| a.col_offset = 5), &table, &vec![0, 1], &mut z(8)));
    note("embed ids", b.embed(&a, &table, &vec![0], &mut z(8)));
    note("embed out", b.embed(&a, &table, &vec![0, 1], &mut z(7)));
    note("embed_host out", b.embed_host(&a, &table, &[0, 1], &mut z(7)));
    note("embed_host id", b.embed_host(&a, &table, &[11, 1], &mut z(8)));
    note("embed scalar", b.embed(&a, &f32w(&[]), &vec![0, 1], &mut z(8)));

    note("geglu ok", b.geglu(&GegluArgs { rows: 2, width: 3 }, &z(6), &z(6), &mut z(6)));
    note("geglu up", b.geglu(&GegluArgs { rows: 2, width: 3 }, &z(6), &z(5), &mut z(6)));
    note("geglu gate", b.geglu(&GegluArgs { rows: 2, width: 3 }, &z(5), &z(6), &mut z(6)));
    note("geglu out", b.geglu(&GegluArgs { rows: 2, width: 3 }, &z(6), &z(6), &mut z(5)));
    note("geglu overflow", b.geglu(&GegluArgs { rows: usize::MAX, width: 3 }, &z(6), &z(6), &mut z(6)));
    note("softcap x", b.softcap(&SoftcapArgs { len: 5, cap: 30.0 }, &mut z(4)));
    note("softcap cap", b.softcap(&SoftcapArgs { len: 4, cap: 0.0 }, &mut z(4)));
    note("softcap nan", b.softcap(&SoftcapArgs { len: 4, cap: f32::NAN }, &mut z(4)));
    note("scale x", b.scale(&ScaleArgs { len: 5, factor: 2.0 }, &mut z(4)));
    note("add acc", b.add(&AddArgs { len: 5, scale: 1.0 }, &z(5), &mut z(4)));
    note("add x", b.add(&AddArgs { len: 5, scale: 1.0 }, &z(4), &mut z(5)));
    let a = CopyArgs { len: 3, src_offset: 2, dst_offset: 1 };
    note("copy ok", b.copy(&a, &z(5), &mut z(4)));
    note("copy src", b.copy(&a, &z(4), &mut z(4)));
    note("copy dst", b.copy(&a, &z(5), &mut z(3)));
    note("copy overflow", b.copy(&with(a, |a| a.dst_offset = usize::MAX), &z(5), &mut z(4)));

    note("download", b.download(&z(4), 2, &mut [0.0; 3]));
    note("download overflow", b.download(&z(4), usize::MAX, &mut [0.0; 3]));
    note("upload", b.upload(&[0.0; 5], &mut z(4)));
    note("download_ids", b.download_ids(&vec![0; 2], &mut [0; 3]));
    out
}

#[test]
fn fast_errors_match_reference() {
    let want = calls(&RefCpu::new());
    assert!(want.iter().filter(|(what, _)| what.ends_with(" ok")).all(|(_, r)| r == "Ok(())"));
    assert!(want.iter().filter(|(what, _)| !what.ends_with(" ok")).all(|(_, r)| r.starts_with("Err")));
    for isa in Isa::supported() {
        for act in [Precision::Reference, Precision::Native] {
            let got = calls(&FastCpu::with_isa(isa, act));
            for ((what, g), (_, w)) in got.iter().zip(&want) {
                assert_eq!(g, w, "{what} on {}", isa.name());
            }
        }
    }
}

#[test]
fn with_isa_never_exceeds_the_cpu() {
    let best = Isa::detect();
    for isa in Isa::ALL {
        let b = FastCpu::with_isa(isa, Precision::Reference);
        assert_eq!(b.isa(), isa.min(best));
        assert_eq!(b.activations(), Precision::Reference);
    }
    assert_eq!(FastCpu::new(Precision::Native).isa(), best);
    assert_eq!(FastCpu::new(Precision::Native).name(), "cpu");
}

/// `--cpu-isa`: a level this CPU has runs at that level; one above it is a clear error, not a
/// silent clamp; names parse back to their level and an unknown one lists the valid names.
#[test]
fn a_forced_cpu_level_is_that_level_or_an_error() {
    let best = Isa::detect();
    for isa in Isa::ALL {
        assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
        match FastCpu::at(Some(isa), Precision::Native) {
            Ok(b) => assert!(isa <= best && b.isa() == isa),
            Err(e) => assert!(isa > best && e.to_string().contains(&format!("up to {best}")), "{e}"),
        }
    }
    assert_eq!(FastCpu::at(None, Precision::Native).unwrap().isa(), best);
    let e = "avx1024".parse::<Isa>().unwrap_err().to_string();
    assert!(e.contains("avx1024") && e.contains("portable, avx2, avx512, avx512-bf16"), "{e}");
}
