// geglu: out[i] = gelu_tanh(gate[i]) * up[i] for i < len = rows * width (the MLP and PLE gates).
// gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))), tanh of a clamped argument
// (see softcap.wgsl).
// Layout: gate, up, out f32 [rows, width]. One thread per element, 2-D grid past 65535 workgroups.
// Versions: v1, one element per thread.

struct Params { len: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn geglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + li;
    if (i < p.len) {
        let g = gate[i];
        let inner = 0.7978845608028654 * (g + 0.044715 * g * g * g);
        out[i] = 0.5 * g * (1.0 + tanh(clamp(inner, -10.0, 10.0))) * up[i];
    }
}
