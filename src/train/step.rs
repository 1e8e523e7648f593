//! One step's forward pass in training mode and its backward pass, into the caller's
//! scratch: the loss, the parameter gradients and the input gradients. Nothing here
//! changes the head; [`super::sgd`] commits the update.

use super::buffers::{StepBuffers, ViewBuffers};
use crate::error::{SslError, SslResult};
use crate::kernels::{Kernels, NORM_FLOOR, matmat_add, pieces, pieces_mut, relu_in_place};
use crate::layers::linear::GEMM_FORWARD;
use crate::model::layout::{DenseView, LayerOffsets, Layout};
use crate::model::{Architecture, COSINE_EPS, Layer, MAX_LAYERS};

/// Inputs one weight pass of the forward serves (`matmat_add`'s group).
const GROUP: usize = 8;

/// Every layer viewed in `params`, projector first, with its description and offsets.
pub(crate) struct LayerViews<'a> {
    pub(crate) views: [DenseView<'a>; MAX_LAYERS],
    pub(crate) specs: [Layer; MAX_LAYERS],
    pub(crate) offsets: [LayerOffsets; MAX_LAYERS],
    pub(crate) count: usize,
    pub(crate) projector_len: usize,
}

impl<'a> LayerViews<'a> {
    pub(crate) fn new(
        architecture: &Architecture,
        layout: &Layout,
        params: &'a [f32],
    ) -> SslResult<Self> {
        let changed = SslError::DimensionMismatch {
            expected: layout.param_count,
            got: params.len(),
        };
        if params.len() != layout.param_count {
            return Err(changed);
        }
        let mut views = [DenseView::EMPTY; MAX_LAYERS];
        let mut specs = [Layer::linear(0, 0); MAX_LAYERS];
        let mut count = 0_usize;
        let slots = views.iter_mut().zip(specs.iter_mut());
        for ((layer, offsets), (view, spec)) in architecture.layers().zip(&layout.layers).zip(slots)
        {
            *view = DenseView::new(layer, offsets, params).ok_or(changed)?;
            *spec = *layer;
            count = count.saturating_add(1);
        }
        Ok(Self {
            views,
            specs,
            offsets: layout.layers,
            count,
            projector_len: architecture.projector.layers().len(),
        })
    }
}

/// `n` rows of `d` as an iterator (a zero width gives none).
fn rows(v: &[f32], d: usize) -> impl Iterator<Item = &[f32]> {
    pieces(v, d).filter(move |_| d > 0)
}

fn rows_mut(v: &mut [f32], d: usize) -> impl Iterator<Item = &mut [f32]> {
    pieces_mut(v, d).filter(move |_| d > 0)
}

/// `out` rows `= b` (or 0), then `+= W·x` for every row of `input`, the weights read once
/// per [`GROUP`] rows.
fn dense_forward<K: Kernels>(
    layer: &DenseView<'_>,
    n: usize,
    weights_t: Option<&[f32]>,
    input: &[f32],
    out: &mut [f32],
) {
    for row in rows_mut(out, layer.d_out) {
        layer.init(row, 0);
    }
    if GEMM_FORWARD && transposed_forward(layer, n) {
        // out += input·Wᵀ with `W` read in place: the same sums in the same order.
        let (d_in, d_out) = (layer.d_in, layer.d_out);
        K::gemm_nt_add(n, d_out, d_in, input, d_in, layer.weights, d_in, out, d_out);
        return;
    }
    if let Some(weights_t) = weights_t {
        // out += input·Wᵀ with Wᵀ stored `d_in × d_out`: the same sums in the same order.
        let (d_in, d_out) = (layer.d_in, layer.d_out);
        K::gemm_nn_add(n, d_out, d_in, input, d_in, weights_t, d_out, out, d_out);
        return;
    }
    let mut inputs = rows(input, layer.d_in);
    let mut outputs = rows_mut(out, layer.d_out);
    loop {
        let mut xs: [&[f32]; GROUP] = [&[]; GROUP];
        let mut ys: [&mut [f32]; GROUP] = Default::default();
        let mut count = 0_usize;
        // The slots first: `zip` pulls from its first iterator first, and an input
        // pulled when the slots are full would be lost.
        for ((x_slot, y_slot), (x, y)) in xs
            .iter_mut()
            .zip(ys.iter_mut())
            .zip(inputs.by_ref().zip(outputs.by_ref()))
        {
            *x_slot = x;
            *y_slot = y;
            count = count.saturating_add(1);
        }
        if count == 0 {
            break;
        }
        let xs = xs.get(..count).unwrap_or_default();
        let ys = ys.get_mut(..count).unwrap_or_default();
        matmat_add::<K>(layer.weights, layer.d_in, 0, xs, ys);
        if count < GROUP {
            break;
        }
    }
}

/// From this many pairs on, the forward's products run as `X·Wᵀ` in register blocks
/// without horizontal sums: with [`Kernels::gemm_nt_add`] on `W` in place where
/// [`GEMM_FORWARD`] (x86 with FMA, whose `gemm_nt_add` packs `W` by register
/// transposes), else with [`Kernels::gemm_nn_add`] over a transposed copy of the
/// weights (made once per step, in the parameter-gradient buffer, which the backward
/// pass only needs later). Both sum in the same order. Below it the dot-product form
/// (`matmat_add`) wins (BENCHMARKS.md, "Measurements behind design choices").
const TRANSPOSED_FORWARD_PAIRS: usize = 16;

/// Layers with more weights than this keep the dot-product form whatever the batch:
/// transposing a matrix that does not fit in the L2 cache costs more than the products
/// gain (BENCHMARKS.md, "Measurements behind design choices").
const TRANSPOSED_FORWARD_MAX_WEIGHTS: usize = 64 * 1024;

/// Whether `layer`'s forward uses the transposed weights at batch `n`.
fn transposed_forward(layer: &DenseView<'_>, n: usize) -> bool {
    n >= TRANSPOSED_FORWARD_PAIRS && layer.weights.len() <= TRANSPOSED_FORWARD_MAX_WEIGHTS
}

/// The `W` (`d_out × d_in`) of every layer whose forward at batch `n` uses it transposed,
/// transposed into `weights_t` at the same offset.
fn transpose_weights(layers: &LayerViews<'_>, n: usize, weights_t: &mut [f32]) {
    let active = layers.views.iter().zip(&layers.offsets).take(layers.count);
    for (layer, offsets) in active.filter(|(layer, _)| transposed_forward(layer, n)) {
        let (d_in, d_out) = (layer.d_in, layer.d_out);
        let Some(dst) = d_in
            .checked_mul(d_out)
            .and_then(|count| offsets.weights.checked_add(count))
            .and_then(|end| weights_t.get_mut(offsets.weights..end))
        else {
            continue;
        };
        for (row, r) in rows(layer.weights, d_in).zip(0..d_out) {
            let mut at = r;
            for w in row {
                if let Some(d) = dst.get_mut(at) {
                    *d = *w;
                }
                at = at.wrapping_add(d_out);
            }
        }
    }
}

/// The three forward statistics of a BatchNorm layer's scratch: mean, sum of squared
/// deviations, `1/√(var + eps)`; then the two backward sums.
fn split_stats(stats: &mut [f32], d: usize) -> Option<[&mut [f32]; 5]> {
    let mut parts = pieces_mut(stats, d.max(1));
    let out = [
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    ];
    Some(out)
}

/// BatchNorm in training mode on `out` (`n × d`, the layer's sums): the batch mean and
/// the biased variance per channel (two passes, as PyTorch's CPU kernel), `x̂` into
/// `normalized`, `γ·x̂ + β` into `out`.
fn batch_norm_forward(
    layer: &DenseView<'_>,
    n: usize,
    out: &mut [f32],
    normalized: &mut [f32],
    stats: &mut [f32],
) {
    let Some(batch_norm) = layer.batch_norm else {
        return;
    };
    let d = layer.d_out;
    let Some([mean, var_sum, inv_std, ..]) = split_stats(stats, d) else {
        return;
    };
    let count = n as f32;
    mean.fill(0.0);
    for row in rows(out, d) {
        mean.iter_mut().zip(row).for_each(|(m, x)| *m += *x);
    }
    mean.iter_mut().for_each(|m| *m /= count);
    var_sum.fill(0.0);
    for row in rows(out, d) {
        for ((s, x), m) in var_sum.iter_mut().zip(row).zip(mean.iter()) {
            let deviation = *x - *m;
            *s += deviation * deviation;
        }
    }
    for (inv, s) in inv_std.iter_mut().zip(var_sum.iter()) {
        *inv = 1.0 / libm::sqrtf(*s / count + batch_norm.eps);
    }
    for (row, xhat_row) in rows_mut(out, d).zip(rows_mut(normalized, d)) {
        let channels = row
            .iter_mut()
            .zip(xhat_row)
            .zip(mean.iter().zip(inv_std.iter()));
        for (((y, xhat), (m, inv)), c) in channels.zip(0..d) {
            *xhat = (*y - *m) * *inv;
            let gamma = batch_norm
                .gamma
                .and_then(|g| g.get(c))
                .copied()
                .unwrap_or(1.0);
            let beta = batch_norm
                .beta
                .and_then(|b| b.get(c))
                .copied()
                .unwrap_or(0.0);
            *y = *xhat * gamma + beta;
        }
    }
}

/// Rows of `out` (`n × d`) as unit vectors into `units`, each divided by
/// `max(‖row‖, floor)`, which goes into `norms`.
fn normalize_rows<K: Kernels>(
    out: &[f32],
    d: usize,
    floor: f32,
    units: &mut [f32],
    norms: &mut [f32],
    location: &'static str,
) -> SslResult<()> {
    for ((row, unit), norm) in rows(out, d).zip(rows_mut(units, d)).zip(norms.iter_mut()) {
        let sum_squares = K::sum_squares(row);
        if !sum_squares.is_finite() {
            return Err(SslError::NonFinite { location });
        }
        *norm = libm::sqrtf(sum_squares).max(floor);
        unit.iter_mut().zip(row).for_each(|(u, x)| *u = *x / *norm);
    }
    Ok(())
}

/// Backward of `u = o / max(‖o‖, floor)` in place: `g ← (g − (g·u)·u) / m`, or `g / m`
/// where the floor applied.
fn normalize_backward<K: Kernels>(
    grads: &mut [f32],
    units: &[f32],
    norms: &[f32],
    d: usize,
    floor: f32,
) {
    for ((g, u), norm) in rows_mut(grads, d).zip(rows(units, d)).zip(norms) {
        if *norm > floor {
            let along = K::dot_add(0.0, g, u);
            g.iter_mut().zip(u).for_each(|(gi, ui)| *gi -= along * *ui);
        }
        g.iter_mut().for_each(|gi| *gi /= *norm);
    }
}

/// The floors under the norms that make the projection and the prediction unit vectors:
/// the reference's L2 floor where the architecture normalises, else PyTorch's cosine one.
fn unit_floors(architecture: &Architecture) -> [f32; 2] {
    let floor = |normalize: bool| if normalize { NORM_FLOOR } else { COSINE_EPS };
    [
        floor(architecture.normalize_projection),
        floor(architecture.normalize_prediction),
    ]
}

/// One view's forward pass in training mode; fills its buffers.
fn forward_view<K: Kernels>(
    architecture: &Architecture,
    layers: &LayerViews<'_>,
    x: &[f32],
    n: usize,
    view: &mut ViewBuffers<'_>,
    weights_t: Option<&[f32]>,
) -> SslResult<()> {
    let d_out = architecture.d_out();
    let floors = unit_floors(architecture);
    let ViewBuffers {
        outs,
        normalized,
        stats,
        units,
        norms,
        ..
    } = view;
    let [projection_unit, prediction_unit] = units;
    let [projection_norm, prediction_norm] = norms;
    let mut input: &[f32] = x;
    let slots = outs
        .iter_mut()
        .zip(normalized.iter_mut())
        .zip(stats.iter_mut());
    let active = layers.views.iter().take(layers.count);
    for ((layer, ((out, xhat), stat)), index) in active.zip(slots).zip(0..MAX_LAYERS) {
        if index == layers.projector_len {
            // The predictor's input: the projection, as the architecture passes it on.
            normalize_rows::<K>(
                input,
                d_out,
                floors[0],
                projection_unit,
                projection_norm,
                "projector output",
            )?;
            if architecture.normalize_projection {
                input = projection_unit;
            }
        }
        let layer_t = weights_t
            .filter(|_| transposed_forward(layer, n))
            .and_then(|all| {
                let offsets = layers.offsets.get(index)?;
                let end = offsets.weights.checked_add(layer.weights.len())?;
                all.get(offsets.weights..end)
            });
        dense_forward::<K>(layer, n, layer_t, input, out);
        batch_norm_forward(layer, n, out, xhat, stat);
        if layer.relu {
            relu_in_place(out);
        }
        input = out;
    }
    normalize_rows::<K>(
        input,
        d_out,
        floors[1],
        prediction_unit,
        prediction_norm,
        "predictor output",
    )
}

/// Where one layer's backward reads from and writes to.
struct LayerBackward<'s> {
    input: &'s [f32],
    out: &'s [f32],
    normalized: &'s [f32],
    stats: &'s mut [f32],
}

/// One layer's backward: `grads` holds `dL/d(out)` (`n × d_out`) and is turned into
/// `dL/d(sums)` in place; parameter gradients are added into `param_grads`; `dx`, when
/// given, receives `dL/d(input)` (`n × d_in`).
#[allow(clippy::too_many_arguments)]
fn layer_backward<K: Kernels>(
    layer: &DenseView<'_>,
    spec: &Layer,
    offsets: &LayerOffsets,
    n: usize,
    parts: LayerBackward<'_>,
    grads: &mut [f32],
    param_grads: &mut [f32],
    dx: Option<&mut [f32]>,
) {
    let (d_in, d_out) = (layer.d_in, layer.d_out);
    if layer.relu {
        // ReLU's gradient: 1 where the output is positive, 0 at 0 and below.
        grads
            .iter_mut()
            .zip(parts.out)
            .filter(|(_, y)| y.is_nan() || **y <= 0.0)
            .for_each(|(g, _)| *g = 0.0);
    }
    if let Some(batch_norm) = layer.batch_norm
        && let Some([_, _, inv_std, sum_g, sum_gx]) = split_stats(parts.stats, d_out)
    {
        sum_g.fill(0.0);
        sum_gx.fill(0.0);
        for (g_row, xhat_row) in rows(grads, d_out).zip(rows(parts.normalized, d_out)) {
            let sums = sum_g.iter_mut().zip(sum_gx.iter_mut());
            for ((sg, sgx), (g, xhat)) in sums.zip(g_row.iter().zip(xhat_row)) {
                *sg += *g;
                *sgx += *g * *xhat;
            }
        }
        let vector = |start: Option<usize>| start.and_then(|s| Some(s..s.checked_add(d_out)?));
        if let Some(range) = vector(offsets.gamma)
            && let Some(d_gamma) = param_grads.get_mut(range)
        {
            d_gamma
                .iter_mut()
                .zip(sum_gx.iter())
                .for_each(|(d, s)| *d += *s);
        }
        if let Some(range) = vector(offsets.beta)
            && let Some(d_beta) = param_grads.get_mut(range)
        {
            d_beta
                .iter_mut()
                .zip(sum_g.iter())
                .for_each(|(d, s)| *d += *s);
        }
        // dL/da = (g − Σg/n − x̂·Σ(g·x̂)/n)·γ/σ, PyTorch's batch_norm_backward.
        let count = n as f32;
        for (g_row, xhat_row) in rows_mut(grads, d_out).zip(rows(parts.normalized, d_out)) {
            let per_channel = sum_g.iter().zip(sum_gx.iter()).zip(inv_std.iter());
            for (((g, xhat), ((sg, sgx), inv)), c) in g_row
                .iter_mut()
                .zip(xhat_row)
                .zip(per_channel)
                .zip(0..d_out)
            {
                let gamma = batch_norm
                    .gamma
                    .and_then(|v| v.get(c))
                    .copied()
                    .unwrap_or(1.0);
                *g = (*g - *sg / count - *xhat * (*sgx / count)) * (*inv * gamma);
            }
        }
    }
    if spec.bias
        && !spec.bias_frozen
        && let Some(start) = offsets.bias
        && let Some(d_bias) = start
            .checked_add(d_out)
            .and_then(|end| param_grads.get_mut(start..end))
    {
        for g_row in rows(grads, d_out) {
            d_bias.iter_mut().zip(g_row).for_each(|(d, g)| *d += *g);
        }
    }
    if let Some(d_weights) = d_out
        .checked_mul(d_in)
        .and_then(|count| offsets.weights.checked_add(count))
        .and_then(|end| param_grads.get_mut(offsets.weights..end))
    {
        // dW += gᵀ·input: [d_out × n]·[n × d_in].
        K::gemm_tn_add(
            d_out,
            d_in,
            n,
            grads,
            d_out,
            parts.input,
            d_in,
            d_weights,
            d_in,
        );
    }
    if let Some(dx) = dx {
        dx.fill(0.0);
        // dx = g·W: [n × d_out]·[d_out × d_in].
        K::gemm_nn_add(n, d_in, d_out, grads, d_out, layer.weights, d_in, dx, d_in);
    }
}

/// One view's backward pass. `grads[0]` holds `dL/d(prediction unit)` on entry.
#[allow(clippy::too_many_arguments)]
fn backward_view<K: Kernels>(
    architecture: &Architecture,
    layers: &LayerViews<'_>,
    x: &[f32],
    n: usize,
    stop_gradient: bool,
    view: &mut ViewBuffers<'_>,
    grad_rows: [&mut [f32]; 2],
    param_grads: &mut [f32],
    input_grad: &mut [f32],
) {
    let d_out = architecture.d_out();
    let floors = unit_floors(architecture);
    let ViewBuffers {
        outs,
        normalized,
        stats,
        units,
        norms,
        target_grad,
    } = view;
    let [current, spare] = grad_rows;
    let (mut current, mut spare) = (current, spare);
    normalize_backward::<K>(
        rows_prefix(current, n, d_out),
        units[1],
        norms[1],
        d_out,
        floors[1],
    );
    let count = layers.count;
    for index in (0..count).rev() {
        let (Some(layer), Some(spec), Some(offsets)) = (
            layers.views.get(index),
            layers.specs.get(index),
            layers.offsets.get(index),
        ) else {
            continue;
        };
        let input: &[f32] = if index == 0 {
            x
        } else if index == layers.projector_len && architecture.normalize_projection {
            units[0]
        } else {
            outs.get(index.wrapping_sub(1)).map_or(&[][..], |v| &v[..])
        };
        let parts = LayerBackward {
            input,
            out: outs.get(index).map_or(&[][..], |v| &v[..]),
            normalized: normalized.get(index).map_or(&[][..], |v| &v[..]),
            stats: stats.get_mut(index).map_or(&mut [][..], |v| &mut v[..]),
        };
        let dx = if index == 0 {
            (!input_grad.is_empty()).then_some(&mut *input_grad)
        } else {
            Some(rows_prefix(spare, n, layer.d_in))
        };
        let has_dx = dx.is_some();
        layer_backward::<K>(
            layer,
            spec,
            offsets,
            n,
            parts,
            rows_prefix(current, n, layer.d_out),
            param_grads,
            dx,
        );
        if index == 0 || !has_dx {
            break;
        }
        core::mem::swap(&mut current, &mut spare);
        if index == layers.projector_len {
            // dL/d(projection): the predictor's input gradient, plus the target's
            // without stop-gradient, through the projector's normalisation.
            let g = rows_prefix(current, n, d_out);
            if architecture.normalize_projection {
                if !stop_gradient {
                    g.iter_mut()
                        .zip(target_grad.iter())
                        .for_each(|(a, b)| *a += *b);
                }
                normalize_backward::<K>(g, units[0], norms[0], d_out, floors[0]);
            } else if !stop_gradient {
                normalize_backward::<K>(target_grad, units[0], norms[0], d_out, floors[0]);
                g.iter_mut()
                    .zip(target_grad.iter())
                    .for_each(|(a, b)| *a += *b);
            }
        }
    }
}

/// `dL/d(prediction unit) = −z_other/(2n)` into the first rows of `grads`.
fn seed_prediction_grad(grads: &mut [f32], other: &[f32], n: usize, d: usize, scale: f32) {
    rows_prefix(grads, n, d)
        .iter_mut()
        .zip(other)
        .for_each(|(g, z)| *g = *z * scale);
}

/// The first `n·d` floats of `v` (all of it when shorter: never for a carved scratch).
fn rows_prefix(v: &mut [f32], n: usize, d: usize) -> &mut [f32] {
    let len = n.saturating_mul(d).min(v.len());
    v.get_mut(..len).unwrap_or_default()
}

/// The forward and backward passes of one step: returns the loss, leaves the parameter
/// gradients in `buffers.param_grads`, the batch statistics in the views' `stats`, and
/// `dL/dx1s`, `dL/dx2s` in `input_grads` (each `n·d_encoder` long, or empty to skip).
pub(crate) fn gradients<K: Kernels>(
    architecture: &Architecture,
    layers: &LayerViews<'_>,
    xs: [&[f32]; 2],
    n: usize,
    stop_gradient: bool,
    buffers: &mut StepBuffers<'_>,
    input_grads: [&mut [f32]; 2],
) -> SslResult<f32> {
    let d_out = architecture.d_out();
    let weights_t = if n >= TRANSPOSED_FORWARD_PAIRS && !GEMM_FORWARD {
        transpose_weights(layers, n, buffers.param_grads);
        Some(&*buffers.param_grads)
    } else {
        None
    };
    for (x, view) in xs.iter().zip(buffers.views.iter_mut()) {
        forward_view::<K>(architecture, layers, x, n, view, weights_t)?;
    }
    let [first, second] = &mut buffers.views;
    // loss = −(Σ cos(p1, z2)/n + Σ cos(p2, z1)/n)/2, each a dot of unit vectors.
    let count = n as f32;
    let mut sums = [0.0_f32; 2];
    for (sum, (p, z)) in sums.iter_mut().zip([
        (&first.units[1], &second.units[0]),
        (&second.units[1], &first.units[0]),
    ]) {
        for (p_row, z_row) in rows(p, d_out).zip(rows(z, d_out)) {
            *sum += K::dot_add(0.0, p_row, z_row);
        }
    }
    let [sum_first, sum_second] = sums;
    let loss = -(sum_first / count + sum_second / count) * 0.5;
    if !loss.is_finite() {
        return Err(SslError::NonFinite { location: "loss" });
    }
    let scale = -0.5 / count;
    if !stop_gradient {
        for (target, p) in [
            (&mut *second.target_grad, &first.units[1]),
            (&mut *first.target_grad, &second.units[1]),
        ] {
            target
                .iter_mut()
                .zip(p.iter())
                .for_each(|(t, p)| *t = *p * scale);
        }
    }
    let [input_first, input_second] = input_grads;
    let StepBuffers {
        views,
        grad_rows,
        param_grads,
        ..
    } = buffers;
    param_grads.fill(0.0);
    let [first, second] = views;
    let [rows_a, rows_b] = grad_rows;
    let [x1, x2] = xs;
    // View 1 (its prediction against view 2's projection), then view 2.
    seed_prediction_grad(rows_a, second.units[0], n, d_out, scale);
    backward_view::<K>(
        architecture,
        layers,
        x1,
        n,
        stop_gradient,
        first,
        [&mut **rows_a, &mut **rows_b],
        param_grads,
        input_first,
    );
    seed_prediction_grad(rows_a, first.units[0], n, d_out, scale);
    backward_view::<K>(
        architecture,
        layers,
        x2,
        n,
        stop_gradient,
        second,
        [&mut **rows_a, &mut **rows_b],
        param_grads,
        input_second,
    );
    Ok(loss)
}
