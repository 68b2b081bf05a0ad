// embed: out[t, c] = table[ids[t], col_offset + c] * scale for t < tokens, c < width: the token
// embedding (whole rows) and the per-layer embedding (one layer's columns of each row).
// Layout: w is one chunk of the table (rows row0..row0 + rows, each row_len elements) in its
// storage dtype (weights.wgsl, prepended, decodes it); ids [tokens] u32; out [tokens, width] f32.
// One invocation per output element (2-D grid past 65535 workgroups). A table split into
// several chunks takes one dispatch per chunk, each writing only the tokens whose id falls in
// it. The host cannot check ids that live on the device, so an id >= total_rows reads nothing:
// the last chunk's dispatch writes 0 for it (the engine checks token ids before upload).
// Versions: v1, one element per invocation.

struct Params {
    tokens: u32,
    width: u32,
    col_offset: u32,
    row_len: u32,
    row0: u32,
    rows: u32,
    total_rows: u32,
    last: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn embed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + li;
    if (i >= p.tokens * p.width) {
        return;
    }
    let t = i / p.width;
    let c = i % p.width;
    let id = ids[t];
    if (id >= p.row0 && id - p.row0 < p.rows) {
        out[i] = w_at((id - p.row0) * p.row_len + p.col_offset + c) * p.scale;
    } else if (id >= p.total_rows && p.last != 0u) {
        out[i] = 0.0;
    }
}
