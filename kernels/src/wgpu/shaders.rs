//! The WGSL sources in `shaders/` (named by op family, see shaders/README.md), compiled into the binary. Shaders that read
//! weights are prefixed with `shaders/weights.wgsl`, the per-dtype decoding they share. Shaders
//! that sum across a workgroup are prefixed (first: the place an `enable subgroups;` would need,
//! which naga 30 does not implement yet) with one of two files defining the same `Lanes` struct
//! and `reduce_sum`: `reduce_subgroup.wgsl` (`subgroupAdd`, when the device has subgroups) or
//! `reduce_workgroup.wgsl` (a tree in workgroup memory).

/// A `.wgsl` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    /// `scale`: `x *= factor`.
    Scale,
    /// `add`: `acc = (acc + x) * scale`.
    Add,
    /// `softcap`: `x = cap * tanh(x / cap)`.
    Softcap,
    /// `geglu`: `out = gelu_tanh(gate) * up`.
    Geglu,
    /// `rms_norm`, `add_rms_norm`.
    RmsNorm,
    /// `rope` (default and proportional).
    Rope,
    /// `kv_write`.
    KvWrite,
    /// `attention`: flash attention tiles, optionally split over the keys.
    Attention,
    /// `attention_combine`: merges the splits of a split `attention`.
    AttentionCombine,
    /// `embed`: token and PLE row gather.
    Embed,
    /// `matmul` for up to 8 tokens (decode): several weight rows per workgroup.
    Matvec,
    /// `matmul` for many tokens: tiles in workgroup memory.
    Matmul,
    /// `moe_route`: softmax and top-k.
    MoeRoute,
    /// `moe_experts`: the selected experts' FFNs (gate/up with GeGLU, then down and the weighted sum).
    MoeExperts,
    /// `argmax`: greedy choice and its log-probability per row of logits.
    Argmax,
}

const WEIGHTS: &str = include_str!("../../../shaders/weights.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("../../../shaders/reduce_subgroup.wgsl");
const REDUCE_WORKGROUP: &str = include_str!("../../../shaders/reduce_workgroup.wgsl");

impl Shader {
    /// Every shader (`garnet doctor` compiles them all).
    pub const ALL: [Shader; 15] = [
        Shader::Scale,
        Shader::Add,
        Shader::Softcap,
        Shader::Geglu,
        Shader::RmsNorm,
        Shader::Rope,
        Shader::KvWrite,
        Shader::Attention,
        Shader::AttentionCombine,
        Shader::Embed,
        Shader::Matvec,
        Shader::Matmul,
        Shader::MoeRoute,
        Shader::MoeExperts,
        Shader::Argmax,
    ];

    /// The file name under `shaders/`.
    pub fn file(self) -> &'static str {
        match self {
            Shader::Scale => "elementwise/scale.wgsl",
            Shader::Add => "elementwise/add.wgsl",
            Shader::Softcap => "elementwise/softcap.wgsl",
            Shader::Geglu => "elementwise/geglu.wgsl",
            Shader::RmsNorm => "norm.wgsl",
            Shader::Rope => "rope.wgsl",
            Shader::KvWrite => "attention/kv_write.wgsl",
            Shader::Attention => "attention/attention.wgsl",
            Shader::AttentionCombine => "attention/attention_combine.wgsl",
            Shader::Embed => "embed.wgsl",
            Shader::Matvec => "matmul/matvec.wgsl",
            Shader::Matmul => "matmul/matmul.wgsl",
            Shader::MoeRoute => "moe/moe_route.wgsl",
            Shader::MoeExperts => "moe/moe_experts.wgsl",
            Shader::Argmax => "sample.wgsl",
        }
    }

    /// The source as compiled, with the subgroup or the workgroup reduction where one is used.
    pub fn source(self, subgroups: bool) -> String {
        let own = match self {
            Shader::Scale => include_str!("../../../shaders/elementwise/scale.wgsl"),
            Shader::Add => include_str!("../../../shaders/elementwise/add.wgsl"),
            Shader::Softcap => include_str!("../../../shaders/elementwise/softcap.wgsl"),
            Shader::Geglu => include_str!("../../../shaders/elementwise/geglu.wgsl"),
            Shader::RmsNorm => include_str!("../../../shaders/norm.wgsl"),
            Shader::Rope => include_str!("../../../shaders/rope.wgsl"),
            Shader::KvWrite => include_str!("../../../shaders/attention/kv_write.wgsl"),
            Shader::Attention => include_str!("../../../shaders/attention/attention.wgsl"),
            Shader::AttentionCombine => include_str!("../../../shaders/attention/attention_combine.wgsl"),
            Shader::Embed => include_str!("../../../shaders/embed.wgsl"),
            Shader::Matvec => include_str!("../../../shaders/matmul/matvec.wgsl"),
            Shader::Matmul => include_str!("../../../shaders/matmul/matmul.wgsl"),
            Shader::MoeRoute => include_str!("../../../shaders/moe/moe_route.wgsl"),
            Shader::MoeExperts => include_str!("../../../shaders/moe/moe_experts.wgsl"),
            Shader::Argmax => include_str!("../../../shaders/sample.wgsl"),
        };
        let reduce = match (self.reduces(), subgroups) {
            (false, _) => "",
            (true, true) => REDUCE_SUBGROUP,
            (true, false) => REDUCE_WORKGROUP,
        };
        let weights = if self.reads_weights() { WEIGHTS } else { "" };
        format!("{reduce}\n{weights}\n{own}")
    }

    /// Shaders that include a `reduce_sum` (and so take the subgroup or the workgroup variant).
    fn reduces(self) -> bool {
        matches!(self, Shader::Matvec | Shader::MoeExperts)
    }

    /// Shaders that decode weight blocks (and so include `weights.wgsl`).
    pub fn reads_weights(self) -> bool {
        matches!(self, Shader::Embed | Shader::Matvec | Shader::Matmul | Shader::MoeExperts)
    }

    /// The entry points of this shader (the doctor builds each).
    pub fn entries(self) -> &'static [&'static str] {
        match self {
            Shader::Scale => &["scale"],
            Shader::Add => &["add"],
            Shader::Softcap => &["softcap"],
            Shader::Geglu => &["geglu"],
            Shader::RmsNorm => &["rms_norm", "add_rms_norm"],
            Shader::Rope => &["rope"],
            Shader::KvWrite => &["kv_write"],
            Shader::Attention => &["attention"],
            Shader::AttentionCombine => &["attention_combine"],
            Shader::Embed => &["embed"],
            Shader::Matvec => &["matvec"],
            Shader::Matmul => &["matmul"],
            Shader::MoeRoute => &["moe_route"],
            Shader::MoeExperts => &["moe_experts_gate_up", "moe_experts_down"],
            Shader::Argmax => &["argmax"],
        }
    }
}
