//! The step's scratch: how long it is and how it is cut into the activations of both
//! views, the gradient rows and the parameter gradients.

use crate::error::{SslError, SslResult};
use crate::model::{Architecture, Layer, MAX_LAYERS};

/// What one view keeps of the forward pass for the backward one.
pub(crate) struct ViewBuffers<'a> {
    /// Per layer (projector first): its output after BatchNorm and ReLU, `n × d_out`.
    pub(crate) outs: [&'a mut [f32]; MAX_LAYERS],
    /// Per BatchNorm layer: the normalised pre-activations `x̂`, `n × d_out` (else empty).
    pub(crate) normalized: [&'a mut [f32]; MAX_LAYERS],
    /// Per BatchNorm layer, `d_out` each, one after the other (else empty): the batch
    /// mean, the sum of squared deviations, `1/√(var + eps)`, and in the backward pass
    /// `Σ_rows dy` and `Σ_rows dy·x̂`.
    pub(crate) stats: [&'a mut [f32]; MAX_LAYERS],
    /// The projector's and the predictor's outputs as unit vectors, `n × d_out` each.
    pub(crate) units: [&'a mut [f32]; 2],
    /// The divisors of those unit vectors, `max(‖o‖, floor)`, `n` each.
    pub(crate) norms: [&'a mut [f32]; 2],
    /// The gradient reaching this view's projection as a *target* (only without
    /// stop-gradient), `n × d_out`.
    pub(crate) target_grad: &'a mut [f32],
}

/// The whole scratch of a step, cut.
pub(crate) struct StepBuffers<'a> {
    pub(crate) views: [ViewBuffers<'a>; 2],
    /// Two `n × widest` buffers the backward pass ping-pongs between.
    pub(crate) grad_rows: [&'a mut [f32]; 2],
    /// `dL/dparams`, the flat layout.
    pub(crate) param_grads: &'a mut [f32],
    /// The rest: the encoder's part ([`crate::model::Encoder`]'s training buffers), empty
    /// without one.
    pub(crate) encoder: &'a mut [f32],
}

/// Vectors of `d_out` per BatchNorm layer and view in [`ViewBuffers::stats`].
const STATS: usize = 5;

const OVERFLOW: SslError = SslError::InvalidParameter {
    name: "n",
    reason: "training scratch length overflows usize",
};

/// Floats one layer's activations take for one view.
fn layer_len(layer: &Layer, n: usize) -> Option<usize> {
    let out = n.checked_mul(layer.d_out)?;
    if layer.batch_norm.is_some() {
        out.checked_mul(2)?
            .checked_add(layer.d_out.checked_mul(STATS)?)
    } else {
        Some(out)
    }
}

/// The widest row a gradient buffer holds: the encoder width or any layer's.
fn widest(architecture: &Architecture) -> usize {
    architecture.d_encoder().max(architecture.max_width())
}

/// How many `f32` of `scratch` one [`Sgd::step`](super::Sgd::step) on a batch of `n`
/// pairs needs:
/// `2·(Σ_layers n·d_out·(1 + bn) + 5·d_out·bn + 3·n·d_out + 2·n) + 2·n·max(d_encoder,
/// widest layer) + param_count`, with `bn` 1 for a layer with BatchNorm, else 0: both
/// views' layer outputs (and BatchNorm's normalised values, statistics and gradient sums), their unit
/// projections and predictions with their norms, the target gradients, two rows buffers
/// for the backward pass, and the parameter gradients.
///
/// With an encoder, add the encoder's part after that: per view, the activations of
/// every layer that is not in place (and of an in-place one first or after a ReLU) and
/// each BatchNorm's saved buffer (`n·C·T + 5·C`), for `n` samples; two gradient buffers
/// of `n` samples of its widest activation (input included); a convolution's scratch;
/// and one BatchNorm's parameters (see [`crate::model::Encoder`]). The head's input
/// width is then the encoder's output.
///
/// For the reference's default head (64/128/64/32) at `n = 8` that is 24 352 floats
/// (95.1 KiB); at `n = 64`, 78 336 (306 KiB). The official head at the paper's size
/// (2048/2048/512) needs 15 150 112 floats at `n = 8` (58 MiB, mostly the parameter
/// gradients: `param_count` is 14 692 352).
///
/// # Errors
/// The architecture's errors; `InvalidParameter { name: "n", .. }` on overflow.
///
/// # Examples
/// ```
/// use simsiam::{SimSiamConfig, model::Architecture, train::scratch_len};
/// let reference = Architecture::reference(SimSiamConfig::default())?;
/// assert_eq!(scratch_len(&reference, 8)?, 24_352);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn scratch_len(architecture: &Architecture, n: usize) -> SslResult<usize> {
    let head = head_scratch_len(architecture, n)?;
    match architecture.active_encoder() {
        None => Ok(head),
        Some(encoder) => head
            .checked_add(encoder.train_len(n).map_err(|_| OVERFLOW)?)
            .ok_or(OVERFLOW),
    }
}

/// [`scratch_len`] of the head's part (all of it without an encoder): the parameter
/// gradients end it.
pub(crate) fn head_scratch_len(architecture: &Architecture, n: usize) -> SslResult<usize> {
    architecture.validate()?;
    let param_count = architecture.param_count()?;
    let per_view = architecture
        .layers()
        .try_fold(0_usize, |total, layer| {
            total.checked_add(layer_len(layer, n)?)
        })
        .and_then(|layers| {
            let outputs = n.checked_mul(architecture.d_out())?.checked_mul(3)?;
            let norms = n.checked_mul(2)?;
            layers.checked_add(outputs)?.checked_add(norms)
        })
        .ok_or(OVERFLOW)?;
    let grad_rows = n
        .checked_mul(widest(architecture))
        .and_then(|rows| rows.checked_mul(2))
        .ok_or(OVERFLOW)?;
    per_view
        .checked_mul(2)
        .and_then(|views| views.checked_add(grad_rows))
        .and_then(|total| total.checked_add(param_count))
        .ok_or(OVERFLOW)
}

/// How many `f32` the momentum buffer of an [`Sgd`](super::Sgd) for `architecture`
/// holds: [`Architecture::param_count`] (one per parameter; the untrained ones stay 0).
///
/// # Errors
/// The architecture's errors.
///
/// # Examples
/// ```
/// use simsiam::{SimSiamConfig, model::Architecture, train::momentum_len};
/// let reference = Architecture::reference(SimSiamConfig::default())?;
/// assert_eq!(momentum_len(&reference)?, 16_640);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn momentum_len(architecture: &Architecture) -> SslResult<usize> {
    architecture.validate()?;
    architecture.param_count()
}

/// The parameter gradients `dL/dparams` (flat layout, frozen biases and running
/// statistics 0) that the last [`Sgd::step`](super::Sgd::step) on `n` pairs left in
/// `scratch`: without an encoder its floats `scratch_len − param_count .. scratch_len`
/// (with one, they end where the encoder's part starts).
///
/// # Errors
/// As [`scratch_len`]; `CapacityTooSmall` when `scratch` is shorter than that.
pub fn param_grads<'a>(
    architecture: &Architecture,
    n: usize,
    scratch: &'a [f32],
) -> SslResult<&'a [f32]> {
    let needed = scratch_len(architecture, n)?;
    let end = head_scratch_len(architecture, n)?;
    let start = end.saturating_sub(architecture.param_count()?);
    if scratch.len() < needed {
        return Err(SslError::CapacityTooSmall {
            needed,
            capacity: scratch.len(),
        });
    }
    scratch.get(start..end).ok_or(SslError::CapacityTooSmall {
        needed,
        capacity: scratch.len(),
    })
}

/// The next `len` floats of `rest`.
fn take<'a>(rest: &mut &'a mut [f32], len: usize) -> Option<&'a mut [f32]> {
    let (head, tail) = core::mem::take(rest).split_at_mut_checked(len)?;
    *rest = tail;
    Some(head)
}

fn take_view<'a>(
    architecture: &Architecture,
    n: usize,
    rest: &mut &'a mut [f32],
) -> Option<ViewBuffers<'a>> {
    let mut outs: [&mut [f32]; MAX_LAYERS] = Default::default();
    let mut normalized: [&mut [f32]; MAX_LAYERS] = Default::default();
    let mut stats: [&mut [f32]; MAX_LAYERS] = Default::default();
    let slots = outs
        .iter_mut()
        .zip(normalized.iter_mut())
        .zip(stats.iter_mut());
    for (layer, ((out, xhat), stat)) in architecture.layers().zip(slots) {
        let rows = n.checked_mul(layer.d_out)?;
        *out = take(rest, rows)?;
        if layer.batch_norm.is_some() {
            *xhat = take(rest, rows)?;
            *stat = take(rest, layer.d_out.checked_mul(STATS)?)?;
        }
    }
    let d_out = architecture.d_out();
    let rows = n.checked_mul(d_out)?;
    let units = [take(rest, rows)?, take(rest, rows)?];
    let norms = [take(rest, n)?, take(rest, n)?];
    let target_grad = take(rest, rows)?;
    Some(ViewBuffers {
        outs,
        normalized,
        stats,
        units,
        norms,
        target_grad,
    })
}

/// Cuts `scratch` (at least [`scratch_len`]`(architecture, n)` floats) for a step.
pub(crate) fn carve<'a>(
    architecture: &Architecture,
    n: usize,
    scratch: &'a mut [f32],
) -> SslResult<StepBuffers<'a>> {
    let needed = scratch_len(architecture, n)?;
    let capacity = scratch.len();
    let too_small = SslError::CapacityTooSmall { needed, capacity };
    if capacity < needed {
        return Err(too_small);
    }
    let mut rest = scratch;
    let first = take_view(architecture, n, &mut rest).ok_or(too_small)?;
    let second = take_view(architecture, n, &mut rest).ok_or(too_small)?;
    let rows = n.checked_mul(widest(architecture)).ok_or(OVERFLOW)?;
    let grad_rows = [
        take(&mut rest, rows).ok_or(too_small)?,
        take(&mut rest, rows).ok_or(too_small)?,
    ];
    let param_grads = take(&mut rest, architecture.param_count()?).ok_or(too_small)?;
    Ok(StepBuffers {
        views: [first, second],
        grad_rows,
        param_grads,
        encoder: rest,
    })
}

/// Where a step on `n` pairs leaves the two views' projector outputs in its scratch:
/// `z1s`, `z2s` (`n × d_out` each, from the forward pass in training mode, before any L2
/// normalisation) at `scratch[ranges[0]]`, `scratch[ranges[1]]`. Feed them to a
/// [`CollapseMonitor`](super::CollapseMonitor).
///
/// # Errors
/// As [`scratch_len`].
pub fn projection_ranges(
    architecture: &Architecture,
    n: usize,
) -> SslResult<[core::ops::Range<usize>; 2]> {
    let total = head_scratch_len(architecture, n)?;
    let shared = n
        .checked_mul(widest(architecture))
        .and_then(|rows| rows.checked_mul(2))
        .and_then(|rows| rows.checked_add(architecture.param_count().ok()?))
        .ok_or(OVERFLOW)?;
    let per_view = total.saturating_sub(shared) / 2;
    let last = architecture.projector.layers().len().saturating_sub(1);
    let before = architecture
        .layers()
        .take(last)
        .try_fold(0_usize, |total, layer| {
            total.checked_add(layer_len(layer, n)?)
        })
        .ok_or(OVERFLOW)?;
    let len = n.checked_mul(architecture.d_out()).ok_or(OVERFLOW)?;
    let first_end = before.checked_add(len).ok_or(OVERFLOW)?;
    let second_start = before.checked_add(per_view).ok_or(OVERFLOW)?;
    let second_end = second_start.checked_add(len).ok_or(OVERFLOW)?;
    Ok([before..first_end, second_start..second_end])
}
