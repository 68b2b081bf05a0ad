// moe_experts: the selected experts' FFNs, out[t] = sum_j weights[t, j] * down[e] (gelu_tanh(g) * u)
// with e = ids[t, j] and [g | u] = gate_up[e] x[t], in two entry points over one weight each
// (`w` and DTYPE, from weights.wgsl, name a single weight):
// - moe_experts_gate_up: act[r, i] = gelu_tanh(gate_up[e][i] . x[t]) * (gate_up[e][inter + i] . x[t])
//   for routed pair r = t * top_k + j; one workgroup per (r, i).
// - moe_experts_down: out[t, h] (=, or += after the first chunk) sum_j weights[t, j] * (down[e][h] . act[t, j]);
//   one workgroup per (t, h), its threads spread over the (j, 32-element segment) units.
// Layout: x [tokens, hidden], act [tokens * top_k, inter], out [tokens, hidden] f32; ids, weights
// [tokens, top_k]; the bound weight `w` is one chunk of whole experts e0..e0 + e_count of
// gate_up [n_experts, 2 * inter, hidden] (first inter rows gate) or down [n_experts, hidden, inter].
// The host dispatches each chunk in turn; a pair whose id is outside the bound chunk is skipped,
// so an id >= n_experts (it lies in no chunk) reads nothing and contributes nothing. The host
// runs tokens in batches t0..t0 + tokens so act fits one binding. Dot products: each thread sums
// whole 32-element segments (w_load32; w_at for a partial last one), then reduce_sum (subgroups
// or a workgroup tree: reduce_*.wgsl, prepended with weights.wgsl, which decodes the weights).
// Versions: v1, one workgroup per output element (no reuse of an expert's rows across tokens).
// WG (from the reduce include) must be a power of two.

struct Params {
    tokens: u32,     // tokens in this batch
    t0: u32,         // the batch's first token
    top_k: u32,
    rows: u32,       // output rows per pair (gate_up: inter) or per token (down: hidden)
    len: u32,        // dot product length (gate_up: hidden; down: inter)
    e0: u32,         // the bound chunk's first expert
    e_count: u32,    // and its expert count
    accumulate: u32, // down: 0 writes out, 1 adds to it (chunks after the first)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>; // x (gate_up) or act (down)
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>; // act (gate_up) or out (down)
@group(0) @binding(5) var<storage, read> route_w: array<f32>; // down only

// True when the bound chunk holds expert `e`.
fn in_chunk(e: u32) -> bool {
    return e >= p.e0 && e - p.e0 < p.e_count;
}

// Segment s (elements 32 s .. min(32 s + 32, len)) of the dot product of the weight row at flat
// element wbase with src[xbase ..].
fn seg_dot(wbase: u32, xbase: u32, len: u32, s: u32) -> f32 {
    let h0 = s * 32u;
    var acc = 0.0;
    // Whole segments through w_load32: any start for F32/F16/BF16, and a block row's length is
    // whole blocks, so its segments start at multiples of 32. Only a row length that is not a
    // multiple of 32 (F32/F16/BF16 only) leaves a partial last segment.
    if (h0 + 32u <= len) {
        var v = w_load32(wbase + h0);
        for (var k = 0u; k < 32u; k++) {
            acc += v[k] * src[xbase + h0 + k];
        }
    } else {
        let end = min(h0 + 32u, len);
        for (var h = h0; h < end; h++) {
            acc += w_at(wbase + h) * src[xbase + h];
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn moe_experts_gate_up(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       lanes: Lanes) {
    let li = lanes.li;
    let g = wid.x + wid.y * nwg.x;
    let r = g / p.rows; // pair within the batch
    let i = g % p.rows;
    let pair = p.t0 * p.top_k + r;
    var valid = g < p.tokens * p.top_k * p.rows;
    var e = 0u;
    if (valid) {
        e = ids[pair];
        valid = in_chunk(e);
    }
    // Inactive workgroups still reach the barriers: no thread has units.
    let nseg = (p.len + 31u) / 32u;
    let units = select(0u, 2u * nseg, valid);
    let gate_row = ((e - p.e0) * 2u * p.rows + i) * p.len;
    let xbase = (pair / p.top_k) * p.len;
    var acc = vec2(0.0);
    for (var u = li; u < units; u += WG) {
        let up = u / nseg; // 0: gate row i, 1: up row inter + i
        let d = seg_dot(gate_row + up * p.rows * p.len, xbase, p.len, u % nseg);
        acc += select(vec2(d, 0.0), vec2(0.0, d), up == 1u);
    }
    let gate = reduce_sum(acc.x, lanes);
    let up = reduce_sum(acc.y, lanes);
    if (li == 0u && valid) {
        let inner = 0.7978845608028654 * (gate + 0.044715 * gate * gate * gate);
        dst[r * p.rows + i] = 0.5 * gate * (1.0 + tanh(clamp(inner, -10.0, 10.0))) * up;
    }
}

@compute @workgroup_size(WG)
fn moe_experts_down(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    lanes: Lanes) {
    let li = lanes.li;
    let g = wid.x + wid.y * nwg.x;
    let tl = g / p.rows; // token within the batch
    let h = g % p.rows;
    let valid = g < p.tokens * p.rows;
    let nseg = (p.len + 31u) / 32u;
    let units = select(0u, p.top_k * nseg, valid);
    var acc = 0.0;
    for (var u = li; u < units; u += WG) {
        let j = u / nseg;
        let pair = (p.t0 + tl) * p.top_k + j;
        let e = ids[pair];
        if (in_chunk(e)) {
            let row = ((e - p.e0) * p.rows + h) * p.len;
            acc += route_w[pair] * seg_dot(row, (tl * p.top_k + j) * p.len, p.len, u % nseg);
        }
    }
    let sum = reduce_sum(acc, lanes);
    if (li == 0u && valid) {
        let o = (p.t0 + tl) * p.rows + h;
        if (p.accumulate != 0u) {
            dst[o] += sum;
        } else {
            dst[o] = sum;
        }
    }
}
