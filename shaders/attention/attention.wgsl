// attention: causal GQA attention of `tokens` queries at positions pos0..pos0+tokens (see
// `reference/attention.rs`): the query at position P sees keys j <= P with j > P - window (window 0 =
// all); key j < pos0 is in the cache ring at slot j % capacity, key j >= pos0 is row j - pos0 of
// the new k/v. out = softmax(scale * q.K) V per query head, f32 throughout.
// Layout: q, out [tokens, n_heads, HD]; k, v [tokens, n_kv_heads, HD]; cache_k, cache_v
// [capacity, n_kv_heads, HD]; scratch (split runs only) [tokens * n_heads, splits, HD] partial
// outputs, then [tokens * n_heads, splits, 2] (running max, sum).
//
// Flash attention. A workgroup takes a tile of R rows of one KV head, where the rows of a KV
// head are its (token, query head) pairs in that order, so a decode step's GQA group shares
// every key and value read; and one split of the keys the tile sees. It walks its keys BK at a
// time through one workgroup buffer: the K tile goes in, each (row, key) score is a dot product
// over L lanes reduced in workgroup memory, one thread per row runs the online softmax (running
// max and sum, causal and window masks) while the V tile replaces the K tile, then each row's
// WG / R threads rescale and accumulate their columns of the output in registers.
// With splits = 1 (prefill, or short contexts) the workgroup writes out = acc / sum. Otherwise
// (flash-decoding) it writes its partial (acc, max, sum) to scratch and `attention_combine`
// merges the splits.
// Workgroup memory: (BK * (HD + 1) + WG + R * BK + R) floats; the host picks R and BK under the
// adapter's limit (16 KiB portable: BK = 4 at HD = 512). Masked scores never enter the sums,
// and NEG (not -inf, which WGSL may assume absent) marks "no key yet".
// Versions: v1.

struct Params {
    tokens: u32, n_heads: u32, n_kv_heads: u32, group: u32,
    pos0: u32, capacity: u32, window: u32, scale: f32,
    rows: u32, splits: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> cache_k: array<f32>;
@group(0) @binding(5) var<storage, read> cache_v: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> scratch: array<f32>;

// Threads; head_dim; rows per tile; keys per tile (powers of two with R * BK <= WG).
override WG: u32 = 256u;
override HD: u32 = 256u;
override R: u32 = 16u;
override BK: u32 = 8u;
// Lanes per score dot product, threads per output row, output columns per thread (<= MAXC).
override L: u32 = WG / (R * BK);
override TPR: u32 = WG / R;
override COLS: u32 = (HD + TPR - 1u) / TPR;
// K/V tile rows are KS apart: one padding float keeps the score lanes of different keys off a
// single memory bank when HD is a multiple of the bank count.
override KS: u32 = HD + 1u;
override KV_LEN: u32 = BK * KS;
override PROBS: u32 = R * BK;
const MAXC: u32 = 32u;
const NEG: f32 = -3.0e38;

var<workgroup> kv: array<f32, KV_LEN>;
var<workgroup> red: array<f32, WG>;
var<workgroup> prob: array<f32, PROBS>;
var<workgroup> alpha: array<f32, R>;

// One row of the tile: its output (and q) row, its position and its first visible key.
struct Row { valid: bool, base: u32, pos: u32, first: u32 }

fn first_key(pos: u32) -> u32 {
    if (p.window == 0u || pos < p.window) {
        return 0u;
    }
    return pos + 1u - p.window;
}

fn row_of(tile: u32, kvh: u32, r: u32) -> Row {
    let gr = tile * R + r;
    let t = min(gr, p.rows - 1u) / p.group;
    let head = kvh * p.group + gr % p.group;
    let pos = p.pos0 + t;
    return Row(gr < p.rows, (t * p.n_heads + head) * HD, pos, first_key(pos));
}

// Element d of the key (or value) at position kp of KV head kvh.
fn key_at(kp: u32, kvh: u32, d: u32, values: bool) -> f32 {
    if (kp < p.pos0) {
        let i = ((kp % p.capacity) * p.n_kv_heads + kvh) * HD + d;
        return select(cache_k[i], cache_v[i], values);
    }
    let i = ((kp - p.pos0) * p.n_kv_heads + kvh) * HD + d;
    return select(k[i], v[i], values);
}

// Keys k0..k0+BK (zero past `end`) into the tile buffer.
fn load_tile(k0: u32, end: u32, kvh: u32, li: u32, values: bool) {
    for (var e = li; e < BK * HD; e += WG) {
        let j = e / HD;
        let kp = k0 + j;
        var x = 0.0;
        if (kp < end) {
            x = key_at(kp, kvh, e % HD, values);
        }
        kv[j * KS + e % HD] = x;
    }
}

@compute @workgroup_size(WG)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let tiles = (p.rows + R - 1u) / R;
    if (wg >= tiles * p.n_kv_heads * p.splits) {
        return;
    }
    let split = wg % p.splits;
    let kvh = (wg / p.splits) % p.n_kv_heads;
    let tile = wg / (p.splits * p.n_kv_heads);

    // The keys the tile sees: from the first row's first key to the last row's position; this
    // workgroup's split of them is [k_begin, k_end).
    let lo = first_key(p.pos0 + tile * R / p.group);
    let hi = p.pos0 + (min(tile * R + R, p.rows) - 1u) / p.group + 1u;
    let per_split = (hi - lo + p.splits - 1u) / p.splits;
    let k_begin = min(lo + split * per_split, hi);
    let k_end = min(k_begin + per_split, hi);

    // Roles: a lane of one (row, key) score; the softmax thread of row li; columns of row ro.
    let pair = li / L;
    let lane = li % L;
    let rs = row_of(tile, kvh, pair / BK);
    let js = pair % BK;
    let me = row_of(tile, kvh, min(li, R - 1u));
    let ro = li / TPR;
    let row = row_of(tile, kvh, ro);
    let col0 = li % TPR;

    var m_run = NEG;
    var l_run = 0.0;
    var acc: array<f32, MAXC>;
    for (var c = 0u; c < COLS; c++) {
        acc[c] = 0.0;
    }

    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        load_tile(k0, k_end, kvh, li, false);
        workgroupBarrier();
        var part = 0.0;
        if (rs.valid) {
            for (var d = lane; d < HD; d += L) {
                part += q[rs.base + d] * kv[js * KS + d];
            }
        }
        red[li] = part;
        workgroupBarrier();
        for (var stride = L / 2u; stride > 0u; stride /= 2u) {
            if (lane < stride) {
                red[li] += red[li + stride];
            }
            workgroupBarrier();
        }
        // Every read of the K tile is behind us: the V tile takes its place while the row
        // threads update their softmax.
        load_tile(k0, k_end, kvh, li, true);
        if (li < R) {
            var mx = m_run;
            for (var j = 0u; j < BK; j++) {
                let kp = k0 + j;
                if (me.valid && kp < k_end && kp <= me.pos && kp >= me.first) {
                    mx = max(mx, p.scale * red[(li * BK + j) * L]);
                }
            }
            var sum = 0.0;
            for (var j = 0u; j < BK; j++) {
                let kp = k0 + j;
                var e = 0.0;
                if (me.valid && kp < k_end && kp <= me.pos && kp >= me.first) {
                    e = exp(p.scale * red[(li * BK + j) * L] - mx);
                }
                prob[li * BK + j] = e;
                sum += e;
            }
            let a = select(exp(m_run - mx), 0.0, m_run == NEG);
            alpha[li] = a;
            l_run = l_run * a + sum;
            m_run = mx;
        }
        workgroupBarrier();
        let a = alpha[ro];
        for (var c = 0u; c < COLS; c++) {
            let d = col0 + c * TPR;
            if (d < HD) {
                var s = acc[c] * a;
                for (var j = 0u; j < BK; j++) {
                    s += prob[ro * BK + j] * kv[j * KS + d];
                }
                acc[c] = s;
            }
        }
        workgroupBarrier();
    }

    let single = p.splits == 1u;
    // The row threads publish their sums (alpha is free now: the loop ended on a barrier).
    if (li < R) {
        alpha[li] = l_run;
        if (me.valid && !single) {
            let ml = p.tokens * p.n_heads * p.splits * HD + ((me.base / HD) * p.splits + split) * 2u;
            scratch[ml] = m_run;
            scratch[ml + 1u] = l_run;
        }
    }
    workgroupBarrier();
    if (!row.valid) {
        return;
    }
    if (single) {
        let inv = 1.0 / alpha[ro]; // >= 1 term: the row sees itself
        for (var c = 0u; c < COLS; c++) {
            let d = col0 + c * TPR;
            if (d < HD) {
                out[row.base + d] = acc[c] * inv;
            }
        }
    } else {
        let part = ((row.base / HD) * p.splits + split) * HD;
        for (var c = 0u; c < COLS; c++) {
            let d = col0 + c * TPR;
            if (d < HD) {
                scratch[part + d] = acc[c];
            }
        }
    }
}
