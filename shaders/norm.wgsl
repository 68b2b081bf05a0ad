// rms_norm / add_rms_norm: per row of `dim`, y = x * (mean(x^2) + eps)^-0.5 * w (w = 1 when the
// weight is absent); rms_norm writes out = y, add_rms_norm adds it to the residual: out += y.
// Layout: x [rows, dim] f32; w [dim] f32 (1-D weights are widened at upload); out [rows, dim].
// One workgroup per row: each thread sums squares over a strided slice, a tree reduction in
// workgroup memory gives the row's scale, then the threads write their slice.
// Versions: v1, workgroup tree reduction.

struct Params { rows: u32, dim: u32, eps: f32, has_weight: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

fn row_scale(base: u32, li: u32) -> f32 {
    var s = 0.0;
    for (var i = li; i < p.dim; i += WG) {
        let v = x[base + i];
        s += v * v;
    }
    partial[li] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    return inverseSqrt(partial[0] / f32(p.dim) + p.eps);
}

fn weight(i: u32) -> f32 {
    if (p.has_weight != 0u) {
        return w[i];
    }
    return 1.0;
}

@compute @workgroup_size(WG)
fn rms_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.dim;
    let r = row_scale(base, li);
    for (var i = li; i < p.dim; i += WG) {
        out[base + i] = x[base + i] * r * weight(i);
    }
}

@compute @workgroup_size(WG)
fn add_rms_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.dim;
    let r = row_scale(base, li);
    for (var i = li; i < p.dim; i += WG) {
        out[base + i] += x[base + i] * r * weight(i);
    }
}
