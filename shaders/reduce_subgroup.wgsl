// reduce_subgroup: the workgroup sum through subgroup operations, prepended to the shaders that
// reduce across a workgroup (matvec) when the device has wgpu::Features::SUBGROUP. No
// `enable subgroups;`: naga 30 rejects it as unimplemented and accepts the subgroup builtins
// and functions when the device has the feature (add it first in the module once naga does).
// reduce_workgroup.wgsl defines the same names; the includer takes `lanes: Lanes` as an
// entry-point parameter and uses @workgroup_size(WG).
// reduce_sum(v, lanes) returns the sum of v over the workgroup to every invocation; call it in
// uniform control flow. Any subgroup size works (the per-subgroup sums are added in subgroup id
// order, so the result does not depend on scheduling).
// Versions: v1, subgroupAdd, one slot per subgroup in workgroup memory, then a serial sum of
// the slots (there are WG / subgroup_size of them: 1 to 8 on real devices).

override WG: u32 = 64u;
var<workgroup> red_partial: array<f32, WG>;

struct Lanes {
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
}

fn reduce_sum(v: f32, lanes: Lanes) -> f32 {
    let s = subgroupAdd(v);
    if (lanes.lane == 0u) {
        red_partial[lanes.sg] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < lanes.nsg; i++) {
        total += red_partial[i];
    }
    // The next call overwrites red_partial: every invocation must have read the slots first.
    workgroupBarrier();
    return total;
}
