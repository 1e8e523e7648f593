//! The reference's `Vec`-returning API (feature `alloc`): a thin wrapper over
//! [`SimSiamHead`] with owned `Vec<f32>` storage.

use alloc::vec::Vec;

use crate::config::SimSiamConfig;
use crate::error::{BATCH_OVERFLOW, SslError, SslResult};
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

/// `(len / width)·out_width` floats for a batch output, with `DimensionMismatch` when
/// `len` is not a multiple of `width` (`width > 0`: the config is validated).
fn batch_len(len: usize, width: usize, out_width: usize) -> SslResult<usize> {
    let n = len.checked_div(width).unwrap_or(0);
    let whole = n.saturating_mul(width);
    if whole != len {
        return Err(SslError::DimensionMismatch {
            expected: whole,
            got: len,
        });
    }
    n.checked_mul(out_width).ok_or(BATCH_OVERFLOW)
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

    /// Projects `n` encoder outputs (`zs` is `n × d_encoder` row-major) into `n × d_out`;
    /// see [`SimSiamHead::project_batch_into`].
    ///
    /// # Errors
    /// `DimensionMismatch` when `zs.len()` is not a multiple of `d_encoder`; `NonFinite`;
    /// `OutOfMemory`.
    pub fn project_batch(&self, zs: &[f32]) -> SslResult<Vec<f32>> {
        let config = self.head.config();
        let mut out = try_zeros(batch_len(zs.len(), config.d_encoder, config.d_out)?)?;
        self.head.project_batch_into(zs, &mut out)?;
        Ok(out)
    }

    /// Applies the predictor to `n` projections (`ps` is `n × d_out` row-major); see
    /// [`SimSiamHead::predict_batch_into`].
    ///
    /// # Errors
    /// `DimensionMismatch` when `ps.len()` is not a multiple of `d_out`; `NonFinite`;
    /// `OutOfMemory`.
    pub fn predict_batch(&self, ps: &[f32]) -> SslResult<Vec<f32>> {
        let d_out = self.head.d_out();
        let mut out = try_zeros(batch_len(ps.len(), d_out, d_out)?)?;
        self.head.predict_batch_into(ps, &mut out)?;
        Ok(out)
    }

    /// The losses of `n` pairs of views (`z1s`, `z2s` both `n × d_encoder` row-major);
    /// see [`SimSiamHead::loss_batch_with_workspace`].
    ///
    /// # Errors
    /// `DimensionMismatch` when `z1s.len()` is not a multiple of `d_encoder` or `z2s`
    /// has another length; `NonFinite`; `OutOfMemory`.
    pub fn loss_batch(&self, z1s: &[f32], z2s: &[f32]) -> SslResult<Vec<f32>> {
        let config = self.head.config();
        let n = batch_len(z1s.len(), config.d_encoder, 1)?;
        let mut losses = try_zeros(n)?;
        let mut workspace = try_zeros(config.batch_loss_workspace_len(n)?)?;
        self.head
            .loss_batch_with_workspace(z1s, z2s, &mut losses, &mut workspace)?;
        Ok(losses)
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
