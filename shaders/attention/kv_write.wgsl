// kv_write: the keys and values of positions pos0..pos0+tokens into their cache slots
// pos % capacity (see `reference/attention.rs`). Only the last min(tokens, capacity) tokens are copied
// (earlier ones would be overwritten within the call), so every slot is written at most once and
// the threads need no ordering.
// Layout: k, v [tokens, kv_dim] f32; cache_k, cache_v [capacity, kv_dim] f32. The host passes the
// first copied token t0 and its slot slot0 = (pos0 + t0) % capacity; row r goes to slot
// slot0 + r, wrapping once past the end of the ring.
// One thread per copied element of k (and the same element of v).
// Versions: v1.

struct Params { rows: u32, kv_dim: u32, t0: u32, slot0: u32, capacity: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> cache_k: array<f32>;
@group(0) @binding(4) var<storage, read_write> cache_v: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn kv_write(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let id = (wid.x + wid.y * nwg.x) * WG + li;
    if (id >= p.rows * p.kv_dim) {
        return;
    }
    let r = id / p.kv_dim;
    let c = id % p.kv_dim;
    // slot0 + r without overflowing: rows <= capacity, so it wraps at most once.
    let room = p.capacity - p.slot0;
    let slot = select(r - room, p.slot0 + r, r < room);
    let src = (p.t0 + r) * p.kv_dim + c;
    let dst = slot * p.kv_dim + c;
    cache_k[dst] = k[src];
    cache_v[dst] = v[src];
}
