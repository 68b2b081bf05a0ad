// matvec: the matmul for a few tokens (decode): out[t, row0 + j] = sum_c x[t, c] * w[j, c] for
// t < m (m = MV_M <= 8), j < n, c < k, where w is one chunk of the weight (rows row0..row0 + n
// of the full [ldo, k] matrix) in its storage dtype (weights.wgsl, prepended, decodes it).
// Layout: x [m, k] f32, read as vec4s (the host sends k % 4 != 0 to the tiled matmul); w [n, k]
// words; out [m, ldo] f32, this chunk writing columns row0..row0 + n.
// A workgroup of WG invocations takes WG / LPR consecutive rows (2-D grid of workgroups past
// 65535), LPR lanes per row: each lane decodes every LPR-th 32-element group of its row (whole
// blocks or K-quant sub-blocks) and dots it with the same columns of every token; a float row
// whose k is not a multiple of 32 finishes 4 elements at a time. With LPR > 1 a row's lane sums
// are then added by a tree in workgroup memory, all tokens at once (log2 LPR barriers). The
// host picks LPR (1 on CPU adapters, where a lane per row needs no reduction at all; wider on
// GPUs and for few rows) and sets MV_M to the call's token count.
// Rows past n (in the last workgroup) read row n - 1 again and store nothing, so every lane
// reaches the barriers.
// Shaped by lavapipe, which runs a workgroup as SIMD vectors of 8 lanes and writes a private
// array it cannot keep in registers with a masked copy per lane:
// - the dot takes the decoded group with constant indices only (mv_dot32): indexing it in a
//   loop made the compiler copy the 32 values to memory per group, most of v1's time;
// - MV_M is a pipeline constant, not a guard on a runtime m: a guarded token loop runs all 8
//   tokens, masked, and a constant trip count unrolls (5x for one token);
// - x is read as vec4s: a quarter of the loads (each one a per-lane, bounds-checked loop
//   there), 1.5-2.4x.
// The per-row sum uses workgroup memory even with subgroups: the prepended
// reduce_subgroup.wgsl / reduce_workgroup.wgsl only sum a whole workgroup, and a per-row
// subgroupAdd would need a segmented sum there (the CPU layout, LPR = 1, needs none).
// Versions: v1, a workgroup per row (WG lanes, reduce_sum), up to 8 tokens per pass behind a
// guard: 20-35 ns per weight element on lavapipe. v2, several rows per workgroup, the constant
// index dot, MV_M a pipeline constant, vec4 x: 10-30x faster there for most dtypes, 3-6x for
// Q8_0 and 2-4x for Q6_K, whose decoding (32-iteration loops in weights.wgsl) bounds them.

struct Params { m: u32, n: u32, k: u32, ldo: u32, row0: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// Accumulators per lane (the host's MATVEC_MAX_M): the most tokens a pass takes.
const MAX_M: u32 = 8u;
// Tokens in this pass (p.m, 1..=MAX_M).
override MV_M: u32 = 1u;
// Lanes per row: a power of two dividing WG.
override LPR: u32 = 1u;

// Each lane's sums per token (slot t * WG + lane index), for the per-row tree when LPR > 1.
override MV_SLOTS: u32 = WG * MV_M;
var<workgroup> mv_part: array<f32, MV_SLOTS>;

// The dot of the 32 values v with x from vec4 index xq, with constant indices only.
fn mv_dot32(v: array<f32, 32>, xq: u32) -> f32 {
    var s = dot(vec4<f32>(v[0], v[1], v[2], v[3]), x[xq]);
    s += dot(vec4<f32>(v[4], v[5], v[6], v[7]), x[xq + 1u]);
    s += dot(vec4<f32>(v[8], v[9], v[10], v[11]), x[xq + 2u]);
    s += dot(vec4<f32>(v[12], v[13], v[14], v[15]), x[xq + 3u]);
    s += dot(vec4<f32>(v[16], v[17], v[18], v[19]), x[xq + 4u]);
    s += dot(vec4<f32>(v[20], v[21], v[22], v[23]), x[xq + 5u]);
    s += dot(vec4<f32>(v[24], v[25], v[26], v[27]), x[xq + 6u]);
    s += dot(vec4<f32>(v[28], v[29], v[30], v[31]), x[xq + 7u]);
    return s;
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lanes: Lanes) {
    let j0 = (wid.x + wid.y * nwg.x) * (WG / LPR);
    if (j0 >= p.n) {
        return;
    }
    let lane = lanes.li % LPR;
    let j = j0 + lanes.li / LPR;
    let base = min(j, p.n - 1u) * p.k;
    let kq = p.k / 4u;
    let groups = p.k / 32u;
    var acc: array<f32, MAX_M>;
    for (var g = lane; g < groups; g += LPR) {
        let wv = w_load32(base + g * 32u);
        for (var t = 0u; t < MV_M; t++) {
            acc[t] += mv_dot32(wv, t * kq + g * 8u);
        }
    }
    // Float rows only (block rows are whole groups): the last k % 32 columns.
    for (var q = groups * 8u + lane; q < kq; q += LPR) {
        let e = base + q * 4u;
        let wq = vec4<f32>(w_at(e), w_at(e + 1u), w_at(e + 2u), w_at(e + 3u));
        for (var t = 0u; t < MV_M; t++) {
            acc[t] += dot(wq, x[t * kq + q]);
        }
    }
    if (LPR > 1u) {
        for (var t = 0u; t < MV_M; t++) {
            mv_part[t * WG + lanes.li] = acc[t];
        }
        workgroupBarrier();
        for (var s = LPR / 2u; s > 0u; s /= 2u) {
            if (lane < s) {
                for (var t = 0u; t < MV_M; t++) {
                    mv_part[t * WG + lanes.li] += mv_part[t * WG + lanes.li + s];
                }
            }
            workgroupBarrier();
        }
        for (var t = 0u; t < MV_M; t++) {
            acc[t] = mv_part[t * WG + lanes.li];
        }
    }
    if (lane == 0u && j < p.n) {
        for (var t = 0u; t < MV_M; t++) {
            out[t * p.ldo + p.row0 + j] = acc[t];
        }
    }
}
