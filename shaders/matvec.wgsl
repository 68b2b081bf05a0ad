// matvec: the matmul for a few tokens (decode): out[t, row0 + j] = sum_c x[t, c] * w[j, c] for
// t < m (m <= MV_M), j < n, c < k, where w is one chunk of the weight (rows row0..row0 + n of
// the full [ldo, k] matrix) in its storage dtype (weights.wgsl, prepended, decodes it).
// Layout: x [m, k] f32; w [n, k] words; out [m, ldo] f32, this chunk writing columns
// row0..row0 + n.
// One workgroup per weight row (2-D grid past 65535 rows): each invocation decodes 32-element
// groups of the row (whole blocks or K-quant sub-blocks), strided by WG, and dots each with the
// same columns of every token; a float row whose k is not a multiple of 32 finishes element by
// element. Each token's partial sums are then reduced across the workgroup by reduce_sum
// (reduce_subgroup.wgsl or reduce_workgroup.wgsl, prepended, which also declares WG; the host
// sizes WG to the row's groups). The row is decoded once for all m tokens. Token loops run to
// the constant MV_M with a guard, so they unroll and the accumulators stay in registers (a
// private array indexed by a runtime count would live in scratch memory).
// Versions: v1, a workgroup per row, up to MV_M tokens per pass.

struct Params { m: u32, n: u32, k: u32, ldo: u32, row0: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// Tokens per pass (the host's MATVEC_MAX_M): one accumulator each per invocation.
const MV_M: u32 = 8u;

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lanes: Lanes) {
    let j = wid.x + wid.y * nwg.x;
    if (j >= p.n) {
        return;
    }
    let m = min(p.m, MV_M);
    let base = j * p.k;
    let groups = p.k / 32u;
    var acc: array<f32, MV_M>;
    for (var g = lanes.li; g < groups; g += WG) {
        let wv = w_load32(base + g * 32u);
        for (var t = 0u; t < MV_M; t++) {
            if (t < m) {
                let xb = t * p.k + g * 32u;
                var s = 0.0;
                for (var i = 0u; i < 32u; i++) {
                    s += wv[i] * x[xb + i];
                }
                acc[t] += s;
            }
        }
    }
    for (var c = groups * 32u + lanes.li; c < p.k; c += WG) {
        let wc = w_at(base + c);
        for (var t = 0u; t < MV_M; t++) {
            if (t < m) {
                acc[t] += wc * x[t * p.k + c];
            }
        }
    }
    for (var t = 0u; t < MV_M; t++) {
        if (t < m) {
            let s = reduce_sum(acc[t], lanes);
            if (lanes.li == 0u) {
                out[t * p.ldo + p.row0 + j] = s;
            }
        }
    }
}
