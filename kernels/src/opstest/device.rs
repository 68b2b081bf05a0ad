//! [`Device`]: a backend as the ops-test's cases see it, with type-erased buffers. A case is a
//! trait object ([`super::OpCase`]) and a backend a type with associated buffer types, so one of
//! the two must be erased for a case to run on any backend; every [`Backend`] is a `Device`
//! (blanket impl), its buffers boxed as [`AnyBuf`] and unboxed again for each op call (a type
//! check per buffer, nanoseconds next to an op). The op methods come from the op table
//! (`crate::op::for_each_op!`): same names and arguments as on [`Backend`].

use crate::args::*;
use crate::backend::Backend;
use crate::error::{KernelError, Result};
use crate::tensor::HostTensor;
use std::any::Any;

/// A buffer, id buffer or weight of some backend.
pub type AnyBuf = Box<dyn Any + Send + Sync>;

/// The type of a buffer of kind `$kind` (see `crate::op::for_each_op!`) on a [`Device`].
macro_rules! erased_type {
    (Buf) => { &AnyBuf };
    (BufMut) => { &mut AnyBuf };
    (Ids) => { &AnyBuf };
    (IdsMut) => { &mut AnyBuf };
    (Weight) => { &AnyBuf };
    (OptWeight) => { Option<&AnyBuf> };
}

/// The [`Device`] op methods.
macro_rules! device_ops {
    ($($(#[$doc:meta])* $op:ident $name:ident($args:ident; $($p:ident: $kind:ident),*) = $reference:path;)*) => {
        $(
            $(#[$doc])*
            #[allow(clippy::too_many_arguments)]
            fn $name(&self, a: &$args, $($p: erased_type!($kind)),*) -> Result<()>;
        )*
    };
}

/// The backend's buffer of kind `$kind` in an [`AnyBuf`] (see `erased_type!`).
macro_rules! unbox {
    ($B:ident, Buf, $p:ident) => {
        unbox::<$B::Buf>($p)?
    };
    ($B:ident, BufMut, $p:ident) => {
        unbox_mut::<$B::Buf>($p)?
    };
    ($B:ident, Ids, $p:ident) => {
        unbox::<$B::Ids>($p)?
    };
    ($B:ident, IdsMut, $p:ident) => {
        unbox_mut::<$B::Ids>($p)?
    };
    ($B:ident, Weight, $p:ident) => {
        unbox::<$B::Weight>($p)?
    };
    ($B:ident, OptWeight, $p:ident) => {
        $p.map(unbox::<$B::Weight>).transpose()?
    };
}

/// The [`Device`] op methods of a [`Backend`]: its own, on the unboxed buffers.
macro_rules! backend_ops {
    ($($(#[$doc:meta])* $op:ident $name:ident($args:ident; $($p:ident: $kind:ident),*) = $reference:path;)*) => {
        $(
            fn $name(&self, a: &$args, $($p: erased_type!($kind)),*) -> Result<()> {
                Backend::$name(self, a, $(unbox!(B, $kind, $p)),*)
            }
        )*
    };
}

/// A backend with type-erased buffers (the module docs of `opstest/device.rs` say why); every
/// [`Backend`] is one.
pub trait Device {
    /// [`Backend::alloc`].
    fn alloc(&self, len: usize) -> Result<AnyBuf>;
    /// [`Backend::alloc_ids`].
    fn alloc_ids(&self, len: usize) -> Result<AnyBuf>;
    /// [`Backend::buf_len`].
    fn buf_len(&self, buf: &AnyBuf) -> Result<usize>;
    /// [`Backend::upload`].
    fn upload(&self, src: &[f32], dst: &mut AnyBuf) -> Result<()>;
    /// [`Backend::upload_ids`].
    fn upload_ids(&self, src: &[u32], dst: &mut AnyBuf) -> Result<()>;
    /// [`Backend::download`].
    fn download(&self, src: &AnyBuf, offset: usize, dst: &mut [f32]) -> Result<()>;
    /// [`Backend::download_ids`].
    fn download_ids(&self, src: &AnyBuf, dst: &mut [u32]) -> Result<()>;
    /// [`Backend::weight`].
    fn weight(&self, t: &HostTensor) -> Result<AnyBuf>;

    crate::op::for_each_op!(device_ops);
}

/// `buf` as the backend's `T`; an error (not a panic) for a buffer of another backend or kind.
fn unbox<T: 'static>(buf: &AnyBuf) -> Result<&T> {
    (**buf).downcast_ref().ok_or_else(wrong_type::<T>)
}

/// [`unbox`], writable.
fn unbox_mut<T: 'static>(buf: &mut AnyBuf) -> Result<&mut T> {
    (**buf).downcast_mut().ok_or_else(wrong_type::<T>)
}

fn wrong_type<T>() -> KernelError {
    KernelError::Invalid { what: format!("ops-test: a buffer that is not a {}", std::any::type_name::<T>()) }
}

impl<B: Backend> Device for B {
    fn alloc(&self, len: usize) -> Result<AnyBuf> {
        Ok(Box::new(Backend::alloc(self, len)?))
    }

    fn alloc_ids(&self, len: usize) -> Result<AnyBuf> {
        Ok(Box::new(Backend::alloc_ids(self, len)?))
    }

    fn buf_len(&self, buf: &AnyBuf) -> Result<usize> {
        Ok(Backend::buf_len(self, unbox::<B::Buf>(buf)?))
    }

    fn upload(&self, src: &[f32], dst: &mut AnyBuf) -> Result<()> {
        Backend::upload(self, src, unbox_mut::<B::Buf>(dst)?)
    }

    fn upload_ids(&self, src: &[u32], dst: &mut AnyBuf) -> Result<()> {
        Backend::upload_ids(self, src, unbox_mut::<B::Ids>(dst)?)
    }

    fn download(&self, src: &AnyBuf, offset: usize, dst: &mut [f32]) -> Result<()> {
        Backend::download(self, unbox::<B::Buf>(src)?, offset, dst)
    }

    fn download_ids(&self, src: &AnyBuf, dst: &mut [u32]) -> Result<()> {
        Backend::download_ids(self, unbox::<B::Ids>(src)?, dst)
    }

    fn weight(&self, t: &HostTensor) -> Result<AnyBuf> {
        Ok(Box::new(Backend::weight(self, t)?))
    }

    crate::op::for_each_op!(backend_ops);
}
