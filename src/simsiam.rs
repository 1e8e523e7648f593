//! The reference's `Vec`-returning API (feature `alloc`): a thin wrapper over
//! [`SimSiamHead`] with owned `Vec<f32>` storage.

use alloc::vec::Vec;

use crate::error::{BATCH_OVERFLOW, SslError, SslResult};
use crate::image::{
    Image, ImageExtras, InputContract, TrainingSection, image_len_with, write_image_with,
};
use crate::kernels::{Backend, Scalar, Simd};
use crate::model::{Architecture, SimSiamConfig, SimSiamHead, init_params};
use crate::rng::LcgRng;

/// `len` zeros, or `OutOfMemory` instead of an abort.
pub(crate) fn try_zeros(len: usize) -> SslResult<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| SslError::OutOfMemory { floats: len })?;
    v.resize(len, 0.0);
    Ok(v)
}

/// `len` zero bytes, or `OutOfMemory` instead of an abort.
fn try_bytes(len: usize) -> SslResult<Vec<u8>> {
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| SslError::OutOfMemory {
            floats: len.div_ceil(4),
        })?;
    bytes.resize(len, 0);
    Ok(bytes)
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

/// The SimSiam head with the API of `oxicuda_ssl::ssl::sim_siam::SimSiam` 0.5.5, for
/// any [`Architecture`] (the reference's, or a trained head loaded from a parameter
/// image), with the kernel twin chosen at run time ([`Backend`]).
///
/// Each call allocates its output and workspace (as the reference does); the arithmetic
/// is the no-alloc [`SimSiamHead`]'s.
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
    backend: Backend,
}

/// Runs `$call` on the head's view with the kernel twin of `$self.backend`.
macro_rules! on_backend {
    ($self:ident, |$head:ident| $call:expr) => {
        match $self.backend {
            Backend::Simd => {
                let $head = $self.head.view().with_kernels::<Simd>();
                $call
            }
            Backend::Scalar => {
                let $head = $self.head.view().with_kernels::<Scalar>();
                $call
            }
        }
    };
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
        Ok(Self::from_head(SimSiamHead::from_params(config, params)?))
    }

    /// A model of `architecture` over `params` (its flat layout:
    /// [`Architecture::param_count`]).
    ///
    /// # Errors
    /// As [`SimSiamHead::new`].
    pub fn from_params(architecture: Architecture, params: Vec<f32>) -> SslResult<Self> {
        Ok(Self::from_head(SimSiamHead::new(architecture, params)?))
    }

    /// The model a parameter image holds (as written by `simsiam-convert import` or
    /// [`to_image`](Self::to_image)), its parameters copied: `bytes` may have any
    /// alignment. On the device, view an image in place instead with
    /// [`SimSiamHead::from_image`].
    ///
    /// # Errors
    /// [`Image::parse`]'s errors; `OutOfMemory`.
    pub fn from_image(bytes: &[u8]) -> SslResult<Self> {
        let image = Image::parse(bytes)?;
        let mut params = try_zeros(image.param_count())?;
        image.copy_params(&mut params)?;
        let mut head = SimSiamHead::from_checked_params(*image.architecture(), params)?;
        head.set_batches_tracked(*image.batches_tracked());
        head.set_encoder_batches_tracked(*image.encoder_batches_tracked());
        Ok(Self::from_head(head))
    }

    /// The model as a parameter image (every parameter bit for bit, the BatchNorm
    /// counters), for [`from_image`](Self::from_image), [`SimSiamHead::from_image`] or
    /// `simsiam-convert export`: version 1 for a head alone, version 2 for a network with
    /// an encoder ([`crate::image::write_image`]).
    ///
    /// # Errors
    /// `OutOfMemory`; [`crate::image::write_image`]'s errors.
    pub fn to_image(&self) -> SslResult<Vec<u8>> {
        let mut bytes = try_bytes(self.head.image_len()?)?;
        self.head.write_image(&mut bytes)?;
        Ok(bytes)
    }

    /// The model as a version-2 parameter image with its BatchNorm counters, the input
    /// contract `input` and the training section `training` where given
    /// ([`crate::image::write_image_with`]).
    ///
    /// # Errors
    /// `OutOfMemory`; [`crate::image::write_image_with`]'s errors.
    ///
    /// # Examples
    /// ```
    /// use simsiam::image::{Image, InputContract};
    /// use simsiam::layers::Shape;
    /// use simsiam::{LcgRng, SimSiam, SimSiamConfig};
    /// let model = SimSiam::new(SimSiamConfig::default(), &mut LcgRng::new(1))?;
    /// let contract = InputContract::channel_major(Shape::sequence(2, 32));
    /// let bytes = model.to_image_with(Some(contract), None)?;
    /// assert_eq!(Image::parse(&bytes)?.input_contract(), Some(contract));
    /// assert_eq!(SimSiam::from_image(&bytes)?.head().params(), model.head().params());
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn to_image_with(
        &self,
        input: Option<InputContract<'_>>,
        training: Option<TrainingSection<'_>>,
    ) -> SslResult<Vec<u8>> {
        let extras = ImageExtras {
            input,
            training,
            ..self.head.image_extras()
        };
        let architecture = self.head.architecture();
        let mut bytes = try_bytes(image_len_with(architecture, &extras)?)?;
        write_image_with(architecture, self.head.params(), &extras, &mut bytes)?;
        Ok(bytes)
    }

    fn from_head(head: SimSiamHead<Vec<f32>>) -> Self {
        Self {
            head,
            backend: Backend::default(),
        }
    }

    /// `len` zeros for a workspace of up to `n` inputs or pairs.
    fn workspace(&self, n: usize) -> SslResult<Vec<f32>> {
        try_zeros(self.head.architecture().workspace_len(n)?)
    }

    /// A network of `architecture` with PyTorch's default initialisation drawn from
    /// `rng` ([`Architecture::init_params`]): the way to start a network with an
    /// encoder, e.g. [`Architecture::har_dense`].
    ///
    /// # Errors
    /// The architecture's errors; `OutOfMemory` when the parameters cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "encoder")] {
    /// use simsiam::{LcgRng, SimSiam};
    /// use simsiam::model::{Architecture, HarDense};
    /// let network = Architecture::har_dense(&HarDense { window: 16, ..HarDense::default() })?;
    /// let model = SimSiam::from_architecture(network, &mut LcgRng::new(0))?;
    /// let feature = model.encode(&vec![0.1_f32; 6 * 16])?;
    /// assert_eq!(feature.len(), 128);
    /// # }
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn from_architecture(architecture: Architecture, rng: &mut LcgRng) -> SslResult<Self> {
        let mut params = try_zeros(architecture.param_count()?)?;
        architecture.init_params(rng, &mut params)?;
        Self::from_params(architecture, params)
    }

    /// The encoder's output for one input of length `d_input` (eval mode): the feature a
    /// user keeps, `d_encoder` long (a copy of `x` without an encoder). See
    /// [`SimSiamHead::encode_into`].
    ///
    /// # Errors
    /// `DimensionMismatch { expected: d_input, got }`; `NonFinite`; `OutOfMemory`.
    pub fn encode(&self, x: &[f32]) -> SslResult<Vec<f32>> {
        self.encode_batch(x)
    }

    /// The encoder's outputs for `n` inputs (`xs` is `n × d_input` row-major; the result
    /// `n × d_encoder`). See [`SimSiamHead::encode_batch_into`].
    ///
    /// # Errors
    /// `DimensionMismatch` when `xs.len()` is not a multiple of `d_input`; `NonFinite`;
    /// `OutOfMemory`.
    pub fn encode_batch(&self, xs: &[f32]) -> SslResult<Vec<f32>> {
        let (d_input, d_encoder) = (self.head.d_input(), self.head.d_encoder());
        let len = batch_len(xs.len(), d_input, d_encoder)?;
        let mut out = try_zeros(len)?;
        let mut workspace = self.workspace(len.checked_div(d_encoder).unwrap_or(0))?;
        on_backend!(self, |head| head.encode_batch_into(
            xs,
            &mut out,
            &mut workspace
        ))?;
        Ok(out)
    }

    /// Projects an input of length `d_input` (an encoder output of length `d_encoder`
    /// without an encoder; the network's input with one) to a vector of length `d_out`
    /// (a unit vector when the architecture normalises it, as the reference's does).
    ///
    /// # Errors
    /// `DimensionMismatch { expected: d_input, got }`; `NonFinite`; `OutOfMemory`.
    pub fn project(&self, z: &[f32]) -> SslResult<Vec<f32>> {
        let mut out = try_zeros(self.head.d_out())?;
        let mut workspace = self.workspace(1)?;
        on_backend!(self, |head| head.project_into(z, &mut out, &mut workspace))?;
        Ok(out)
    }

    /// Applies the predictor to a projection of length `d_out`.
    ///
    /// # Errors
    /// `DimensionMismatch { expected: d_out, got }`; `NonFinite`; `OutOfMemory`.
    pub fn predict(&self, p: &[f32]) -> SslResult<Vec<f32>> {
        let mut out = try_zeros(self.head.d_out())?;
        let mut workspace = self.workspace(1)?;
        on_backend!(self, |head| head.predict_into(p, &mut out, &mut workspace))?;
        Ok(out)
    }

    /// The symmetric SimSiam loss of two views, in `[-1, 1]`.
    ///
    /// # Errors
    /// `DimensionMismatch` for `z1` then `z2`; `NonFinite`; `OutOfMemory`.
    pub fn loss(&self, z1: &[f32], z2: &[f32]) -> SslResult<f32> {
        let mut workspace = self.workspace(1)?;
        on_backend!(self, |head| head.loss(z1, z2, &mut workspace))
    }

    /// Projects `n` encoder outputs (`zs` is `n × d_encoder` row-major) into `n × d_out`;
    /// see [`SimSiamHead::project_batch_into`].
    ///
    /// # Errors
    /// `DimensionMismatch` when `zs.len()` is not a multiple of `d_encoder`; `NonFinite`;
    /// `OutOfMemory`.
    pub fn project_batch(&self, zs: &[f32]) -> SslResult<Vec<f32>> {
        let (d_input, d_out) = (self.head.d_input(), self.head.d_out());
        let len = batch_len(zs.len(), d_input, d_out)?;
        let mut out = try_zeros(len)?;
        let mut workspace = self.workspace(len.checked_div(d_out).unwrap_or(0))?;
        on_backend!(self, |head| head.project_batch_into(
            zs,
            &mut out,
            &mut workspace
        ))?;
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
        let len = batch_len(ps.len(), d_out, d_out)?;
        let mut out = try_zeros(len)?;
        let mut workspace = self.workspace(len.checked_div(d_out).unwrap_or(0))?;
        on_backend!(self, |head| head.predict_batch_into(
            ps,
            &mut out,
            &mut workspace
        ))?;
        Ok(out)
    }

    /// The losses of `n` pairs of views (`z1s`, `z2s` both `n × d_encoder` row-major);
    /// see [`SimSiamHead::loss_batch_into`].
    ///
    /// # Errors
    /// `DimensionMismatch` when `z1s.len()` is not a multiple of `d_encoder` or `z2s`
    /// has another length; `NonFinite`; `OutOfMemory`.
    pub fn loss_batch(&self, z1s: &[f32], z2s: &[f32]) -> SslResult<Vec<f32>> {
        let n = batch_len(z1s.len(), self.head.d_input(), 1)?;
        let mut losses = try_zeros(n)?;
        let mut workspace = self.workspace(n)?;
        on_backend!(self, |head| head.loss_batch_into(
            z1s,
            z2s,
            &mut losses,
            &mut workspace
        ))?;
        Ok(losses)
    }

    /// The projector output dimension.
    #[must_use]
    pub fn d_out(&self) -> usize {
        self.head.d_out()
    }

    /// The network's input dimension (`d_encoder` without an encoder).
    #[must_use]
    pub fn d_input(&self) -> usize {
        self.head.d_input()
    }

    /// The encoder output dimension (the projector's input).
    #[must_use]
    pub fn d_encoder(&self) -> usize {
        self.head.d_encoder()
    }

    /// What the head is made of.
    #[must_use]
    pub fn architecture(&self) -> &Architecture {
        self.head.architecture()
    }

    /// See [`SimSiamHead::set_identity_predictor`].
    ///
    /// # Errors
    /// `InvalidParameter { name: "d_predictor", .. }` unless the predictor is the
    /// reference's shape with `d_predictor == 2·d_out`.
    pub fn set_identity_predictor(&mut self) -> SslResult<()> {
        self.head.set_identity_predictor()
    }

    /// The no-alloc head inside, for the `*_into` calls.
    #[must_use]
    pub fn head(&self) -> &SimSiamHead<Vec<f32>> {
        &self.head
    }

    /// The no-alloc head inside, to change its parameters in place.
    #[must_use]
    pub fn head_mut(&mut self) -> &mut SimSiamHead<Vec<f32>> {
        &mut self.head
    }

    /// The kernel twin the calls run on.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The same model running on the other kernel twin.
    #[must_use]
    pub fn with_backend(self, backend: Backend) -> Self {
        Self { backend, ..self }
    }
}
