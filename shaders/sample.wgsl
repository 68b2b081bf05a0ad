// argmax: greedy choice per row of logits (see `reference/sample.rs`): out[2r] = the lowest index of
// the row's largest value (as f32, exact below 2^24), out[2r + 1] = -ln(sum_i exp(x_i - max));
// a row holding NaN or +inf, or nothing above -inf, gives index len and a NaN logprob.
// Layout: x [rows, len] f32; out [rows, 2] f32.
// One workgroup per row: each invocation keeps (max, index, sum of exp(x - max), bad) over a
// strided slice, rescaling its sum when the max grows (online softmax), then a tree in workgroup
// memory merges the four-tuples.
// Versions: v1.

struct Params { rows: u32, len: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

var<workgroup> t_max: array<f32, WG>;
var<workgroup> t_idx: array<u32, WG>;
var<workgroup> t_sum: array<f32, WG>;
var<workgroup> t_bad: array<u32, WG>;

const NEG_INF: f32 = -3.40282347e38;

// exp(a - m) with a term at -inf (or the float minimum standing for it) contributing 0.
fn rel_exp(a: f32, m: f32) -> f32 {
    return select(exp(a - m), 0.0, a <= NEG_INF);
}

@compute @workgroup_size(WG)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: a workgroup past the rows skips everything, barriers included.
    if (row >= p.rows) {
        return;
    }
    let base = row * p.len;
    var m = NEG_INF;
    var idx = p.len;
    var s = 0.0;
    var bad = 0u;
    for (var i = li; i < p.len; i += WG) {
        let v = x[base + i];
        // NaN fails every comparison; +inf is above the float maximum.
        if (!(v <= 3.40282347e38)) {
            bad = 1u;
        } else if (v > m) {
            s = s * rel_exp(m, v) + 1.0;
            m = v;
            idx = i;
        } else {
            s += rel_exp(v, m);
        }
    }
    t_max[li] = m;
    t_idx[li] = idx;
    t_sum[li] = s;
    t_bad[li] = bad;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) {
            let m1 = t_max[li];
            let m2 = t_max[li + stride];
            let mm = max(m1, m2);
            var i = t_idx[li];
            if (m2 > m1 || (m2 == m1 && t_idx[li + stride] < i)) {
                i = t_idx[li + stride];
            }
            t_sum[li] = t_sum[li] * rel_exp(m1, mm) + t_sum[li + stride] * rel_exp(m2, mm);
            t_max[li] = mm;
            t_idx[li] = i;
            t_bad[li] = t_bad[li] | t_bad[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        if (t_bad[0] != 0u || t_max[0] <= NEG_INF) {
            out[2u * row] = f32(p.len);
            out[2u * row + 1u] = bitcast<f32>(0x7fc00000u);
        } else {
            out[2u * row] = f32(t_idx[0]);
            out[2u * row + 1u] = -log(t_sum[0]);
        }
    }
}
