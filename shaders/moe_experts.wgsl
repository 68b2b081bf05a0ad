// moe_experts: not written yet
