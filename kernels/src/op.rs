//! The ops as data: [`Op`] names each [`Backend`](crate::Backend) method (what `ops-test --list`,
//! `--op` and `--host-fallback` use) and [`OpSet`] is a set of them.

use crate::error::{KernelError, Result};

/// One op of [`Backend`](crate::Backend), in the trait's order; [`Op::name`] is the method's
/// name, what `ops-test --list`, `--op` and `--host-fallback` use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`Backend::embed`](crate::Backend::embed).
    Embed,
    /// [`Backend::matmul`](crate::Backend::matmul).
    Matmul,
    /// [`Backend::rms_norm`](crate::Backend::rms_norm).
    RmsNorm,
    /// [`Backend::add_rms_norm`](crate::Backend::add_rms_norm).
    AddRmsNorm,
    /// [`Backend::layer_norm`](crate::Backend::layer_norm).
    LayerNorm,
    /// [`Backend::rope`](crate::Backend::rope).
    Rope,
    /// [`Backend::kv_write`](crate::Backend::kv_write).
    KvWrite,
    /// [`Backend::attention`](crate::Backend::attention).
    Attention,
    /// [`Backend::geglu`](crate::Backend::geglu).
    Geglu,
    /// [`Backend::softcap`](crate::Backend::softcap).
    Softcap,
    /// [`Backend::scale`](crate::Backend::scale).
    Scale,
    /// [`Backend::add`](crate::Backend::add).
    Add,
    /// [`Backend::copy`](crate::Backend::copy).
    Copy,
    /// [`Backend::moe_route`](crate::Backend::moe_route).
    MoeRoute,
    /// [`Backend::moe_experts`](crate::Backend::moe_experts).
    MoeExperts,
    /// [`Backend::argmax`](crate::Backend::argmax).
    Argmax,
}

impl Op {
    /// Every op, in [`Backend`](crate::Backend) order.
    pub const ALL: [Op; 16] = [
        Op::Embed,
        Op::Matmul,
        Op::RmsNorm,
        Op::AddRmsNorm,
        Op::LayerNorm,
        Op::Rope,
        Op::KvWrite,
        Op::Attention,
        Op::Geglu,
        Op::Softcap,
        Op::Scale,
        Op::Add,
        Op::Copy,
        Op::MoeRoute,
        Op::MoeExperts,
        Op::Argmax,
    ];

    /// The ops of the Gemma text decoder: what a GPU backend implements natively (the
    /// others, such as the towers' `layer_norm`, run through the host fallback there).
    pub const TEXT_DECODER: [Op; 15] = [
        Op::Embed,
        Op::Matmul,
        Op::RmsNorm,
        Op::AddRmsNorm,
        Op::Rope,
        Op::KvWrite,
        Op::Attention,
        Op::Geglu,
        Op::Softcap,
        Op::Scale,
        Op::Add,
        Op::Copy,
        Op::MoeRoute,
        Op::MoeExperts,
        Op::Argmax,
    ];

    /// The [`Backend`](crate::Backend) method's name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Embed => "embed",
            Op::Matmul => "matmul",
            Op::RmsNorm => "rms_norm",
            Op::AddRmsNorm => "add_rms_norm",
            Op::LayerNorm => "layer_norm",
            Op::Rope => "rope",
            Op::KvWrite => "kv_write",
            Op::Attention => "attention",
            Op::Geglu => "geglu",
            Op::Softcap => "softcap",
            Op::Scale => "scale",
            Op::Add => "add",
            Op::Copy => "copy",
            Op::MoeRoute => "moe_route",
            Op::MoeExperts => "moe_experts",
            Op::Argmax => "argmax",
        }
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Op {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Op> {
        Op::ALL.into_iter().find(|op| op.name() == s).ok_or_else(|| KernelError::Invalid {
            what: format!("unknown op {s:?} (one of {})", Op::ALL.map(Op::name).join(", ")),
        })
    }
}

/// A set of ops: those forced through the host fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OpSet(u32);

impl OpSet {
    /// No op.
    pub const NONE: OpSet = OpSet(0);

    /// Every op.
    pub fn all() -> OpSet {
        OpSet(Op::ALL.iter().fold(0, |bits, op| bits | op.bit()))
    }

    /// Whether `op` is in the set.
    pub fn contains(self, op: Op) -> bool {
        self.0 & op.bit() != 0
    }

    /// The set with `op` added.
    pub fn with(self, op: Op) -> OpSet {
        OpSet(self.0 | op.bit())
    }
}

impl std::str::FromStr for OpSet {
    type Err = KernelError;
    /// `all`, or op names separated by commas (`matmul,attention`).
    fn from_str(s: &str) -> Result<OpSet> {
        if s == "all" {
            return Ok(OpSet::all());
        }
        s.split(',').map(str::trim).try_fold(OpSet::NONE, |set, name| Ok(set.with(name.parse()?)))
    }
}
