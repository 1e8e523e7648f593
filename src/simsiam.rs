//! The reference's `Vec`-returning API (feature `alloc`): a thin wrapper over
//! [`SimSiamHead`] with owned `Vec<f32>` storage.

use alloc::vec::Vec;

use crate::config::SimSiamConfig;
use crate::error::{SslError, SslResult};
use crate::head::{SimSiamHead, init_params};
use crate::kernels::Backend;
use crate::rng::LcgRng;

/// `len` zeros, or `OutOfMemory` instead of an abort.
fn try_zeros(len: usize) -> SslResult<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| SslError::OutOfMemory { floats: len })?;
    v.resize(len, 0.0);
    Ok(v)
}

/// The SimSiam head with the API of `oxicuda_ssl::ssl::sim_siam::SimSiam` 0.5.5.
///
/// Each call allocates its output (as the reference does); the arithmetic is the
/// no-alloc [`SimSiamHead`]'s.
///
/// # Examples
/// ```
/// use simsiam::{LcgRng, SimSiam, SimSiamConfig};
/// let mut rng = LcgRng::new(42);
/// let model = SimSiam::new(SimSiamConfig::default(), &mut rng)?;
/// let z1: Vec<f32> = (0..64).map(|i| (i as f32 * 0.1).sin()).collect();
/// let z2: Vec<f32> = z1.iter().map(|x| x + 0.01).collect();
/// let projected = model.project(&z1)?;
/// assert_eq!(projected.len(), model.d_out());
/// let loss = model.loss(&z1, &z2)?;
/// assert!((-1.0..=1.0).contains(&loss));
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SimSiam {
    head: SimSiamHead<Vec<f32>>,
}

impl SimSiam {
    /// Kaiming-initialised weights from `rng`, zero biases (as the reference).
    ///
    /// # Errors
    /// `InvalidParameter` for the first zero dimension (or a parameter count that
    /// overflows); `OutOfMemory` when the parameters cannot be allocated.
    pub fn new(config: SimSiamConfig, rng: &mut LcgRng) -> SslResult<Self> {
        let mut params = try_zeros(config.param_count()?)?;
        init_params(&config, rng, &mut params)?;
        Ok(Self {
            head: SimSiamHead::from_params(config, params)?,
        })
    }

    /// Projects an encoder output of length `d_encoder` to a unit vector of length `d_out`.
    ///
    /// # Errors
    /// `DimensionMismatch { expected: d_encoder, got }`; `NonFinite`; `OutOfMemory`.
    pub fn project(&self, z: &[f32]) -> SslResult<Vec<f32>> {
        let mut out = try_zeros(self.head.d_out())?;
        self.head.project_into(z, &mut out)?;
        Ok(out)
    }

    /// Applies the predictor to a projection of length `d_out`.
    ///
    /// # Errors
    /// `DimensionMismatch { expected: d_out, got }`; `NonFinite`; `OutOfMemory`.
    pub fn predict(&self, p: &[f32]) -> SslResult<Vec<f32>> {
        let mut out = try_zeros(self.head.d_out())?;
        self.head.predict_into(p, &mut out)?;
        Ok(out)
    }

    /// The symmetric SimSiam loss of two views, in `[-1, 1]`.
    ///
    /// # Errors
    /// `DimensionMismatch` for `z1` then `z2`; `NonFinite`; `OutOfMemory`.
    pub fn loss(&self, z1: &[f32], z2: &[f32]) -> SslResult<f32> {
        let mut workspace = try_zeros(self.head.config().loss_workspace_len()?)?;
        self.head.loss_with_workspace(z1, z2, &mut workspace)
    }

    /// The projector output dimension.
    #[must_use]
    pub fn d_out(&self) -> usize {
        self.head.d_out()
    }

    /// See [`SimSiamHead::set_identity_predictor`].
    ///
    /// # Errors
    /// `InvalidParameter { name: "d_predictor", .. }` unless `d_predictor == 2·d_out`.
    pub fn set_identity_predictor(&mut self) -> SslResult<()> {
        self.head.set_identity_predictor()
    }

    /// The no-alloc head inside, for the `*_into` calls.
    #[must_use]
    pub fn head(&self) -> &SimSiamHead<Vec<f32>> {
        &self.head
    }

    /// The same model running on the other kernel twin.
    #[must_use]
    pub fn with_backend(self, backend: Backend) -> Self {
        Self {
            head: self.head.with_backend(backend),
        }
    }
}
