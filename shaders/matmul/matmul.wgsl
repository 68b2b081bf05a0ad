// matmul: the matmul for many tokens (prefill): out[t, row0 + j] = sum_c x[t, c] * w[j, c] for
// t < m, j < n, c < k, where w is one chunk of the weight (rows row0..row0 + n of the full
// [ldo, k] matrix) in its storage dtype (weights.wgsl, prepended, decodes it).
// Layout: x [m, k] f32; w [n, k] words; out [m, ldo] f32, this chunk writing columns
// row0..row0 + n.
// Tiled: a workgroup computes a TM x TN tile of out (tiles numbered n-fastest over a 2-D grid).
// Per step of TK = 32 columns it stages x[TM, 32] (coalesced loads) and the decoded w[TN, 32]
// (one w_load32 per weight row: a whole block or K-quant sub-block) in workgroup memory,
// transposed so that neighbouring invocations read neighbouring words; each invocation then
// accumulates RM x RN outputs, rows ty + i * TM / RM and columns tx + j * TN / RN. A float row
// whose k is not a multiple of 32 takes its last step element by element, padded with zeros.
// Versions: v1, 64 x 64 tiles, 4 x 4 outputs per invocation (256 invocations, 16 KiB of
// workgroup memory: under WebGPU's default limit).

struct Params { m: u32, n: u32, k: u32, ldo: u32, row0: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// Outputs per invocation (private accumulators need constant sizes).
const RM: u32 = 4u;
const RN: u32 = 4u;
// Columns per step: one 32-element weight group.
const TK: u32 = 32u;
// Tile: tokens x weight rows (multiples of RM and RN).
override TM: u32 = 64u;
override TN: u32 = 64u;
override WG: u32 = (TM / RM) * (TN / RN);

var<workgroup> xs: array<f32, TM * TK>;
var<workgroup> ws: array<f32, TN * TK>;

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let tiles_n = (p.n + TN - 1u) / TN;
    let tile = wid.x + wid.y * nwg.x;
    if (tile >= tiles_n * ((p.m + TM - 1u) / TM)) {
        return;
    }
    let n0 = (tile % tiles_n) * TN;
    let m0 = (tile / tiles_n) * TM;
    let tx = li % (TN / RN);
    let ty = li / (TN / RN);
    var acc: array<f32, RM * RN>;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var idx = li; idx < TM * TK; idx += WG) {
            let r = idx / TK;
            let c = idx % TK;
            var v = 0.0;
            if (m0 + r < p.m && k0 + c < p.k) {
                v = x[(m0 + r) * p.k + k0 + c];
            }
            xs[c * TM + r] = v;
        }
        for (var r = li; r < TN; r += WG) {
            let row = n0 + r;
            if (row < p.n && k0 + TK <= p.k) {
                let wv = w_load32(row * p.k + k0);
                for (var c = 0u; c < TK; c++) {
                    ws[c * TN + r] = wv[c];
                }
            } else {
                for (var c = 0u; c < TK; c++) {
                    var v = 0.0;
                    if (row < p.n && k0 + c < p.k) {
                        v = w_at(row * p.k + k0 + c);
                    }
                    ws[c * TN + r] = v;
                }
            }
        }
        workgroupBarrier();
        for (var c = 0u; c < TK; c++) {
            var a: array<f32, RM>;
            var b: array<f32, RN>;
            for (var i = 0u; i < RM; i++) {
                a[i] = xs[c * TM + ty + i * (TM / RM)];
            }
            for (var j = 0u; j < RN; j++) {
                b[j] = ws[c * TN + tx + j * (TN / RN)];
            }
            for (var i = 0u; i < RM; i++) {
                for (var j = 0u; j < RN; j++) {
                    acc[i * RN + j] += a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < RM; i++) {
        let r = m0 + ty + i * (TM / RM);
        for (var j = 0u; j < RN; j++) {
            let col = n0 + tx + j * (TN / RN);
            if (r < p.m && col < p.n) {
                out[r * p.ldo + p.row0 + col] = acc[i * RN + j];
            }
        }
    }
}
