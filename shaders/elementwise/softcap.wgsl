// softcap: x[i] = cap * tanh(x[i] / cap) for i < len (the final logit softcap).
// Layout: x f32 [len], in place. One thread per element, 2-D grid past 65535 workgroups.
// tanh is taken of a clamped argument: some drivers build tanh from exp and return NaN for
// large inputs, and tanh(+-10) is already +-1 in f32. NaN stays NaN.
// Versions: v1, one element per thread.

struct Params { len: u32, cap: f32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn softcap(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + li;
    if (i < p.len) {
        let v = x[i] / p.cap;
        // A NaN passes through (clamp would make it finite): the engine must see broken logits.
        // Tested on the bits: a compiler may assume v == v.
        if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
            x[i] = v;
        } else {
            x[i] = p.cap * tanh(clamp(v, -10.0, 10.0));
        }
    }
}
