// add: acc[i] = (acc[i] + x[i]) * scale for i < len (MoE branch sum, PLE combine).
// Layout: x, acc f32 [len]. One thread per element, 2-D grid past 65535 workgroups.
// Versions: v1, one element per thread.

struct Params { len: u32, scale: f32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + li;
    if (i < p.len) {
        acc[i] = (acc[i] + x[i]) * p.scale;
    }
}
