// scale: x[i] *= factor for i < len (layer_scalar, the router's H^-0.5).
// Layout: x f32 [len], in place. One thread per element; past 65535 workgroups the grid is 2-D
// (linear workgroup index wid.x + wid.y * nwg.x, see Gpu::grid).
// Versions: v1, one element per thread.

struct Params { len: u32, factor: f32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + li;
    if (i < p.len) {
        x[i] = x[i] * p.factor;
    }
}
