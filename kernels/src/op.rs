//! The ops as data: [`Op`] names each [`Backend`](crate::Backend) method (what `ops-test --list`,
//! `--op` and `--host-fallback` use) and [`OpSet`] is a set of them.
//!
//! `for_each_op!` is the one declaration of every op: the [`Op`] enum, the `Backend` trait's op
//! methods with their host-fallback defaults, the fallback functions themselves, the
//! [`HostFallback`](crate::HostFallback) routing, the `cpu-ref` backend's ops and the ops-test's
//! type-erased backend are all generated from it, so a new op is one entry there (docs/BRINGUP.md,
//! "Adding an op").

use crate::error::{KernelError, Result};

/// Calls `$callback!` with the table of every op, in [`Backend`](crate::Backend) order. An entry:
///
/// ```text
/// /// The method's doc comment.
/// Variant method(ArgsType; buffer: Kind, ...) = reference::function;
/// ```
///
/// `Variant` is the [`Op`], `method` the `Backend` method (and the op's name), `ArgsType` its
/// [`crate::args`] struct (passed as `a: &ArgsType`), then its buffers in order, each of a kind:
/// `Buf` (`&Self::Buf`, read), `BufMut` (`&mut Self::Buf`, written), `Ids` (`&Self::Ids`),
/// `IdsMut` (`&mut Self::Ids`), `Weight` (`&Self::Weight`), `OptWeight`
/// (`Option<&Self::Weight>`). The reference function takes the same arguments on the host (slices,
/// [`HostTensor`](crate::HostTensor)s); it is what `cpu-ref` and the host fallback run.
macro_rules! for_each_op {
    ($callback:ident) => {
        $callback! {
            /// Embedding gather from a resident table (see [`EmbedArgs`]).
            Embed embed(EmbedArgs; table: Weight, ids: Ids, out: BufMut) = crate::reference::embed::embed;
            /// `out = x W^T` (see [`MatmulArgs`]).
            Matmul matmul(MatmulArgs; x: Buf, w: Weight, out: BufMut) = crate::reference::matmul::matmul;
            /// `out = RMSNorm(x) * w` per row (see [`RmsNormArgs`]).
            RmsNorm rms_norm(RmsNormArgs; x: Buf, w: OptWeight, out: BufMut) = crate::reference::norm::rms_norm;
            /// `residual += RMSNorm(x) * w` per row: a sublayer's post-norm fused with the residual add.
            AddRmsNorm add_rms_norm(RmsNormArgs; x: Buf, w: Weight, residual: BufMut) =
                crate::reference::norm::add_rms_norm;
            /// `out = LayerNorm(x) * w + bias` per row (see [`LayerNormArgs`]).
            LayerNorm layer_norm(LayerNormArgs; x: Buf, w: Weight, bias: Weight, out: BufMut) =
                crate::reference::norm::layer_norm;
            /// Rotary embedding in place (see [`RopeArgs`]).
            Rope rope(RopeArgs; x: BufMut) = crate::reference::rope::rope;
            /// Appends keys and values to a layer's cache (see [`KvWriteArgs`]).
            KvWrite kv_write(KvWriteArgs; k: Buf, v: Buf, cache_k: BufMut, cache_v: BufMut) =
                crate::reference::attention::kv_write;
            /// Causal (optionally sliding-window) GQA attention (see [`AttentionArgs`]).
            Attention attention(
                AttentionArgs; q: Buf, k: Buf, v: Buf, cache_k: Buf, cache_v: Buf, out: BufMut
            ) = crate::reference::attention::attention;
            /// `out = gelu_tanh(gate) * up` (see [`GegluArgs`]).
            Geglu geglu(GegluArgs; gate: Buf, up: Buf, out: BufMut) = crate::reference::elementwise::geglu;
            /// `x = cap * tanh(x / cap)` in place.
            Softcap softcap(SoftcapArgs; x: BufMut) = crate::reference::elementwise::softcap;
            /// `x *= factor` in place.
            Scale scale(ScaleArgs; x: BufMut) = crate::reference::elementwise::scale;
            /// `acc = (acc + x) * scale` in place.
            Add add(AddArgs; x: Buf, acc: BufMut) = crate::reference::elementwise::add;
            /// Copies a range of one buffer into another (see [`CopyArgs`]).
            Copy copy(CopyArgs; src: Buf, dst: BufMut) = crate::host::copy;
            /// MoE top-k routing from router scores (see [`RouteArgs`]).
            MoeRoute moe_route(RouteArgs; scores: Buf, per_expert_scale: Weight, ids: IdsMut, weights: BufMut) =
                crate::reference::moe::moe_route;
            /// Weighted sum of the selected experts' FFNs (see [`MoeArgs`]).
            MoeExperts moe_experts(
                MoeArgs; x: Buf, gate_up: Weight, down: Weight, ids: Ids, weights: Buf, out: BufMut
            ) = crate::reference::moe::moe_experts;
            /// Greedy choice per row of logits (see [`ArgmaxArgs`]): a decode step then reads back an
            /// id and its log-probability (8 bytes) instead of the vocabulary's logits.
            Argmax argmax(ArgmaxArgs; x: Buf, out: BufMut) = crate::reference::sample::argmax;
        }
    };
}
pub(crate) use for_each_op;

/// The type of a buffer of kind `$kind` (see [`for_each_op!`]) on backend `$B` (`Self` in the
/// trait and its impls).
macro_rules! buffer_type {
    ($B:ident, Buf) => { &$B::Buf };
    ($B:ident, BufMut) => { &mut $B::Buf };
    ($B:ident, Ids) => { &$B::Ids };
    ($B:ident, IdsMut) => { &mut $B::Ids };
    ($B:ident, Weight) => { &$B::Weight };
    ($B:ident, OptWeight) => { Option<&$B::Weight> };
}
pub(crate) use buffer_type;

/// The [`Op`] enum from the table.
macro_rules! op_enum {
    ($($(#[$doc:meta])* $op:ident $name:ident($args:ident; $($p:ident: $kind:ident),*) = $reference:path;)*) => {
        /// One op of [`Backend`](crate::Backend), in the trait's order; [`Op::name`] is the
        /// method's name, what `ops-test --list`, `--op` and `--host-fallback` use.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $(
                #[doc = concat!("[`Backend::", stringify!($name), "`](crate::Backend::", stringify!($name), ").")]
                $op,
            )*
        }

        impl Op {
            /// Every op, in [`Backend`](crate::Backend) order.
            pub const ALL: [Op; [$(Op::$op),*].len()] = [$(Op::$op),*];

            /// The [`Backend`](crate::Backend) method's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$op => stringify!($name),)*
                }
            }
        }
    };
}

for_each_op!(op_enum);

impl Op {
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
