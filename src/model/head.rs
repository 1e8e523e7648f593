//! The no-alloc SimSiam head over any parameter storage, on a kernel twin chosen at
//! compile time.

use core::marker::PhantomData;

use super::architecture::{Architecture, Layer};
use super::config::SimSiamConfig;
use super::encoder::{Encoder, MAX_ENCODER_LAYERS};
use super::forward::{HIDDEN_BLOCK, StackView, Stage, stack_into, stack_pair};
use super::layout::{DenseView, Layout, MAX_LAYERS, StackName};
use crate::error::{SslError, SslResult, check_finite, check_len};
use crate::kernels::{Kernels, NORM_FLOOR, Simd, divide_by_norm, pieces_mut};
use crate::rng::LcgRng;

/// What a training step reads (architecture, layout) and writes (parameters, BatchNorm
/// counters) of a head.
pub(crate) struct TrainingParts<'a> {
    pub(crate) architecture: &'a Architecture,
    pub(crate) layout: &'a Layout,
    pub(crate) params: &'a mut [f32],
    pub(crate) batches_tracked: &'a mut [u64; MAX_LAYERS],
    pub(crate) encoder_batches_tracked: &'a mut [u64; MAX_ENCODER_LAYERS],
}

/// `n` for `len` floats of rows of `width`: `DimensionMismatch` when `len` is not a
/// multiple of `width` (a zero width holds no rows).
pub(crate) fn rows_of(len: usize, width: usize) -> SslResult<usize> {
    let n = len.checked_div(width).unwrap_or(0);
    let whole = n.saturating_mul(width);
    if whole != len {
        return Err(SslError::DimensionMismatch {
            expected: whole,
            got: len,
        });
    }
    Ok(n)
}

/// A network call's workspace, cut: the head's part, two feature buffers, the
/// encoder's work.
pub(crate) type NetworkWorkspace<'w> = (&'w mut [f32], [&'w mut [f32]; 2], &'w mut [f32]);

/// One of a head's two stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// The projector.
    Projector,
    /// The predictor.
    Predictor,
}

/// The floor PyTorch's `CosineSimilarity` puts under each norm (`eps = 1e-8`): the loss
/// normalises with it whatever the architecture did not normalise already.
pub const COSINE_EPS: f32 = 1e-8;

/// Writes Kaiming-normal weights and zero biases for the reference's head into `params`,
/// drawing from `rng` in the reference's order (`proj_w1`, `proj_w2`, `pred_w1`,
/// `pred_w2`): the same seed gives the same weights as `oxicuda-ssl`'s `SimSiam::new`.
///
/// # Errors
/// The config's errors (see [`SimSiamConfig::param_count`]), then `DimensionMismatch`
/// when `params.len()` is not the parameter count.
///
/// # Examples
/// ```
/// use simsiam::{LcgRng, SimSiamConfig, init_params};
/// let config = SimSiamConfig { d_encoder: 4, d_projector: 8, d_predictor: 4, d_out: 2 };
/// let mut params = [0.0_f32; 80];
/// init_params(&config, &mut LcgRng::new(42), &mut params)?;
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn init_params(config: &SimSiamConfig, rng: &mut LcgRng, params: &mut [f32]) -> SslResult<()> {
    let expected = config.param_count()?;
    check_len(expected, params.len())?;
    let architecture = Architecture::reference(*config)?;
    // The layers add up to `expected == params.len()`, so no split below can fail; were
    // one to, its error would still be the true one.
    let wrong_length = SslError::DimensionMismatch {
        expected,
        got: params.len(),
    };
    let mut rest = params;
    for layer in architecture.layers() {
        let (weights, tail) = core::mem::take(&mut rest)
            .split_at_mut_checked(layer.weight_count().ok_or(wrong_length)?)
            .ok_or(wrong_length)?;
        let (bias, tail) = tail.split_at_mut_checked(layer.d_out).ok_or(wrong_length)?;
        rest = tail;
        rng.fill_normal(weights);
        let scale = libm::sqrtf(2.0_f32 / layer.d_in as f32);
        weights.iter_mut().for_each(|w| *w *= scale);
        bias.fill(0.0);
    }
    Ok(())
}

/// L2-normalises `out` in place with the floor `floor` under the norm, or
/// `NonFinite { location }` when it overflowed (the sum of squares is computed once and
/// serves both).
pub(crate) fn normalize_checked<K: Kernels>(
    out: &mut [f32],
    floor: f32,
    location: &'static str,
) -> SslResult<()> {
    let sum_squares = K::sum_squares(out);
    if !sum_squares.is_finite() {
        return Err(SslError::NonFinite { location });
    }
    divide_by_norm::<K>(out, sum_squares, floor);
    Ok(())
}

/// The finishing step of a stack's output: L2 with the reference's floor when the
/// architecture normalises it, else only the finiteness check.
pub(crate) fn finish_output<K: Kernels>(
    out: &mut [f32],
    normalize: bool,
    location: &'static str,
) -> SslResult<()> {
    if normalize {
        normalize_checked::<K>(out, NORM_FLOOR, location)
    } else {
        check_finite(out, location)
    }
}

/// `(−cos(p1, z2) − cos(p2, z1)) / 2`, normalising in place whatever the architecture
/// did not (with PyTorch's cosine floor): for the reference's head, where both are
/// unit vectors already, exactly its `(D(p1, z2') + D(p2, z1'))·0.5`, `D(a, b) = −a·b`.
pub(crate) fn symmetric_loss<K: Kernels>(
    architecture: &Architecture,
    [z1, z2, p1, p2]: [&mut [f32]; 4],
) -> SslResult<f32> {
    if !architecture.normalize_projection {
        normalize_checked::<K>(z1, COSINE_EPS, "projector output")?;
        normalize_checked::<K>(z2, COSINE_EPS, "projector output")?;
    }
    if !architecture.normalize_prediction {
        normalize_checked::<K>(p1, COSINE_EPS, "predictor output")?;
        normalize_checked::<K>(p2, COSINE_EPS, "predictor output")?;
    }
    Ok((-K::dot_add(0.0, p1, z2) + -K::dot_add(0.0, p2, z1)) * 0.5)
}

/// A SimSiam head over parameter storage `S`, running on the kernel twin `K`, with no
/// allocation.
///
/// `S` is anything that derefs to the flat parameters (the layout of
/// [`Architecture::param_count`]): a `&'static [f32]` in flash, or a parameter image
/// viewed in place ([`from_image`](SimSiamHead::from_image)); a `heapless::Vec<f32, N>`
/// owned on the device ([`from_seed`](SimSiamHead::from_seed)); a `Vec<f32>` under
/// `alloc` (that is what `SimSiam`, feature `alloc`, wraps). The architecture and the
/// layout are validated once, at construction, with checked arithmetic, and every
/// parameter must be finite.
///
/// `K` is [`Simd`] unless changed with [`with_kernels`](Self::with_kernels); only the
/// chosen twin's code is linked. (For a choice at run time, see [`Backend`](crate::Backend).)
///
/// # Memory per call
/// No heap. Each call takes a `workspace` of caller floats: at least the amount its docs
/// give, and [`Architecture::workspace_len`]`(n)` always suffices for every call with up
/// to `n` inputs or pairs. For heads whose stacks have at most two layers (the
/// reference's) only the loss needs one (`4·d_out`), and the batch calls from three
/// inputs on their lane blocks ([`Architecture::lanes_len`]). Stack: one hidden block, 1 KiB,
/// for `project_into`/`predict_into`; 2 KiB for `loss` (8 KiB when a hidden layer is
/// wider than 256); see [`crate::model`] for the batch calls. With an
/// [encoder](Architecture::with_encoder) every call but `predict_into` takes at least
/// [`Architecture::workspace_len`]`(n)`: the head's part, the features of both views
/// (`2·n·d_encoder`) and the encoder's [`Encoder::eval_work_len`]`(n)` (two buffers of
/// `n` samples of its widest activation and a convolution's scratch); the layer kinds
/// add no stack beyond the kernels'.
///
/// # Examples
/// ```
/// use simsiam::{LcgRng, SimSiamConfig, SimSiamHead};
/// let config = SimSiamConfig::default();
/// // 16 640 parameters, owned in fixed-capacity storage, initialised on the device.
/// let head = SimSiamHead::<heapless::Vec<f32, 16_640>>::from_seed(config, &mut LcgRng::new(0))?;
/// let z1 = [0.5_f32; 64];
/// let z2 = [0.25_f32; 64];
/// let mut projected = [0.0_f32; 32];
/// head.project_into(&z1, &mut projected, &mut [])?;
/// let mut workspace = [0.0_f32; 4 * 32];
/// let loss = head.loss(&z1, &z2, &mut workspace)?;
/// assert!((-1.0..=1.0).contains(&loss));
/// // The same head on the scalar twin (the reference's loops).
/// let scalar = head.view().with_kernels::<simsiam::kernels::Scalar>();
/// let again = scalar.loss(&z1, &z2, &mut workspace)?;
/// assert!((again - loss).abs() < 1e-6);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub struct SimSiamHead<S, K = Simd> {
    architecture: Architecture,
    layout: Layout,
    batches_tracked: [u64; MAX_LAYERS],
    encoder_batches_tracked: [u64; MAX_ENCODER_LAYERS],
    params: S,
    kernels: PhantomData<fn() -> K>,
}

impl<S: Clone, K> Clone for SimSiamHead<S, K> {
    fn clone(&self) -> Self {
        Self {
            architecture: self.architecture,
            layout: self.layout,
            batches_tracked: self.batches_tracked,
            encoder_batches_tracked: self.encoder_batches_tracked,
            params: self.params.clone(),
            kernels: PhantomData,
        }
    }
}

/// A head over borrowed parameters (`SimSiamHead<&[f32], K>`, what
/// [`view`](SimSiamHead::view) and [`from_image`](SimSiamHead::from_image) give) is `Copy`.
impl<S: Copy, K> Copy for SimSiamHead<S, K> {}

impl<S: AsRef<[f32]>, K> core::fmt::Debug for SimSiamHead<S, K> {
    /// The architecture and the parameter count, not the parameters.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimSiamHead")
            .field("architecture", &self.architecture)
            .field("param_count", &self.params.as_ref().len())
            .field("kernels", &core::any::type_name::<K>())
            .finish_non_exhaustive()
    }
}

impl<S: AsRef<[f32]>> SimSiamHead<S> {
    /// A head of `architecture` over `params`, laid out as
    /// [`Architecture::param_count`] describes.
    ///
    /// # Errors
    /// The architecture's errors; `DimensionMismatch { expected: param_count, got }` for
    /// storage of the wrong length; `NonFinite { location: "params" }` when a parameter
    /// is NaN or infinite.
    pub fn new(architecture: Architecture, params: S) -> SslResult<Self> {
        let head = Self::from_checked_params(architecture, params)?;
        check_finite(head.params.as_ref(), "params")?;
        Ok(head)
    }

    /// The reference's head of dimensions `config` over `params` (its layout:
    /// [`SimSiamConfig::param_count`]).
    ///
    /// # Errors
    /// As [`new`](Self::new), with the config's errors first.
    pub fn from_params(config: SimSiamConfig, params: S) -> SslResult<Self> {
        Self::new(Architecture::reference(config)?, params)
    }

    /// [`new`](Self::new) without the O(n) finiteness scan, for storage already checked
    /// (the C API checks once in `simsiam_model_init`, then rebuilds the head per call;
    /// an image is checked by its parser). Shapes are still checked, in O(layers). A
    /// non-finite parameter is never unsafe and never panics: it gives a `NonFinite`
    /// output error or an unspecified finite output.
    ///
    /// # Errors
    /// As [`new`](Self::new), except `NonFinite`.
    pub fn from_checked_params(architecture: Architecture, params: S) -> SslResult<Self> {
        let layout = Layout::new(&architecture)?;
        check_len(layout.param_count, params.as_ref().len())?;
        Ok(Self {
            architecture,
            layout,
            batches_tracked: [0; MAX_LAYERS],
            encoder_batches_tracked: [0; MAX_ENCODER_LAYERS],
            params,
            kernels: PhantomData,
        })
    }
}

impl<S: AsRef<[f32]>, K: Kernels> SimSiamHead<S, K> {
    /// The same head on the kernel twin `K2` ([`Simd`] or
    /// [`Scalar`](crate::kernels::Scalar)).
    #[must_use]
    pub fn with_kernels<K2: Kernels>(self) -> SimSiamHead<S, K2> {
        SimSiamHead {
            architecture: self.architecture,
            layout: self.layout,
            batches_tracked: self.batches_tracked,
            encoder_batches_tracked: self.encoder_batches_tracked,
            params: self.params,
            kernels: PhantomData,
        }
    }

    /// A head borrowing this one's parameters (cheap: no copy, no validation).
    #[must_use]
    pub fn view(&self) -> SimSiamHead<&[f32], K> {
        SimSiamHead {
            architecture: self.architecture,
            layout: self.layout,
            batches_tracked: self.batches_tracked,
            encoder_batches_tracked: self.encoder_batches_tracked,
            params: self.params.as_ref(),
            kernels: PhantomData,
        }
    }

    /// What the head is made of.
    #[must_use]
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// The encoder output width (the projector's input).
    #[must_use]
    pub fn d_encoder(&self) -> usize {
        self.architecture.d_encoder()
    }

    /// The network's input width ([`Architecture::d_input`]): the encoder's input, or
    /// [`d_encoder`](Self::d_encoder) without an encoder.
    #[must_use]
    pub fn d_input(&self) -> usize {
        self.architecture.d_input()
    }

    /// The projection width (= the predictor's input and output width).
    #[must_use]
    pub fn d_out(&self) -> usize {
        self.architecture.d_out()
    }

    /// The flat parameters.
    #[must_use]
    pub fn params(&self) -> &[f32] {
        self.params.as_ref()
    }

    /// Gives the storage back.
    #[must_use]
    pub fn into_params(self) -> S {
        self.params
    }

    /// Layer `i`'s BatchNorm `num_batches_tracked` (projector first; 0 without one), as
    /// read from an image or set with [`set_batches_tracked`](Self::set_batches_tracked).
    #[must_use]
    pub fn batches_tracked(&self) -> &[u64; MAX_LAYERS] {
        &self.batches_tracked
    }

    /// Sets the BatchNorm counters an image of this head records.
    pub fn set_batches_tracked(&mut self, counts: [u64; MAX_LAYERS]) {
        self.batches_tracked = counts;
    }

    /// Encoder layer `i`'s BatchNorm `num_batches_tracked` (0 for other kinds and
    /// without an encoder).
    #[must_use]
    pub fn encoder_batches_tracked(&self) -> &[u64; MAX_ENCODER_LAYERS] {
        &self.encoder_batches_tracked
    }

    /// Sets the encoder's BatchNorm counters.
    pub fn set_encoder_batches_tracked(&mut self, counts: [u64; MAX_ENCODER_LAYERS]) {
        self.encoder_batches_tracked = counts;
    }

    /// The stages of the projector (`Which::Projector`) or the predictor, viewed in the
    /// parameters; `None` if the storage no longer matches the layout (only storage whose
    /// `as_ref` changes length can do that: the error is
    /// [`storage_changed`](Self::storage_changed)). Only that stack's layers are viewed:
    /// a small head's call is short enough for the rest to show. Callers borrow the view
    /// where it is returned (`let Some(stack) = &self.stack(..)`): unwrapped by `?`, its
    /// few hundred bytes were copied several times a call (BENCHMARKS.md, "Measurements
    /// behind design choices").
    pub(crate) fn stack(&self, which: Which) -> Option<StackView<'_>> {
        let params = self.params.as_ref();
        let split = self.architecture.projector.layers().len();
        let (layers, offsets) = match which {
            Which::Projector => (
                self.architecture.projector.layers(),
                self.layout.layers.get(..split)?,
            ),
            Which::Predictor => (
                self.architecture.predictor.layers(),
                self.layout.layers.get(split..)?,
            ),
        };
        // Filled where it is returned (one local returned on every path, so no copy
        // into the return slot), from a start written field by field: a constant for the
        // whole view was a 272-byte `memcpy` on the Cortex-M4F (900 instructions a
        // `loss`).
        let mut stack = Some(StackView {
            leading: None,
            last: Stage {
                first: DenseView::EMPTY,
                second: None,
            },
        });
        let filled = stack
            .as_mut()
            .is_some_and(|view| view.fill(layers.len(), layers.iter().zip(offsets), params));
        if !filled {
            stack = None;
        }
        stack
    }

    /// `DimensionMismatch` for storage whose length no longer matches the layout.
    #[cold]
    pub(crate) fn storage_changed(&self) -> SslError {
        SslError::DimensionMismatch {
            expected: self.layout.param_count,
            got: self.params.as_ref().len(),
        }
    }

    /// Projects an encoder output: `out` = the projector's output (L2-normalised when
    /// the architecture says so: the reference's head does, the official one ends in its
    /// BatchNorm). With an [encoder](Architecture::with_encoder), `z` is the network's
    /// input ([`d_input`](Self::d_input) floats), encoded first (eval mode), and
    /// `workspace` must hold [`Architecture::workspace_len`]`(1)`; the errors are then
    /// about `d_input`, with the input's location `"x"`.
    ///
    /// `workspace` must hold the projector's intermediate vector: 0 floats for stacks of
    /// up to two layers (pass `&mut []`), the first layer's width for three layers (the
    /// official head: `prev_dim`), the second's for four. Extra is unused.
    ///
    /// # Errors
    /// `DimensionMismatch` when `z.len() != d_encoder`, then when `out.len() != d_out`;
    /// `CapacityTooSmall` for a short workspace; `NonFinite { location: "z" }` for a
    /// NaN/infinite input and `NonFinite { location: "projector output" }` when the
    /// result overflows.
    pub fn project_into(&self, z: &[f32], out: &mut [f32], workspace: &mut [f32]) -> SslResult<()> {
        if let Some(encoder) = self.architecture.active_encoder() {
            return self.project_network(encoder, z, out, workspace);
        }
        self.project_features(z, out, workspace)
    }

    /// [`project_into`](Self::project_into) of a network with an encoder.
    fn project_network(
        &self,
        encoder: &Encoder,
        x: &[f32],
        out: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        check_len(self.d_input(), x.len())?;
        check_len(self.d_out(), out.len())?;
        let (head, [feature, _], work) = self.split_workspace(1, workspace)?;
        check_finite(x, "x")?;
        self.encode_unchecked(encoder, 1, x, feature, work)?;
        self.project_features(feature, out, head)
    }

    /// The projector on an encoder output (the head alone).
    #[inline]
    fn project_features(&self, z: &[f32], out: &mut [f32], workspace: &mut [f32]) -> SslResult<()> {
        let Some(projector) = &self.stack(Which::Projector) else {
            return Err(self.storage_changed());
        };
        self.forward(projector, z, out, workspace, "z")?;
        finish_output::<K>(
            out,
            self.architecture.normalize_projection,
            "projector output",
        )
    }

    /// The encoder's output for one input `x` (eval mode: BatchNorm with its running
    /// statistics): the feature a user keeps after self-supervised training, flattened
    /// channel-major, [`d_encoder`](Self::d_encoder) floats. Without an encoder the
    /// network's input is the feature, and `out` is a copy of `x`.
    ///
    /// `workspace`: at least the encoder's [`Encoder::eval_work_len`]`(1)` floats (two
    /// buffers of the widest activation and a convolution's scratch; 0 without an
    /// encoder); [`Architecture::workspace_len`]`(1)` suffices.
    ///
    /// # Errors
    /// `DimensionMismatch` when `x` is not [`d_input`](Self::d_input) long, then when
    /// `out` is not `d_encoder`; `CapacityTooSmall` for a short workspace;
    /// `NonFinite { location: "x" }` for a NaN/infinite input and
    /// `{ location: "encoder output" }` when the output overflows.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "encoder")] {
    /// use simsiam::{LcgRng, SimSiamHead};
    /// use simsiam::model::{Architecture, HarDense};
    /// let sizes = HarDense { channels: 2, window: 8, hidden: 8, feature: 4,
    ///                        projector_hidden: 4, projection: 4, predictor_hidden: 2 };
    /// let network = Architecture::har_dense(&sizes)?;
    /// let mut params = vec![0.0_f32; network.param_count()?];
    /// network.init_params(&mut LcgRng::new(0), &mut params)?;
    /// let model = SimSiamHead::new(network, &params[..])?;
    /// let window = [0.5_f32; 16]; // [2, 8], channel-major
    /// let mut feature = [0.0_f32; 4];
    /// let mut workspace = vec![0.0_f32; network.workspace_len(1)?];
    /// model.encode_into(&window, &mut feature, &mut workspace)?;
    /// assert!(feature.iter().all(|f| *f >= 0.0)); // it ends in a ReLU
    /// # }
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn encode_into(&self, x: &[f32], out: &mut [f32], workspace: &mut [f32]) -> SslResult<()> {
        check_len(self.d_input(), x.len())?;
        check_len(self.d_encoder(), out.len())?;
        self.encode_batch_into(x, out, workspace)
    }

    /// [`encode_into`](Self::encode_into) of `n` inputs at once: `xs` is `n × d_input`,
    /// `out` `n × d_encoder`, row-major. `workspace`: at least
    /// [`Encoder::eval_work_len`]`(n)` floats (`2·n·widest + scratch`: the encoder runs on
    /// the whole batch); [`Architecture::workspace_len`]`(n)` suffices.
    ///
    /// # Errors
    /// `DimensionMismatch` when `xs.len()` is not a multiple of `d_input`, then when
    /// `out` is not `n·d_encoder`; otherwise as [`encode_into`](Self::encode_into).
    pub fn encode_batch_into(
        &self,
        xs: &[f32],
        out: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        let n = rows_of(xs.len(), self.d_input())?;
        check_len(n.saturating_mul(self.d_encoder()), out.len())?;
        let Some(encoder) = self.architecture.active_encoder() else {
            check_finite(xs, "x")?;
            super::encoder::copy(out, xs);
            return Ok(());
        };
        let needed = encoder.eval_work_len(n)?;
        let capacity = workspace.len();
        let work = workspace
            .get_mut(..needed)
            .ok_or(SslError::CapacityTooSmall { needed, capacity })?;
        check_finite(xs, "x")?;
        self.encode_unchecked(encoder, n, xs, out, work)
    }

    /// The encoder's eval forward of `n` inputs into `out`, then its finiteness check.
    pub(crate) fn encode_unchecked(
        &self,
        encoder: &Encoder,
        n: usize,
        xs: &[f32],
        out: &mut [f32],
        work: &mut [f32],
    ) -> SslResult<()> {
        if n == 0 {
            // An empty batch, as the head's batch calls take it.
            return Ok(());
        }
        let params = self
            .params
            .as_ref()
            .get(..self.layout.encoder_param_count)
            .ok_or_else(|| self.storage_changed())?;
        encoder.forward_eval::<K>(params, n, xs, out, work)?;
        check_finite(out, "encoder output")
    }

    /// Cuts the workspace of a call on `n` inputs or pairs of a network with an encoder
    /// (at least [`Architecture::workspace_len`]`(n)` floats): the head's part, two
    /// feature buffers of `n·d_encoder`, the encoder's work.
    pub(crate) fn split_workspace<'w>(
        &self,
        n: usize,
        workspace: &'w mut [f32],
    ) -> SslResult<NetworkWorkspace<'w>> {
        let needed = self.architecture.workspace_len(n)?;
        let capacity = workspace.len();
        let too_small = SslError::CapacityTooSmall { needed, capacity };
        let mut rest = workspace.get_mut(..needed).ok_or(too_small)?;
        let features = n.saturating_mul(self.d_encoder());
        let head = super::encoder::take(&mut rest, self.architecture.head_workspace_len(n)?)
            .ok_or(too_small)?;
        let first = super::encoder::take(&mut rest, features).ok_or(too_small)?;
        let second = super::encoder::take(&mut rest, features).ok_or(too_small)?;
        Ok((head, [first, second], rest))
    }

    /// Applies the predictor to a projection: `out` = the predictor's output
    /// (L2-normalised when the architecture says so: the reference's head does, the
    /// official one ends in its Linear layer).
    ///
    /// `workspace`: as [`project_into`](Self::project_into), for the predictor.
    ///
    /// # Errors
    /// `DimensionMismatch` when `p.len() != d_out`, then when `out.len() != d_out`;
    /// `CapacityTooSmall`; `NonFinite { location: "p" }` or
    /// `{ location: "predictor output" }`.
    pub fn predict_into(&self, p: &[f32], out: &mut [f32], workspace: &mut [f32]) -> SslResult<()> {
        let Some(predictor) = &self.stack(Which::Predictor) else {
            return Err(self.storage_changed());
        };
        self.forward(predictor, p, out, workspace, "p")?;
        finish_output::<K>(
            out,
            self.architecture.normalize_prediction,
            "predictor output",
        )
    }

    fn forward(
        &self,
        stack: &StackView<'_>,
        x: &[f32],
        out: &mut [f32],
        workspace: &mut [f32],
        location: &'static str,
    ) -> SslResult<()> {
        check_len(stack.d_in(), x.len())?;
        check_len(stack.last.d_out(), out.len())?;
        let needed = stack.intermediate_len();
        let capacity = workspace.len();
        let scratch = workspace
            .get_mut(..needed)
            .ok_or(SslError::CapacityTooSmall { needed, capacity })?;
        check_finite(x, location)?;
        stack_into::<K>(stack, x, out, scratch);
        Ok(())
    }

    /// The symmetric SimSiam loss `−(cos(p1, z2) + cos(p2, z1)) / 2`, where
    /// `zi = project(zi)` and `pi = predict(zi)`; `p` and `z` are normalised here when
    /// the architecture did not already (PyTorch's `CosineSimilarity`, `eps = 1e-8`). In
    /// `[-1, 1]` up to rounding. For the reference's head this is exactly its
    /// `(D(p1, z2') + D(p2, z1'))·0.5`, `D(a, b) = −a·b`.
    ///
    /// With an [encoder](Architecture::with_encoder), `z1` and `z2` are the network's
    /// inputs ([`d_input`](Self::d_input) floats each), encoded first (eval mode); the
    /// input locations are then `"x1"`, `"x2"`, and the workspace is
    /// [`Architecture::workspace_len`]`(1)`, the head's part first.
    ///
    /// `workspace` must hold at least
    /// [`Architecture::workspace_len`]`(1)` = `4·d_out` plus two intermediate vectors
    /// (none for the reference's head, `2·prev_dim` for the official one) floats; extra
    /// is unused. After the call its first `4·d_out` floats hold `z1`, `z2`, `p1`, `p2`
    /// (each `d_out`, unit vectors).
    ///
    /// # Errors
    /// `DimensionMismatch` when `z1` or then `z2` is not `d_encoder` long;
    /// `CapacityTooSmall` for a short workspace; `NonFinite` as in
    /// [`project_into`](Self::project_into) (locations `"z1"`, `"z2"`).
    pub fn loss(&self, z1: &[f32], z2: &[f32], workspace: &mut [f32]) -> SslResult<f32> {
        if let Some(encoder) = self.architecture.active_encoder() {
            return self.loss_network(encoder, z1, z2, workspace);
        }
        self.loss_features(z1, z2, workspace)
    }

    /// [`loss`](Self::loss) of a network with an encoder.
    fn loss_network(
        &self,
        encoder: &Encoder,
        x1: &[f32],
        x2: &[f32],
        workspace: &mut [f32],
    ) -> SslResult<f32> {
        let d_input = self.d_input();
        check_len(d_input, x1.len())?;
        check_len(d_input, x2.len())?;
        let (head, [f1, f2], work) = self.split_workspace(1, workspace)?;
        check_finite(x1, "x1")?;
        check_finite(x2, "x2")?;
        self.encode_unchecked(encoder, 1, x1, f1, work)?;
        self.encode_unchecked(encoder, 1, x2, f2, work)?;
        self.loss_features(f1, f2, head)
    }

    /// The loss of two encoder outputs (the head alone).
    #[inline]
    fn loss_features(&self, z1: &[f32], z2: &[f32], workspace: &mut [f32]) -> SslResult<f32> {
        let d_encoder = self.d_encoder();
        check_len(d_encoder, z1.len())?;
        check_len(d_encoder, z2.len())?;
        let d_out = self.d_out();
        let needed = self.layout.loss_workspace_len?;
        let capacity = workspace.len();
        let too_small = SslError::CapacityTooSmall { needed, capacity };
        let workspace = workspace.get_mut(..needed).ok_or(too_small)?;
        let (outputs, scratch) = workspace
            .split_at_mut_checked(d_out.saturating_mul(4))
            .ok_or(too_small)?;
        let mut parts = pieces_mut(outputs, d_out);
        let (Some(z1p), Some(z2p), Some(p1), Some(p2)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(too_small);
        };
        let (s1, s2) = scratch.split_at_mut(scratch.len() / 2);
        check_finite(z1, "z1")?;
        check_finite(z2, "z2")?;
        // Each stack viewed where it is used, and borrowed in place (see `stack`).
        let Some(projector) = &self.stack(Which::Projector) else {
            return Err(self.storage_changed());
        };
        let inter = projector.intermediate_len();
        let (a, b) = (
            s1.get_mut(..inter).unwrap_or_default(),
            s2.get_mut(..inter).unwrap_or_default(),
        );
        // Two-view passes: each weight matrix is read once for both views.
        // The hidden blocks of both stacks, zeroed once.
        let mut hidden = [[0.0; HIDDEN_BLOCK]; 2];
        stack_pair::<K>(
            projector,
            (&[z1, z2], &mut [&mut *z1p, &mut *z2p]),
            &mut [a, b],
            &mut hidden,
        );
        let normalize = self.architecture.normalize_projection;
        finish_output::<K>(z1p, normalize, "projector output")?;
        finish_output::<K>(z2p, normalize, "projector output")?;
        let Some(predictor) = &self.stack(Which::Predictor) else {
            return Err(self.storage_changed());
        };
        let inter = predictor.intermediate_len();
        let (a, b) = (
            s1.get_mut(..inter).unwrap_or_default(),
            s2.get_mut(..inter).unwrap_or_default(),
        );
        stack_pair::<K>(
            predictor,
            (&[&*z1p, &*z2p], &mut [&mut *p1, &mut *p2]),
            &mut [a, b],
            &mut hidden,
        );
        let normalize = self.architecture.normalize_prediction;
        finish_output::<K>(p1, normalize, "predictor output")?;
        finish_output::<K>(p2, normalize, "predictor output")?;
        symmetric_loss::<K>(&self.architecture, [z1p, z2p, p1, p2])
    }
}

impl<S: AsRef<[f32]> + AsMut<[f32]>, K: Kernels> SimSiamHead<S, K> {
    /// What a training step changes, borrowed at once: the architecture and layout
    /// (read), the parameters and the BatchNorm counters (written).
    pub(crate) fn training_parts(&mut self) -> TrainingParts<'_> {
        TrainingParts {
            architecture: &self.architecture,
            layout: &self.layout,
            params: self.params.as_mut(),
            batches_tracked: &mut self.batches_tracked,
            encoder_batches_tracked: &mut self.encoder_batches_tracked,
        }
    }

    /// The flat parameters, to change in place (training, or loading new weights). The
    /// length cannot change; finiteness is not checked again.
    #[must_use]
    pub fn params_mut(&mut self) -> &mut [f32] {
        self.params.as_mut()
    }

    /// Replaces the predictor with an exact identity: `pred_w1` row `i` is `+e_i`, row
    /// `d_out + i` is `−e_i`; `pred_w2` row `i` is `+1` at column `i`, `−1` at column
    /// `d_out + i`; biases zero. Then `predict(project(z)) == project(z)` and
    /// `loss(z, z) == −1` up to rounding.
    ///
    /// # Errors
    /// `InvalidParameter { name: "d_predictor", .. }` unless the predictor is the
    /// reference's shape (`Linear + ReLU`, `Linear`, both with bias, no BatchNorm) with
    /// `d_predictor == 2·d_out`.
    pub fn set_identity_predictor(&mut self) -> SslResult<()> {
        let d_out = self.d_out();
        let d_predictor = d_out.checked_mul(2);
        let identity_shape = match self.architecture.predictor.layers() {
            [first, second] => {
                Some(first.d_out) == d_predictor
                    && *first == Layer::linear(d_out, first.d_out).with_bias().with_relu()
                    && *second == Layer::linear(first.d_out, d_out).with_bias()
            }
            _ => false,
        };
        if !identity_shape {
            return Err(SslError::InvalidParameter {
                name: "d_predictor",
                reason: "identity predictor requires d_predictor == 2 * d_out",
            });
        }
        let expected = self.layout.param_count;
        // The predictor's start and its two Linear weights, from the layout table.
        let mut start = expected;
        let mut weights = [0..0, 0..0];
        let predictor = self.architecture.tensors();
        for tensor in predictor.filter(|t| t.stack == StackName::Predictor) {
            start = start.min(tensor.start);
            if tensor.name == "weight"
                && let Some(range) = weights.get_mut(tensor.layer)
            {
                *range = tensor.range();
            }
        }
        let [w1, w2] = weights;
        let params = self.params.as_mut();
        // Construction checked the length, but storage whose `as_mut` changed length since
        // must not reach the splits below.
        check_len(expected, params.len())?;
        let wrong_length = SslError::DimensionMismatch {
            expected,
            got: params.len(),
        };
        params.get_mut(start..).ok_or(wrong_length)?.fill(0.0);
        // w1 [2·d_out × d_out] lies before w2 [d_out × 2·d_out].
        let (before, after) = params.split_at_mut_checked(w2.start).ok_or(wrong_length)?;
        let w1 = before.get_mut(w1).ok_or(wrong_length)?;
        let w2 = after.get_mut(..w2.len()).ok_or(wrong_length)?;
        let d_predictor = d_predictor.unwrap_or(0);
        let targets = (0..d_out)
            .map(|column| (column, 1.0))
            .chain((0..d_out).map(|column| (column, -1.0)));
        for (row, (column, sign)) in pieces_mut(w1, d_out).zip(targets) {
            if let Some(w) = row.get_mut(column) {
                *w = sign;
            }
        }
        for (row, i) in pieces_mut(w2, d_predictor).zip(0..d_out) {
            // Row `i`: `+1` at column `i`, `−1` at column `d_out + i`.
            if let Some((plus, minus)) = row.split_at_mut_checked(d_out) {
                if let Some(w) = plus.get_mut(i) {
                    *w = 1.0;
                }
                if let Some(w) = minus.get_mut(i) {
                    *w = -1.0;
                }
            }
        }
        Ok(())
    }
}

impl<const N: usize> SimSiamHead<heapless::Vec<f32, N>> {
    /// Initialises the reference's head on the device from a seed, into fixed-capacity
    /// storage: the same weights as `SimSiam::new` (feature `alloc`) with the same seed.
    ///
    /// `N` must be at least [`SimSiamConfig::param_count`]. The vector is built in place
    /// in the return value; for a large `N`, keep the head in a `static` rather than on a
    /// small stack.
    ///
    /// # Errors
    /// The config's errors; `CapacityTooSmall` when `N` is too small.
    pub fn from_seed(config: SimSiamConfig, rng: &mut LcgRng) -> SslResult<Self> {
        let count = config.param_count()?;
        let mut params = heapless::Vec::new();
        params
            .resize(count, 0.0)
            .map_err(|_| SslError::CapacityTooSmall {
                needed: count,
                capacity: N,
            })?;
        init_params(&config, rng, &mut params)?;
        Self::from_params(config, params)
    }
}
