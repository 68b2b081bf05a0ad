// moe_route: per token, softmax over the n_experts router scores (f32), the top_k most probable
// experts (probability descending, ties to the lower id: the order of `f32::total_cmp`, through
// an order-preserving u32 key), their probabilities renormalised to sum 1 (summed in rank order,
// as the reference does), each times per_expert_scale[e].
// Layout: scores [tokens, n_experts] f32; scale [n_experts] f32 (1-D weights are widened at
// upload); ids [tokens, top_k] u32 and weights [tokens, top_k] f32, written.
// One workgroup per token (2-D grid past 65535). The softmax max and sum are tree reductions
// over strided slices; a probability is recomputed from its score wherever needed (the same
// arithmetic, so the same value), so no per-expert storage is needed for any n_experts. The top
// k are found in k rounds: each round takes the best expert ranked after the previous one (a
// strided scan, then an arg-max tree reduction). Thread 0 writes the ids and probabilities as it
// goes and finally rescales its own writes into the weights.
// Versions: v1, k selection rounds. WG must be a power of two.

struct Params { tokens: u32, n_experts: u32, top_k: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> weights: array<f32>;

override WG: u32 = 64u;
var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_key: array<u32, WG>;
var<workgroup> red_id: array<u32, WG>;

// The rank key of a probability: u32 order of keys = `f32::total_cmp` order of values.
fn key_of(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// True when (ka, ia) ranks before (kb, ib): higher probability first, then the lower id.
fn ranks_before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia < ib);
}

@compute @workgroup_size(WG)
fn moe_route(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let t = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every thread returns or none does (barriers follow).
    if (t >= p.tokens) {
        return;
    }
    let n = p.n_experts;
    let base = t * n;

    // Max of the scores (f32 max, as the reference's fold).
    var m = -3.4028235e38;
    for (var e = li; e < n; e += WG) {
        m = max(m, scores[base + e]);
    }
    red_f[li] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (li < s) {
            red_f[li] = max(red_f[li], red_f[li + s]);
        }
        workgroupBarrier();
    }
    let mx = red_f[0];
    workgroupBarrier();

    // Sum of exp(score - max).
    var sum = 0.0;
    for (var e = li; e < n; e += WG) {
        sum += exp(scores[base + e] - mx);
    }
    red_f[li] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (li < s) {
            red_f[li] += red_f[li + s];
        }
        workgroupBarrier();
    }
    let total = red_f[0];

    // k rounds: the best expert ranked after (prev_key, prev_id).
    let out = t * p.top_k;
    var prev_key = 0u;
    var prev_id = 0u;
    var first = true; // round 0 takes the best of all
    for (var j = 0u; j < p.top_k; j++) {
        var bk = 0u;
        var bi = 0xffffffffu;
        for (var e = li; e < n; e += WG) {
            let k = key_of(exp(scores[base + e] - mx) / total);
            let after = first || ranks_before(prev_key, prev_id, k, e);
            if (after && (bi == 0xffffffffu || ranks_before(k, e, bk, bi))) {
                bk = k;
                bi = e;
            }
        }
        red_key[li] = bk;
        red_id[li] = bi;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s /= 2u) {
            if (li < s) {
                let ok = red_id[li + s];
                if (ok != 0xffffffffu && (red_id[li] == 0xffffffffu ||
                        ranks_before(red_key[li + s], ok, red_key[li], red_id[li]))) {
                    red_key[li] = red_key[li + s];
                    red_id[li] = ok;
                }
            }
            workgroupBarrier();
        }
        prev_key = red_key[0];
        // Every expert is ranked after the previous while j < top_k <= n_experts, so an id is
        // always found; the clamp only keeps a broken invariant from indexing out of bounds.
        prev_id = min(red_id[0], n - 1u);
        first = false;
        workgroupBarrier();
        if (li == 0u) {
            ids[out + j] = prev_id;
            weights[out + j] = exp(scores[base + prev_id] - mx) / total;
        }
    }

    // Renormalise the k probabilities (summed in rank order) and apply the expert scales.
    if (li == 0u) {
        var ksum = 0.0;
        for (var j = 0u; j < p.top_k; j++) {
            ksum += weights[out + j];
        }
        for (var j = 0u; j < p.top_k; j++) {
            weights[out + j] = weights[out + j] / ksum * scale[ids[out + j]];
        }
    }
}
