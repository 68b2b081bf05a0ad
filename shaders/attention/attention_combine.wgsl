// attention_combine: the second pass of split (flash-decoding) attention. For each output row
// (token, query head), merges the splits' partials written by `attention`:
//   M = max_s m_s,   out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s.
// A split that saw none of the row's keys has m = NEG, l = 0, acc = 0 and weighs nothing.
// Layout: scratch [rows, splits, head_dim] partial outputs, then [rows, splits, 2] (m, l);
// out [rows, head_dim]. One workgroup per row (2-D grid past 65535), threads over head_dim; each
// thread recomputes the (few) split weights rather than sharing them through a barrier.
// Versions: v1.

struct Params { rows: u32, head_dim: u32, splits: u32, _pad0: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scratch: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override WG: u32 = 128u;
const NEG: f32 = -3.0e38;

@compute @workgroup_size(WG)
fn attention_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
    let ml = p.rows * p.splits * p.head_dim + row * p.splits * 2u;
    var mx = NEG;
    for (var s = 0u; s < p.splits; s++) {
        mx = max(mx, scratch[ml + 2u * s]);
    }
    var den = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        let m = scratch[ml + 2u * s];
        den += select(exp(m - mx), 0.0, m == NEG) * scratch[ml + 2u * s + 1u];
    }
    let inv = 1.0 / den;
    let base = row * p.splits * p.head_dim;
    for (var d = li; d < p.head_dim; d += WG) {
        var o = 0.0;
        for (var s = 0u; s < p.splits; s++) {
            let m = scratch[ml + 2u * s];
            o += select(exp(m - mx), 0.0, m == NEG) * scratch[base + s * p.head_dim + d];
        }
        out[row * p.head_dim + d] = o * inv;
    }
}
