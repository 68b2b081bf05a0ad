//! Bad arguments to every op of the reference backend: each returns `Err`, none panics.

mod common;
use common::*;
use garnet_kernels::reference::gather_rows;
use garnet_kernels::*;

#[track_caller]
fn bad<T>(r: Result<T>) {
    assert!(matches!(r, Err(KernelError::Shape { .. })), "expected a shape error");
}

#[track_caller]
fn bad_id<T>(r: Result<T>) {
    assert!(matches!(r, Err(KernelError::IdOutOfRange { .. })), "expected an id error");
}

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

#[test]
fn errors_matmul_norm_rope() {
    let a = MatmulArgs { m: 2, n: 3, k: 4 };
    let w = f32w(&[3, 4]);
    be().matmul(&a, &z(8), &w, &mut z(6)).unwrap();
    bad(be().matmul(&a, &z(7), &w, &mut z(6)));
    bad(be().matmul(&a, &z(8), &w, &mut z(5)));
    bad(be().matmul(&a, &z(8), &f32w(&[4, 3]), &mut z(6)));
    bad(be().matmul(&a, &z(8), &f32w(&[1, 3, 4]), &mut z(6)));
    bad(be().matmul(&with(a, |a| a.m = usize::MAX), &z(8), &w, &mut z(6)));

    let a = RmsNormArgs { rows: 2, dim: 4, eps: 1e-6 };
    be().rms_norm(&a, &z(8), Some(&f32w(&[4])), &mut z(8)).unwrap();
    bad(be().rms_norm(&a, &z(8), Some(&f32w(&[5])), &mut z(8)));
    bad(be().rms_norm(&a, &z(7), None, &mut z(8)));
    bad(be().rms_norm(&a, &z(8), None, &mut z(7)));
    bad(be().add_rms_norm(&a, &z(8), &f32w(&[4]), &mut z(7)));
    bad(be().add_rms_norm(&a, &z(8), &f32w(&[2, 2]), &mut z(8)));

    let a = rope_args(8, 4, 1e4, 3); // 3 tokens x 4 heads x 8
    be().rope(&a, &mut z(96)).unwrap();
    bad(be().rope(&a, &mut z(95)));
    bad(be().rope(&with(a, |a| a.rotary_pairs = 5), &mut z(96)));
    bad(be().rope(&with(a, |a| (a.head_dim, a.rotary_pairs) = (7, 3)), &mut z(96)));
    bad(be().rope(&with(a, |a| a.pos0 = usize::MAX), &mut z(96)));
}

#[test]
fn errors_kv_attention() {
    let a = KvWriteArgs { tokens: 2, kv_dim: 4, pos0: 7, capacity: 3 };
    be().kv_write(&a, &z(8), &z(8), &mut z(12), &mut z(12)).unwrap();
    bad(be().kv_write(&a, &z(7), &z(8), &mut z(12), &mut z(12)));
    bad(be().kv_write(&a, &z(8), &z(8), &mut z(12), &mut z(11)));
    bad(be().kv_write(&with(a, |a| a.capacity = 0), &z(8), &z(8), &mut z(12), &mut z(12)));

    // 2 tokens, 4 query heads on 2 KV heads of 8, a 4-slot cache, no window.
    let a = with(full(4, 2), |a| (a.n_heads, a.n_kv_heads, a.head_dim, a.capacity) = (4, 2, 8, 4));
    // Buffer lengths: q/out, new k/v, caches.
    let run = |a: AttentionArgs, q: usize, kv: usize, cache: usize, out: usize| {
        be().attention(&a, &z(q), &z(kv), &z(kv), &z(cache), &z(cache), &mut z(out))
    };
    run(a, 64, 32, 64, 64).unwrap();
    run(with(a, |a| (a.pos0, a.window) = (10, Some(5))), 64, 32, 64, 64).unwrap(); // 4 past
    bad(run(with(a, |a| (a.pos0, a.window) = (10, Some(6))), 64, 32, 64, 64)); // 5 past
    bad(run(with(a, |a| a.pos0 = 5), 64, 32, 64, 64)); // no window, pos0 > capacity
    bad(run(with(a, |a| a.n_kv_heads = 3), 64, 48, 96, 64)); // 4 % 3 != 0
    bad(run(with(a, |a| a.n_kv_heads = 0), 64, 0, 0, 64));
    bad(run(with(a, |a| (a.n_heads, a.n_kv_heads) = (2, 4)), 32, 64, 128, 32));
    bad(run(with(a, |a| a.window = Some(0)), 64, 32, 64, 64));
    bad(run(with(a, |a| (a.pos0, a.window) = (usize::MAX, Some(1))), 64, 32, 64, 64));
    bad(run(a, 63, 32, 64, 64));
    bad(run(a, 64, 31, 64, 64));
    bad(run(a, 64, 32, 63, 64));
    bad(run(a, 64, 32, 64, 63));
}

#[test]
fn errors_moe() {
    let a = RouteArgs { tokens: 2, n_experts: 4, top_k: 2 };
    let run =
        |a: RouteArgs, scale: &HostTensor, ids: usize| be().moe_route(&a, &z(8), scale, &mut vec![0; ids], &mut z(4));
    run(a, &f32w(&[4]), 4).unwrap();
    bad(run(with(a, |a| a.top_k = 0), &f32w(&[4]), 4));
    bad(run(with(a, |a| a.top_k = 5), &f32w(&[4]), 10));
    bad(run(a, &f32w(&[5]), 4));
    bad(run(a, &f32w(&[4]), 3));

    let a = MoeArgs { tokens: 2, hidden: 4, inter: 3, n_experts: 4, top_k: 2 };
    let (gate_up, down) = (f32w(&[4, 6, 4]), f32w(&[4, 4, 3]));
    let run = |a: MoeArgs, gate_up: &HostTensor, down: &HostTensor, ids: &[u32]| {
        be().moe_experts(&a, &z(8), gate_up, down, &ids.to_vec(), &z(4), &mut z(8))
    };
    run(a, &gate_up, &down, &[0, 1, 2, 3]).unwrap();
    bad_id(run(a, &gate_up, &down, &[0, 1, 4, 3]));
    bad(run(a, &gate_up, &down, &[0, 1, 2]));
    bad(run(a, &f32w(&[4, 3, 4]), &down, &[0, 1, 2, 3]));
    bad(run(a, &gate_up, &f32w(&[4, 3, 4]), &[0, 1, 2, 3]));
    bad(run(with(a, |a| a.top_k = 0), &gate_up, &down, &[0, 1, 2, 3]));
    bad(run(with(a, |a| a.top_k = 5), &gate_up, &down, &[0; 10]));
}

#[test]
fn errors_embed_elementwise_memory() {
    let table = f32w(&[10, 8]);
    let a = EmbedArgs { tokens: 2, width: 4, col_offset: 4, scale: 1.0 };
    be().embed(&a, &table, &vec![0, 9], &mut z(8)).unwrap();
    bad_id(be().embed(&a, &table, &vec![0, 10], &mut z(8)));
    bad_id(gather_rows(&a, &table, &[10, 0]));
    bad(gather_rows(&with(a, |a| a.col_offset = 5), &table, &[0, 1]));
    bad(gather_rows(&a, &table, &[0]));
    bad(be().embed(&a, &table, &vec![0, 1], &mut z(7)));
    bad(be().embed_host(&a, &table, &[0, 1], &mut z(7)));

    bad(be().geglu(&GegluArgs { rows: 2, width: 3 }, &z(6), &z(5), &mut z(6)));
    bad(be().softcap(&SoftcapArgs { len: 5, cap: 30.0 }, &mut z(4)));
    bad(be().scale(&ScaleArgs { len: 5, factor: 2.0 }, &mut z(4)));
    bad(be().add(&AddArgs { len: 5, scale: 1.0 }, &z(5), &mut z(4)));
    let a = CopyArgs { len: 3, src_offset: 2, dst_offset: 1 };
    be().copy(&a, &z(5), &mut z(4)).unwrap();
    bad(be().copy(&a, &z(4), &mut z(4)));
    bad(be().copy(&a, &z(5), &mut z(3)));
    bad(be().copy(&with(a, |a| a.dst_offset = usize::MAX), &z(5), &mut z(4)));

    assert!(be().download(&z(4), 2, &mut [0.0; 3]).is_err());
    assert!(be().download(&z(4), usize::MAX, &mut [0.0; 3]).is_err());
    assert!(be().upload(&[0.0; 5], &mut z(4)).is_err());
    assert!(be().download_ids(&vec![0; 2], &mut [0; 3]).is_err());
}
