//! The no-alloc SimSiam head over any parameter storage.

use crate::config::{LayerShape, SimSiamConfig};
use crate::error::{SslError, SslResult, check_finite, check_len};
use crate::kernels::{
    Backend, Kernels, Scalar, Simd, divide_by_norm, matmat_add, pieces, pieces_mut, relu_in_place,
};
use crate::rng::LcgRng;

/// Hidden units computed per block on the stack: the hidden vector of a two-layer MLP
/// is never stored whole, so a forward pass needs `HIDDEN_BLOCK·4` bytes (1 KiB) of
/// stack whatever the dimensions.
pub const HIDDEN_BLOCK: usize = 256;

/// One dense layer viewed in the flat parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DenseLayer<'a> {
    /// Row-major `[bias.len() × d_in]`.
    pub(crate) weights: &'a [f32],
    pub(crate) bias: &'a [f32],
    pub(crate) d_in: usize,
}

/// Cuts the flat parameters into the config's four layers.
fn split_layers<'a>(config: &SimSiamConfig, params: &'a [f32]) -> SslResult<[DenseLayer<'a>; 4]> {
    let expected = config.param_count()?;
    check_len(expected, params.len())?;
    let mut rest = params;
    let mut take = |len: usize| -> SslResult<&'a [f32]> {
        let (head, tail) = rest
            .split_at_checked(len)
            .ok_or(SslError::DimensionMismatch {
                expected,
                got: params.len(),
            })?;
        rest = tail;
        Ok(head)
    };
    let mut cut = |shape: LayerShape| -> SslResult<DenseLayer<'a>> {
        Ok(DenseLayer {
            weights: take(shape.weight_count()?)?,
            bias: take(shape.d_out)?,
            d_in: shape.d_in,
        })
    };
    let [l0, l1, l2, l3] = config.layers();
    Ok([cut(l0)?, cut(l1)?, cut(l2)?, cut(l3)?])
}

/// Writes Kaiming-normal weights and zero biases for `config` into `params`, drawing from
/// `rng` in the reference's order (`proj_w1`, `proj_w2`, `pred_w1`, `pred_w2`): the same
/// seed gives the same weights as `oxicuda-ssl`'s `SimSiam::new`.
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
    // The layers add up to `expected == params.len()`, so no split below can fail; were
    // one to, its error would still be the true one.
    let wrong_length = SslError::DimensionMismatch {
        expected,
        got: params.len(),
    };
    let mut rest = params;
    for shape in config.layers() {
        let (weights, tail) = core::mem::take(&mut rest)
            .split_at_mut_checked(shape.weight_count()?)
            .ok_or(wrong_length)?;
        let (bias, tail) = tail.split_at_mut_checked(shape.d_out).ok_or(wrong_length)?;
        rest = tail;
        rng.fill_normal(weights);
        let scale = libm::sqrtf(2.0_f32 / shape.d_in as f32);
        weights.iter_mut().for_each(|w| *w *= scale);
        bias.fill(0.0);
    }
    Ok(())
}

/// `out = L2(W2·ReLU(W1·x + b1) + b2)` without storing the hidden vector: it is made
/// [`HIDDEN_BLOCK`] units at a time on the stack and folded into `out` at once. The
/// scalar twin adds in exactly the reference's order (bias first, then left to right).
fn mlp2_into<K: Kernels>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    x: &[f32],
    out: &mut [f32],
) {
    out.iter_mut().zip(output.bias).for_each(|(o, b)| *o = *b);
    let d_hidden = hidden.bias.len();
    let block_rows = HIDDEN_BLOCK.min(d_hidden).max(1);
    // `block_rows·d_in ≤ d_hidden·d_in`, which `split_layers` proved fits in `usize`.
    let block_weights = block_rows.saturating_mul(hidden.d_in).max(1);
    let mut hidden_block = [0.0_f32; HIDDEN_BLOCK];
    let blocks = pieces(hidden.weights, block_weights).zip(pieces(hidden.bias, block_rows));
    // The first hidden unit of the current block: a running sum rather than
    // `index * block_rows`, so no arithmetic here can overflow (or panic when a build
    // turns on overflow checks).
    debug_assert_layout(hidden, output, x.len(), out.len());
    let mut first_unit = 0_usize;
    for (w1, b1) in blocks {
        // `b1.len() ≤ block_rows ≤ HIDDEN_BLOCK` by `pieces`.
        debug_assert!(
            b1.len() <= HIDDEN_BLOCK,
            "hidden block overflows its buffer"
        );
        let Some(h) = hidden_block.get_mut(..b1.len()) else {
            return;
        };
        h.iter_mut().zip(b1).for_each(|(hi, bi)| *hi = *bi);
        K::matvec_add(w1, hidden.d_in, 0, x, h);
        relu_in_place(h);
        K::matvec_add(output.weights, d_hidden, first_unit, h, out);
        first_unit = first_unit.saturating_add(b1.len());
    }
}

/// Debug builds check the shapes a validated head guarantees, so that a layout bug in
/// the model fails the tests instead of returning a plausible wrong `Ok` (the kernels cut
/// mismatched slices to their common prefix). Release builds compile it away and keep
/// the no-panic proof.
#[inline]
pub(crate) fn debug_assert_layout(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    x_len: usize,
    out_len: usize,
) {
    debug_assert_eq!(x_len, hidden.d_in, "input length is not the layer's d_in");
    debug_assert_eq!(
        out_len,
        output.bias.len(),
        "output length is not the layer's d_out"
    );
    debug_assert_eq!(output.d_in, hidden.bias.len(), "layers do not chain");
    for layer in [hidden, output] {
        debug_assert_eq!(
            Some(layer.weights.len()),
            layer.bias.len().checked_mul(layer.d_in),
            "weights are not d_out × d_in"
        );
    }
}

/// [`mlp2_into`] then L2 normalisation, or `NonFinite { location }` when the output
/// overflowed.
fn mlp2_normalized<K: Kernels>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    x: &[f32],
    out: &mut [f32],
    location: &'static str,
) -> SslResult<()> {
    mlp2_into::<K>(hidden, output, x, out);
    normalize_checked::<K>(out, location)
}

/// L2-normalises `out` in place, or `NonFinite { location }` when it overflowed (the sum
/// of squares is computed once and serves both).
pub(crate) fn normalize_checked<K: Kernels>(
    out: &mut [f32],
    location: &'static str,
) -> SslResult<()> {
    let sum_squares = K::sum_squares(out);
    if !sum_squares.is_finite() {
        return Err(SslError::NonFinite { location });
    }
    divide_by_norm::<K>(out, sum_squares);
    Ok(())
}

/// Hidden units per block of the pair path for wide hidden layers (more than
/// [`HIDDEN_BLOCK`] units): the output layer reads its weights in strips of this many
/// columns, one strip per row, and 4 KiB strips stream from DRAM much faster than 1 KiB
/// ones at the paper's dimensions (measured: 1.1–1.3× instead of 1.7–2× the DRAM bound).
const WIDE_HIDDEN_BLOCK: usize = 1024;

/// Two inputs through one two-layer MLP ([`mlp2_group`]), with hidden blocks of
/// [`HIDDEN_BLOCK`] units (2 KiB of stack) or, for hidden layers wider than that,
/// [`WIDE_HIDDEN_BLOCK`] units (8 KiB, in a frame of its own so that narrow heads never
/// reserve it).
pub(crate) fn mlp2_pair<K: Kernels>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
) {
    if hidden.bias.len() > HIDDEN_BLOCK {
        mlp2_pair_wide::<K>(hidden, output, xs, outs);
    } else {
        mlp2_group::<K, 2, HIDDEN_BLOCK>(hidden, output, xs, outs);
    }
}

#[inline(never)]
fn mlp2_pair_wide<K: Kernels>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
) {
    mlp2_group::<K, 2, WIDE_HIDDEN_BLOCK>(hidden, output, xs, outs);
}

/// [`mlp2_into`] for up to `G` inputs at once, sharing every weight load among them:
/// `outs[j] = W2·ReLU(W1·xs[j] + b1) + b2` (not normalised). The hidden layer is made
/// `B` units at a time for all inputs (`G·B·4` bytes of stack)
/// by [`matmat_add`], then folded into the outputs, so each weight is read from memory
/// once per call. Inputs beyond `G` (or beyond the shorter of `xs`, `outs`) are ignored.
///
/// Every output is summed in the same order as [`mlp2_into`] on the same twin, except
/// that the SIMD twin splits rows into [`matmat_add`]'s panels: on the scalar twin the
/// results equal `G` single calls bit for bit.
pub(crate) fn mlp2_group<K: Kernels, const G: usize, const B: usize>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
) {
    debug_assert!(
        xs.len() == outs.len() && xs.len() <= G,
        "group of the wrong size"
    );
    let count = xs.len().min(outs.len()).min(G);
    let xs = xs.get(..count).unwrap_or_default();
    let outs = outs.get_mut(..count).unwrap_or_default();
    for (x, out) in xs.iter().zip(outs.iter_mut()) {
        debug_assert_layout(hidden, output, x.len(), out.len());
        out.iter_mut().zip(output.bias).for_each(|(o, b)| *o = *b);
    }
    let d_hidden = hidden.bias.len();
    let block_rows = B.min(d_hidden).max(1);
    // `block_rows·d_in ≤ d_hidden·d_in`, which `split_layers` proved fits in `usize`.
    let block_weights = block_rows.saturating_mul(hidden.d_in).max(1);
    let mut hidden_blocks = [[0.0_f32; B]; G];
    let blocks = pieces(hidden.weights, block_weights).zip(pieces(hidden.bias, block_rows));
    let mut first_unit = 0_usize;
    for (w1, b1) in blocks {
        debug_assert!(b1.len() <= B, "hidden block overflows its buffer");
        let mut hs = hidden_blocks
            .each_mut()
            .map(|h| h.get_mut(..b1.len()).unwrap_or_default());
        let hs = hs.get_mut(..count).unwrap_or_default();
        for h in hs.iter_mut() {
            h.iter_mut().zip(b1).for_each(|(hi, bi)| *hi = *bi);
        }
        matmat_add::<K>(w1, hidden.d_in, 0, xs, hs);
        hs.iter_mut().for_each(|h| relu_in_place(h));
        let mut views: [&[f32]; G] = [&[]; G];
        views.iter_mut().zip(hs.iter()).for_each(|(v, h)| *v = h);
        let views = views.get(..count).unwrap_or_default();
        matmat_add::<K>(output.weights, d_hidden, first_unit, views, outs);
        first_unit = first_unit.saturating_add(b1.len());
    }
}

/// The SimSiam projector + predictor head over parameter storage `S`, with no allocation.
///
/// `S` is anything that derefs to the flat parameters (layout in
/// [`SimSiamConfig::param_count`]): a `&'static [f32]` in flash, used in place; a
/// `heapless::Vec<f32, N>` owned on the device ([`SimSiamHead::from_seed`]); a `Vec<f32>`
/// under `alloc` (that is what [`SimSiam`](crate::SimSiam) wraps). The length is checked
/// once, at construction, with checked arithmetic, and every parameter must be finite.
///
/// # Memory per call
/// `project_into`, `predict_into`: the caller's output (`d_out` floats), 1 KiB of stack
/// for one hidden block ([`HIDDEN_BLOCK`]), no heap. `loss_with_workspace`: the caller's
/// workspace of `4·d_out` floats and 2 KiB of stack (one hidden block per view: both
/// views go through each weight matrix together, so the weights are read once per call;
/// 8 KiB when a hidden layer is wider than [`HIDDEN_BLOCK`]), no heap. The batch calls
/// (`project_batch_into`, `loss_batch_with_workspace`, ...): 20 KiB of stack blocks
/// whatever `n` when every layer is at most 128 wide, 68 KiB otherwise, plus about 2 KiB
/// of frames (22.0 KiB measured on a Cortex-M4F), no heap.
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
/// head.project_into(&z1, &mut projected)?;
/// let mut workspace = [0.0_f32; 4 * 32];
/// let loss = head.loss_with_workspace(&z1, &z2, &mut workspace)?;
/// assert!((-1.0..=1.0).contains(&loss));
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SimSiamHead<S> {
    config: SimSiamConfig,
    params: S,
    backend: Backend,
}

impl<S: AsRef<[f32]>> SimSiamHead<S> {
    /// A head over `params`, laid out as [`SimSiamConfig::param_count`] describes.
    ///
    /// # Errors
    /// The config's errors; `DimensionMismatch { expected: param_count, got }` for a
    /// slice of the wrong length; `NonFinite { location: "params" }` when a parameter is
    /// NaN or infinite.
    pub fn from_params(config: SimSiamConfig, params: S) -> SslResult<Self> {
        split_layers(&config, params.as_ref())?;
        check_finite(params.as_ref(), "params")?;
        Ok(Self {
            config,
            params,
            backend: Backend::Simd,
        })
    }

    /// [`from_params`](Self::from_params) without the O(n) finiteness scan, for storage
    /// already checked by an earlier `from_params` (the C API checks once in
    /// `simsiam_model_init`, then rebuilds the head per call). Shapes are still checked,
    /// in O(1). A non-finite parameter is never unsafe and never panics: it gives a
    /// `NonFinite` output error or an unspecified finite output.
    ///
    /// # Errors
    /// As [`from_params`](Self::from_params), except `NonFinite`.
    ///
    /// # Examples
    /// ```
    /// use simsiam::{SimSiamConfig, SimSiamHead};
    /// let config = SimSiamConfig { d_encoder: 1, d_projector: 1, d_predictor: 1, d_out: 1 };
    /// let params = [1.0_f32; 8];
    /// let checked = SimSiamHead::from_params(config, &params[..])?;
    /// let again = SimSiamHead::from_checked_params(config, checked.params())?;
    /// assert_eq!(again.d_out(), 1);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn from_checked_params(config: SimSiamConfig, params: S) -> SslResult<Self> {
        split_layers(&config, params.as_ref())?;
        Ok(Self {
            config,
            params,
            backend: Backend::Simd,
        })
    }

    /// The same head running on the other kernel twin.
    #[must_use]
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Which kernel twin the head runs on ([`Backend::Simd`] unless changed).
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The dimensions.
    #[must_use]
    pub fn config(&self) -> &SimSiamConfig {
        &self.config
    }

    /// The projector output dimension (= predictor input and output dimension).
    #[must_use]
    pub fn d_out(&self) -> usize {
        self.config.d_out
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

    pub(crate) fn layers(&self) -> SslResult<[DenseLayer<'_>; 4]> {
        split_layers(&self.config, self.params.as_ref())
    }

    /// Projects an encoder output: `out = L2(W2·ReLU(W1·z + b1) + b2)`.
    ///
    /// # Errors
    /// `DimensionMismatch` when `z.len() != d_encoder`, then when `out.len() != d_out`;
    /// `NonFinite { location: "z" }` for a NaN/infinite input and
    /// `NonFinite { location: "projector output" }` when the result overflows.
    pub fn project_into(&self, z: &[f32], out: &mut [f32]) -> SslResult<()> {
        match self.backend {
            Backend::Simd => self.project_into_with::<Simd>(z, out),
            Backend::Scalar => self.project_into_with::<Scalar>(z, out),
        }
    }

    /// [`project_into`](Self::project_into) on the kernels `K` chosen at compile time,
    /// whatever the head's [`Backend`]: only `K`'s code is linked.
    ///
    /// # Errors
    /// As [`project_into`](Self::project_into).
    pub fn project_into_with<K: Kernels>(&self, z: &[f32], out: &mut [f32]) -> SslResult<()> {
        check_len(self.config.d_encoder, z.len())?;
        check_len(self.config.d_out, out.len())?;
        check_finite(z, "z")?;
        let [w1, w2, _, _] = self.layers()?;
        mlp2_normalized::<K>(&w1, &w2, z, out, "projector output")
    }

    /// Applies the predictor to a projection: `out = L2(W2·ReLU(W1·p + b1) + b2)`.
    ///
    /// # Errors
    /// `DimensionMismatch` when `p.len() != d_out`, then when `out.len() != d_out`;
    /// `NonFinite { location: "p" }` or `{ location: "predictor output" }`.
    pub fn predict_into(&self, p: &[f32], out: &mut [f32]) -> SslResult<()> {
        match self.backend {
            Backend::Simd => self.predict_into_with::<Simd>(p, out),
            Backend::Scalar => self.predict_into_with::<Scalar>(p, out),
        }
    }

    /// [`predict_into`](Self::predict_into) on the kernels `K` chosen at compile time.
    ///
    /// # Errors
    /// As [`predict_into`](Self::predict_into).
    pub fn predict_into_with<K: Kernels>(&self, p: &[f32], out: &mut [f32]) -> SslResult<()> {
        check_len(self.config.d_out, p.len())?;
        check_len(self.config.d_out, out.len())?;
        check_finite(p, "p")?;
        let [_, _, w1, w2] = self.layers()?;
        mlp2_normalized::<K>(&w1, &w2, p, out, "predictor output")
    }

    /// The symmetric SimSiam loss `(D(p1, z2') + D(p2, z1')) / 2`, `D(a, b) = −a·b`,
    /// where `zi' = project(zi)` and `pi = predict(zi')`. In `[-1, 1]` up to rounding.
    ///
    /// `workspace` holds the two projections and the two predictions; it must hold at
    /// least [`SimSiamConfig::loss_workspace_len`] = `4·d_out` floats (extra is unused).
    ///
    /// # Errors
    /// `DimensionMismatch` when `z1` or then `z2` is not `d_encoder` long;
    /// `CapacityTooSmall` for a short workspace; `NonFinite` as in
    /// [`project_into`](Self::project_into) (locations `"z1"`, `"z2"`).
    pub fn loss_with_workspace(
        &self,
        z1: &[f32],
        z2: &[f32],
        workspace: &mut [f32],
    ) -> SslResult<f32> {
        match self.backend {
            Backend::Simd => self.loss_with_workspace_with::<Simd>(z1, z2, workspace),
            Backend::Scalar => self.loss_with_workspace_with::<Scalar>(z1, z2, workspace),
        }
    }

    /// [`loss_with_workspace`](Self::loss_with_workspace) on the kernels `K` chosen at
    /// compile time.
    ///
    /// # Errors
    /// As [`loss_with_workspace`](Self::loss_with_workspace).
    pub fn loss_with_workspace_with<K: Kernels>(
        &self,
        z1: &[f32],
        z2: &[f32],
        workspace: &mut [f32],
    ) -> SslResult<f32> {
        check_len(self.config.d_encoder, z1.len())?;
        check_len(self.config.d_encoder, z2.len())?;
        let needed = self.config.loss_workspace_len()?;
        let too_small = SslError::CapacityTooSmall {
            needed,
            capacity: workspace.len(),
        };
        // `d_out > 0` for every constructed head; `max(1)` lets the compiler see that
        // `chunks_exact_mut` cannot panic even where it cannot see the construction.
        let mut parts = workspace.chunks_exact_mut(self.config.d_out.max(1));
        let (Some(z1p), Some(z2p), Some(p1), Some(p2)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(too_small);
        };
        check_finite(z1, "z1")?;
        check_finite(z2, "z2")?;
        let [pw1, pw2, qw1, qw2] = self.layers()?;
        // Two-view passes: each weight matrix is read once for both views.
        mlp2_pair::<K>(&pw1, &pw2, &[z1, z2], &mut [&mut *z1p, &mut *z2p]);
        normalize_checked::<K>(z1p, "projector output")?;
        normalize_checked::<K>(z2p, "projector output")?;
        mlp2_pair::<K>(&qw1, &qw2, &[&*z1p, &*z2p], &mut [&mut *p1, &mut *p2]);
        normalize_checked::<K>(p1, "predictor output")?;
        normalize_checked::<K>(p2, "predictor output")?;
        Ok((-K::dot_add(0.0, p1, z2p) + -K::dot_add(0.0, p2, z1p)) * 0.5)
    }

    /// [`project_into`](Self::project_into) returning a fixed-capacity vector.
    ///
    /// # Errors
    /// `CapacityTooSmall` when `N < d_out`; otherwise as `project_into`.
    pub fn project_heapless<const N: usize>(&self, z: &[f32]) -> SslResult<heapless::Vec<f32, N>> {
        let mut out = zeroed_heapless::<N>(self.config.d_out)?;
        self.project_into(z, &mut out)?;
        Ok(out)
    }

    /// [`predict_into`](Self::predict_into) returning a fixed-capacity vector.
    ///
    /// # Errors
    /// `CapacityTooSmall` when `N < d_out`; otherwise as `predict_into`.
    pub fn predict_heapless<const N: usize>(&self, p: &[f32]) -> SslResult<heapless::Vec<f32, N>> {
        let mut out = zeroed_heapless::<N>(self.config.d_out)?;
        self.predict_into(p, &mut out)?;
        Ok(out)
    }
}

fn zeroed_heapless<const N: usize>(len: usize) -> SslResult<heapless::Vec<f32, N>> {
    let mut out = heapless::Vec::new();
    out.resize(len, 0.0)
        .map_err(|_| SslError::CapacityTooSmall {
            needed: len,
            capacity: N,
        })?;
    Ok(out)
}

impl<S: AsRef<[f32]> + AsMut<[f32]>> SimSiamHead<S> {
    /// Replaces the predictor with an exact identity: `pred_w1` row `i` is `+e_i`, row
    /// `d_out + i` is `−e_i`; `pred_w2` row `i` is `+1` at column `i`, `−1` at column
    /// `d_out + i`; biases zero. Then `predict(project(z)) == project(z)` and
    /// `loss(z, z) == −1` up to rounding.
    ///
    /// # Errors
    /// `InvalidParameter { name: "d_predictor", .. }` unless `d_predictor == 2·d_out`.
    pub fn set_identity_predictor(&mut self) -> SslResult<()> {
        let d_out = self.config.d_out;
        if Some(self.config.d_predictor) != d_out.checked_mul(2) {
            return Err(SslError::InvalidParameter {
                name: "d_predictor",
                reason: "identity predictor requires d_predictor == 2 * d_out",
            });
        }
        let [proj1, proj2, pred1, _] = self.config.layers();
        // Both counts fit in `usize` (construction checked the total); saturating keeps
        // the sum panic-free under overflow checks too.
        let start = proj1.param_count()?.saturating_add(proj2.param_count()?);
        let expected = self.config.param_count()?;
        let params = self.params.as_mut();
        // Construction checked the length, but storage whose `as_mut` changed length since
        // must not reach the splits below.
        check_len(expected, params.len())?;
        let wrong_length = SslError::DimensionMismatch {
            expected,
            got: params.len(),
        };
        let predictor = params.get_mut(start..).ok_or(wrong_length)?;
        predictor.fill(0.0);
        let (w1, rest) = predictor
            .split_at_mut_checked(pred1.weight_count()?)
            .ok_or(wrong_length)?;
        // rest = b1 [2·d_out], w2 [d_out × 2·d_out], b2 [d_out]
        let w2 = rest.get_mut(pred1.d_out..).unwrap_or_default();
        // Rows and their targets are paired by `zip` over ranges, not computed from an
        // index, so nothing here can overflow; `pieces_mut` rather than `chunks_exact_mut`,
        // whose random-access `zip` keeps a bounds check where it is not inlined.
        let targets = (0..d_out)
            .map(|column| (column, 1.0))
            .chain((0..d_out).map(|column| (column, -1.0)));
        for (row, (column, sign)) in pieces_mut(w1, d_out).zip(targets) {
            if let Some(w) = row.get_mut(column) {
                *w = sign;
            }
        }
        let w2_rows = pieces_mut(w2, self.config.d_predictor);
        for (row, i) in w2_rows.zip(0..d_out) {
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
    /// Initialises parameters on the device from a seed, into fixed-capacity storage:
    /// the same weights as [`SimSiam::new`](crate::SimSiam) with the same seed.
    ///
    /// `N` must be at least [`SimSiamConfig::param_count`]. The vector is built in place
    /// in the return value; for a large `N`, keep the head in a `static` rather than on a
    /// small stack.
    ///
    /// # Errors
    /// The config's errors; `CapacityTooSmall` when `N` is too small.
    pub fn from_seed(config: SimSiamConfig, rng: &mut LcgRng) -> SslResult<Self> {
        let count = config.param_count()?;
        let mut params = zeroed_heapless::<N>(count)?;
        init_params(&config, rng, &mut params)?;
        Self::from_params(config, params)
    }
}
