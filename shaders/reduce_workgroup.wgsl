// reduce_workgroup: the portable workgroup sum, prepended to the shaders that reduce across a
// workgroup (matvec) when the device has no subgroup operations. reduce_subgroup.wgsl defines
// the same names; the includer takes `lanes: Lanes` as an entry-point parameter and uses
// @workgroup_size(WG).
// reduce_sum(v, lanes) returns the sum of v over the workgroup to every invocation; call it in
// uniform control flow. WG must be a power of two.
// Versions: v1, a tree in workgroup memory (log2(WG) barriers).

override WG: u32 = 64u;
var<workgroup> red_partial: array<f32, WG>;

struct Lanes {
    @builtin(local_invocation_index) li: u32,
}

fn reduce_sum(v: f32, lanes: Lanes) -> f32 {
    red_partial[lanes.li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lanes.li < s) {
            red_partial[lanes.li] += red_partial[lanes.li + s];
        }
        workgroupBarrier();
    }
    let total = red_partial[0];
    // The next call overwrites red_partial: every invocation must have read the total first.
    workgroupBarrier();
    return total;
}
