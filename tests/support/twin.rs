//! A head on the kernel twin chosen at run time, for tests that loop over
//! [`Backend`]s: the library picks the twin as a type parameter
//! (`SimSiamHead::with_kernels::<K>()`); this enum forwards each call to the one chosen.

#![allow(dead_code)]

use simsiam::kernels::{Scalar, Simd};
use simsiam::{Backend, SimSiamHead, SslResult};

/// A borrowed head on either twin.
#[derive(Debug, Clone)]
pub enum Twin<'a> {
    /// On [`Simd`].
    Simd(SimSiamHead<&'a [f32], Simd>),
    /// On [`Scalar`].
    Scalar(SimSiamHead<&'a [f32], Scalar>),
}

/// `head` viewed on the twin `backend`.
pub fn twin<'a, S: AsRef<[f32]>, K: simsiam::kernels::Kernels>(
    head: &'a SimSiamHead<S, K>,
    backend: Backend,
) -> Twin<'a> {
    match backend {
        Backend::Simd => Twin::Simd(head.view().with_kernels::<Simd>()),
        Backend::Scalar => Twin::Scalar(head.view().with_kernels::<Scalar>()),
    }
}

macro_rules! forward {
    ($self:ident, |$h:ident| $call:expr) => {
        match $self {
            Twin::Simd($h) => $call,
            Twin::Scalar($h) => $call,
        }
    };
}

impl Twin<'_> {
    pub fn project_into(&self, z: &[f32], out: &mut [f32], ws: &mut [f32]) -> SslResult<()> {
        forward!(self, |h| h.project_into(z, out, ws))
    }
    pub fn predict_into(&self, p: &[f32], out: &mut [f32], ws: &mut [f32]) -> SslResult<()> {
        forward!(self, |h| h.predict_into(p, out, ws))
    }
    pub fn loss(&self, z1: &[f32], z2: &[f32], ws: &mut [f32]) -> SslResult<f32> {
        forward!(self, |h| h.loss(z1, z2, ws))
    }
    pub fn project_batch_into(&self, zs: &[f32], out: &mut [f32], ws: &mut [f32]) -> SslResult<()> {
        forward!(self, |h| h.project_batch_into(zs, out, ws))
    }
    pub fn predict_batch_into(&self, ps: &[f32], out: &mut [f32], ws: &mut [f32]) -> SslResult<()> {
        forward!(self, |h| h.predict_batch_into(ps, out, ws))
    }
    pub fn loss_batch_into(
        &self,
        z1s: &[f32],
        z2s: &[f32],
        losses: &mut [f32],
        ws: &mut [f32],
    ) -> SslResult<()> {
        forward!(self, |h| h.loss_batch_into(z1s, z2s, losses, ws))
    }
    pub fn d_out(&self) -> usize {
        forward!(self, |h| h.d_out())
    }
    pub fn d_encoder(&self) -> usize {
        forward!(self, |h| h.d_encoder())
    }
}
