// moe_route: not written yet
