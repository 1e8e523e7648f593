//! The encoder: a list of [layer kinds](crate::layers) in front of the head, walked
//! forward and back over caller buffers as [`crate::layers`] describes ("Walking a
//! stack").
//!
//! The encoder's input is one sample of [`Shape`] `[C, T]`, channel-major (`c·T + t`, as
//! PyTorch's `x.view(N, C, T)`); its output, flattened channel-major (PyTorch's
//! `nn.Flatten()`), is the projector's input. A sequence output needs no explicit flatten:
//! a `GlobalMaxPool1d` makes it a vector, and otherwise the `C·T` floats are the
//! projector's first Linear's input, as a `Linear` inside the encoder flattens its input.
//!
//! # Parameters
//! The encoder's parameters come first in the network's flat slice: each layer's
//! ([`LayerKind::params`], PyTorch `state_dict` order), first layer first; then the
//! projector's and the predictor's.
//!
//! # Memory
//! - Eval on `n` samples ([`Encoder::eval_work_len`]): two buffers of `n` samples of the
//!   widest activation (the input included), used in turn, plus one scratch of the
//!   largest [`LayerKind::scratch_len`] (a convolution's windows).
//! - Training on `n` pairs ([`Encoder::train_len`]): per view, an activation buffer of
//!   `n` samples for every layer that is not in place (and for an in-place layer that
//!   comes first or after a ReLU, whose mask it would overwrite), and each BatchNorm's
//!   saved buffer; then each view's output gradient (`n·d_out`), two gradient buffers
//!   of `n` samples of the widest activation, the scratch, and room for one
//!   BatchNorm's parameters (the running statistics are
//!   checked on a copy before they are written).

use crate::error::{SslError, SslResult, check_len};
use crate::kernels::Kernels;
use crate::layers::{BatchNorm1d, LayerKind, OVERFLOW, Shape, relu};

/// The most layer kinds an encoder may have.
pub const MAX_ENCODER_LAYERS: usize = 16;

/// An encoder: up to [`MAX_ENCODER_LAYERS`] layer kinds over an input of [`Shape`]
/// `[C, T]`. Valid by construction ([`new`](Self::new)).
///
/// # Examples
/// ```
/// use simsiam::layers::{Bias, LayerKind, Linear, Shape, BatchNorm1d};
/// use simsiam::model::Encoder;
/// let encoder = Encoder::new(Shape::sequence(6, 128), &[
///     LayerKind::Linear(Linear { d_in: 768, d_out: 256, bias: Bias::None }),
///     LayerKind::BatchNorm1d(BatchNorm1d::new(256)),
///     LayerKind::Relu,
/// ])?;
/// assert_eq!((encoder.d_input(), encoder.d_out()), (768, 256));
/// assert_eq!(encoder.param_count()?, 768 * 256 + 4 * 256);
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Clone, Copy, PartialEq)]
pub struct Encoder {
    input: Shape,
    layers: [LayerKind; MAX_ENCODER_LAYERS],
    len: usize,
    output: Shape,
}

impl core::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encoder")
            .field("input", &self.input)
            .field("layers", &self.layers())
            .finish()
    }
}

/// Where one layer's data sits: its input shape, its parameters in the encoder's slice,
/// and, in a training view, the buffer holding its output and its saved buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) input: Shape,
    pub(crate) params: (usize, usize),
    /// Start and length of the buffer that holds the layer's output (its final state).
    pub(crate) out: (usize, usize),
    /// Whether the layer's output buffer is its own (else the previous layer's, in place).
    pub(crate) fresh: bool,
    /// Start and length of a BatchNorm's saved buffer (length 0 for other kinds).
    pub(crate) saved: (usize, usize),
}

const EMPTY_SLOT: Slot = Slot {
    input: Shape::vector(0),
    params: (0, 0),
    out: (0, 0),
    fresh: false,
    saved: (0, 0),
};

/// A training view's plan: one slot per layer and the floats of the view.
pub(crate) struct Plan {
    pub(crate) slots: [Slot; MAX_ENCODER_LAYERS],
    pub(crate) view_len: usize,
}

/// Samples a convolution runs per matrix product (its scratch holds that many samples'
/// windows and outputs): the products are `8·T_out` columns wide instead of one
/// sample's `T_out` (`har-conv`'s last convolution: 152 instead of 19), which the
/// register blocks fill. `har-conv` at 128 pairs: 543 KB of scratch instead of 68 KB.
const SCRATCH_SAMPLES: usize = 8;

fn add(a: usize, b: usize) -> SslResult<usize> {
    a.checked_add(b).ok_or(OVERFLOW)
}

fn mul(a: usize, b: usize) -> SslResult<usize> {
    a.checked_mul(b).ok_or(OVERFLOW)
}

fn range(v: &[f32], (start, len): (usize, usize)) -> &[f32] {
    start
        .checked_add(len)
        .and_then(|end| v.get(start..end))
        .unwrap_or_default()
}

fn range_mut(v: &mut [f32], (start, len): (usize, usize)) -> &mut [f32] {
    start
        .checked_add(len)
        .and_then(|end| v.get_mut(start..end))
        .unwrap_or_default()
}

/// A layer's input (the network's `x`, or the buffer at `input`, which lies before the
/// output) and its output buffer `out` in `view`; empty slices where a range falls
/// outside (the callers' length checks then fail).
fn source_and_output<'a>(
    view: &'a mut [f32],
    x: &'a [f32],
    input: Option<(usize, usize)>,
    (start, len): (usize, usize),
) -> (&'a [f32], &'a mut [f32]) {
    let (before, after) = view.split_at_mut_checked(start).unwrap_or_default();
    let output = after.get_mut(..len).unwrap_or_default();
    let source = match input {
        None => x,
        Some(input) => range(before, input),
    };
    (source, output)
}

/// `dst[i] = src[i]` over the shorter of the two (their lengths are checked by the
/// callers; a zip rather than `copy_from_slice`, which keeps a length-mismatch panic).
pub(crate) fn copy(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
}

/// The next `len` floats of `rest`, or `None` when it is shorter.
pub(crate) fn take<'a>(rest: &mut &'a mut [f32], len: usize) -> Option<&'a mut [f32]> {
    let (head, tail) = core::mem::take(rest).split_at_mut_checked(len)?;
    *rest = tail;
    Some(head)
}

impl Encoder {
    /// The encoder of `layers` over inputs of shape `input`.
    ///
    /// # Errors
    /// `InvalidParameter { name: "encoder", .. }` for no layers or more than
    /// [`MAX_ENCODER_LAYERS`]; a layer's own errors when the shapes do not chain
    /// ([`LayerKind::output_shape`]: `DimensionMismatch` for a width or channel count
    /// that does not match, `InvalidParameter` for a zero size); `InvalidParameter`
    /// (`"shape"`) when a size overflows `usize`.
    pub fn new(input: Shape, layers: &[LayerKind]) -> SslResult<Self> {
        if layers.is_empty() {
            return Err(SslError::InvalidParameter {
                name: "encoder",
                reason: "an encoder needs at least one layer",
            });
        }
        let mut encoder = Self {
            input,
            layers: [LayerKind::Relu; MAX_ENCODER_LAYERS],
            len: layers.len(),
            output: input,
        };
        encoder
            .layers
            .get_mut(..layers.len())
            .ok_or(SslError::InvalidParameter {
                name: "encoder",
                reason: "an encoder has at most MAX_ENCODER_LAYERS (16) layers",
            })?
            .iter_mut()
            .zip(layers)
            .for_each(|(slot, kind)| *slot = *kind);
        let mut shape = input;
        shape.size()?;
        for kind in layers {
            kind.param_count()?;
            shape = kind.output_shape(shape)?;
        }
        encoder.output = shape;
        encoder.param_count()?;
        Ok(encoder)
    }

    /// The shape of one input sample.
    #[must_use]
    pub fn input(&self) -> Shape {
        self.input
    }

    /// The layers, first to last.
    #[must_use]
    pub fn layers(&self) -> &[LayerKind] {
        self.layers.get(..self.len).unwrap_or_default()
    }

    /// The shape of one sample's output (before it is flattened for the projector).
    #[must_use]
    pub fn output_shape(&self) -> Shape {
        self.output
    }

    /// Floats of one input sample, `C·T`.
    #[must_use]
    pub fn d_input(&self) -> usize {
        self.input.size().unwrap_or(0)
    }

    /// Floats of one output sample, flattened (`C·T` of [`output_shape`](Self::output_shape)).
    #[must_use]
    pub fn d_out(&self) -> usize {
        self.output.size().unwrap_or(0)
    }

    /// Floats of the encoder's parameters (every layer's [`LayerKind::param_count`]).
    ///
    /// # Errors
    /// `InvalidParameter` (`"shape"`) on overflow.
    pub fn param_count(&self) -> SslResult<usize> {
        self.layers()
            .iter()
            .try_fold(0_usize, |total, kind| add(total, kind.param_count()?))
    }

    /// Each layer with its input shape and the start of its parameters in the encoder's
    /// slice (valid by construction, so no step fails).
    pub(crate) fn walk(&self) -> impl Iterator<Item = (&LayerKind, Shape, usize)> {
        self.layers()
            .iter()
            .scan((self.input, 0_usize), |(shape, at), kind| {
                let item = (kind, *shape, *at);
                *shape = kind.output_shape(*shape).unwrap_or(*shape);
                *at = at.saturating_add(kind.param_count().unwrap_or(0));
                Some(item)
            })
    }

    /// The widest sample (the input's or any layer's output), in floats.
    fn widest(&self) -> usize {
        self.walk()
            .map(|(kind, shape, _)| {
                let out = kind.output_shape(shape).unwrap_or(shape);
                out.size().unwrap_or(0)
            })
            .fold(self.d_input(), usize::max)
    }

    /// The scratch of a batch of `n`: the largest of any layer
    /// ([`LayerKind::scratch_len`], one sample's) times the samples one call runs per
    /// product, `min(n, SCRATCH_SAMPLES)` (0 without a layer that needs scratch).
    fn scratch_len(&self, n: usize) -> SslResult<usize> {
        let one = self
            .walk()
            .map(|(kind, shape, _)| kind.scratch_len(shape).unwrap_or(0))
            .fold(0, usize::max);
        mul(one, n.clamp(1, SCRATCH_SAMPLES))
    }

    /// The largest BatchNorm's parameters (room for the running-statistics check).
    fn batch_norm_params(&self) -> usize {
        self.layers()
            .iter()
            .map(|kind| match kind {
                LayerKind::BatchNorm1d(_) => kind.param_count().unwrap_or(0),
                _ => 0,
            })
            .fold(0, usize::max)
    }

    /// Floats of work an eval forward of `n` samples needs
    /// ([`forward_eval`](Self::forward_eval)): `2·n·widest + scratch`, `widest` the
    /// widest sample (input or any layer's output), `scratch` the largest
    /// [`LayerKind::scratch_len`] times `min(n, 8)` (a convolution runs that many
    /// samples per matrix product).
    ///
    /// # Errors
    /// `InvalidParameter` (`"shape"`) on overflow.
    pub fn eval_work_len(&self, n: usize) -> SslResult<usize> {
        add(mul(mul(n, self.widest())?, 2)?, self.scratch_len(n)?)
    }

    /// The eval forward of `n` samples: `x` is `n × d_input`, `out` `n × d_out`
    /// (overwritten), `params` the encoder's parameters, `work` at least
    /// [`eval_work_len`](Self::eval_work_len)`(n)` floats.
    ///
    /// # Errors
    /// `DimensionMismatch` for `params`, `x` or `out` of the wrong length;
    /// `CapacityTooSmall` for a short `work`; a layer's errors (`InvalidParameter`
    /// for `n = 0`).
    pub fn forward_eval<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        x: &[f32],
        out: &mut [f32],
        work: &mut [f32],
    ) -> SslResult<()> {
        check_len(self.param_count()?, params.len())?;
        check_len(mul(n, self.d_input())?, x.len())?;
        check_len(mul(n, self.d_out())?, out.len())?;
        let rows = mul(n, self.widest())?;
        let needed = self.eval_work_len(n)?;
        let capacity = work.len();
        let too_small = SslError::CapacityTooSmall { needed, capacity };
        let mut rest = work;
        let a = take(&mut rest, rows).ok_or(too_small)?;
        let b = take(&mut rest, rows).ok_or(too_small)?;
        let scratch = take(&mut rest, self.scratch_len(n)?).ok_or(too_small)?;
        let mut buffers = [a, b];
        // Which buffer holds the current activation; `None` while it is still `x`.
        let mut current: Option<usize> = None;
        for (kind, shape, at) in self.walk() {
            let p = range(params, (at, kind.param_count()?));
            let out_shape = kind.output_shape(shape)?;
            let in_len = shape.batch_len(n)?;
            let out_len = out_shape.batch_len(n)?;
            if kind.in_place() {
                let index = current.unwrap_or(0);
                let [a, b] = &mut buffers;
                let buffer = if index == 0 { &mut **a } else { &mut **b };
                let y = buffer.get_mut(..in_len).ok_or(too_small)?;
                if current.is_none() {
                    copy(y, x);
                }
                match kind {
                    LayerKind::BatchNorm1d(bn) => bn.forward_eval(p, n, shape, y)?,
                    _ => relu::forward(n, shape, y)?,
                }
                current = Some(index);
            } else {
                let [a, b] = &mut buffers;
                let (src, dst, next): (&[f32], &mut [f32], usize) = match current {
                    None => (x, &mut **a, 0),
                    Some(0) => (&**a, &mut **b, 1),
                    Some(_) => (&**b, &mut **a, 0),
                };
                let src = src.get(..in_len).ok_or(too_small)?;
                let dst = dst.get_mut(..out_len).ok_or(too_small)?;
                forward_kind::<K>(kind, p, n, shape, src, dst, scratch)?;
                current = Some(next);
            }
        }
        let [a, b] = &buffers;
        let last = if current == Some(1) { &**b } else { &**a };
        copy(out, last);
        Ok(())
    }

    /// The layout of one training view of `n` samples (see [the module](self)).
    pub(crate) fn plan(&self, n: usize) -> SslResult<Plan> {
        let mut slots = [EMPTY_SLOT; MAX_ENCODER_LAYERS];
        let mut at = 0_usize;
        let mut previous: Option<(&LayerKind, (usize, usize))> = None;
        for ((kind, shape, params_at), slot) in self.walk().zip(slots.iter_mut()) {
            let out_len = kind.output_shape(shape)?.batch_len(n)?;
            let fresh = !kind.in_place()
                || previous.is_none_or(|(previous, _)| matches!(previous, LayerKind::Relu));
            let out = match previous {
                Some((_, out)) if !fresh => out,
                _ => {
                    let out = (at, out_len);
                    at = add(at, out_len)?;
                    out
                }
            };
            let saved_len = kind.saved_len(shape, n)?;
            let saved = (at, saved_len);
            at = add(at, saved_len)?;
            *slot = Slot {
                input: shape,
                params: (params_at, kind.param_count()?),
                out,
                fresh,
                saved,
            };
            previous = Some((kind, out));
        }
        Ok(Plan {
            slots,
            view_len: at,
        })
    }

    /// Floats the training step needs for the encoder on `n` pairs: two views
    /// ([`plan`](Self::plan)), two gradient buffers of `n·widest`, the scratch and room
    /// for one BatchNorm's parameters.
    pub(crate) fn train_len(&self, n: usize) -> SslResult<usize> {
        let views = mul(self.plan(n)?.view_len, 2)?;
        let features = mul(mul(n, self.d_out())?, 2)?;
        let grads = add(mul(mul(n, self.widest())?, 2)?, features)?;
        add(
            add(add(views, grads)?, self.scratch_len(n)?)?,
            self.batch_norm_params(),
        )
    }

    /// Cuts the encoder's part of the training scratch (at least
    /// [`train_len`](Self::train_len)`(n)` floats).
    pub(crate) fn carve<'a>(
        &self,
        n: usize,
        scratch: &'a mut [f32],
    ) -> SslResult<(Plan, TrainBuffers<'a>)> {
        let plan = self.plan(n)?;
        let needed = self.train_len(n)?;
        let capacity = scratch.len();
        let too_small = SslError::CapacityTooSmall { needed, capacity };
        let mut rest = scratch;
        let rows = mul(n, self.widest())?;
        let buffers = TrainBuffers {
            views: [
                take(&mut rest, plan.view_len).ok_or(too_small)?,
                take(&mut rest, plan.view_len).ok_or(too_small)?,
            ],
            feature_grads: [
                take(&mut rest, mul(n, self.d_out())?).ok_or(too_small)?,
                take(&mut rest, mul(n, self.d_out())?).ok_or(too_small)?,
            ],
            grads: [
                take(&mut rest, rows).ok_or(too_small)?,
                take(&mut rest, rows).ok_or(too_small)?,
            ],
            scratch: take(&mut rest, self.scratch_len(n)?).ok_or(too_small)?,
            batch_norm: take(&mut rest, self.batch_norm_params()).ok_or(too_small)?,
        };
        Ok((plan, buffers))
    }

    /// One view's training forward of `n` samples into `view`; the output (the
    /// features, `n × d_out`) is at [`output_range`](Self::output_range).
    pub(crate) fn forward_train<K: Kernels>(
        &self,
        plan: &Plan,
        params: &[f32],
        n: usize,
        x: &[f32],
        view: &mut [f32],
        scratch: &mut [f32],
    ) -> SslResult<()> {
        let mut input: Option<(usize, usize)> = None;
        // Whether the last BatchNorm also did the ReLU after it (in its buffer).
        let mut relu_done = false;
        // The layer's index, counted by hand: `enumerate` over the walk keeps an
        // overflow check (a panic path) in builds with overflow checks.
        let mut next_index = 0_usize;
        for ((kind, _, _), slot) in self.walk().zip(&plan.slots) {
            let index = next_index;
            next_index = next_index.wrapping_add(1);
            let p = range(params, slot.params);
            let shape = slot.input;
            let in_len = shape.batch_len(n)?;
            if relu_done {
                // The ReLU shares the BatchNorm's buffer, already its output.
                relu_done = false;
                input = Some(slot.out);
                continue;
            }
            if kind.in_place() {
                if slot.fresh {
                    // A copy of the input, so that what it overwrites stays for the
                    // backward (the network's input, or a ReLU's output).
                    let (src, dst) = source_and_output(view, x, input, slot.out);
                    check_len(slot.out.1, src.len())?;
                    copy(dst, src);
                }
                match kind {
                    LayerKind::BatchNorm1d(bn) => {
                        let (out_start, out_len) = slot.out;
                        let (saved_start, saved_len) = slot.saved;
                        // The saved buffer follows the output's when both are this
                        // layer's; else it is after the shared buffer.
                        let (y, saved) =
                            split_two(view, (out_start, out_len), (saved_start, saved_len));
                        check_len(in_len, y.len())?;
                        // A ReLU next in the same buffer runs in the normalisation's
                        // pass (the same bits as the two kinds one after the other).
                        let next = self.layers().get(index.saturating_add(1));
                        let next_slot = plan.slots.get(index.saturating_add(1));
                        relu_done = matches!(next, Some(LayerKind::Relu))
                            && next_slot.is_some_and(|next| !next.fresh && next.out == slot.out);
                        if relu_done {
                            bn.forward_train_relu_with::<K>(p, n, shape, y, saved)?;
                        } else {
                            bn.forward_train_with::<K>(p, n, shape, y, saved)?;
                        }
                    }
                    _ => relu::forward(n, shape, range_mut(view, slot.out))?,
                }
            } else {
                let (src, dst) = source_and_output(view, x, input, slot.out);
                check_len(in_len, src.len())?;
                forward_kind::<K>(kind, p, n, shape, src, dst, scratch)?;
            }
            input = Some(slot.out);
        }
        Ok(())
    }

    /// Where a training view keeps the encoder's output.
    pub(crate) fn output_range(&self, plan: &Plan) -> (usize, usize) {
        plan.slots
            .get(self.len.saturating_sub(1))
            .map_or((0, 0), |slot| slot.out)
    }

    /// One view's backward: `grads[0]` starts with `dL/d(output)` (`n × d_out`);
    /// parameter gradients are added into `param_grads` (the encoder's layout), and
    /// `dL/dx` is written into `input_grad` (`n × d_input`) unless it is empty.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward<K: Kernels>(
        &self,
        plan: &Plan,
        params: &[f32],
        n: usize,
        x: &[f32],
        view: &mut [f32],
        grads: [&mut [f32]; 2],
        param_grads: &mut [f32],
        input_grad: &mut [f32],
        scratch: &mut [f32],
    ) -> SslResult<()> {
        let [a, b] = grads;
        let mut buffers = [a, b];
        let mut current = 0_usize;
        // Whether the last pool's backward also did the ReLU's before it (its output is
        // the pool's input): that ReLU then has nothing left to do.
        let mut relu_done = false;
        let kinds = self.layers().iter().zip(&plan.slots).enumerate();
        for (index, (kind, slot)) in kinds.rev() {
            let p = range(params, slot.params);
            let g_params = range_mut(param_grads, slot.params);
            let shape = slot.input;
            let in_len = shape.batch_len(n)?;
            let out_len = kind.output_shape(shape)?.batch_len(n)?;
            let input: &[f32] = match index.checked_sub(1).and_then(|i| plan.slots.get(i)) {
                Some(previous) => range(view, previous.out),
                None => x,
            };
            let [a, b] = &mut buffers;
            let (dy, other) = if current == 0 {
                (&mut **a, &mut **b)
            } else {
                (&mut **b, &mut **a)
            };
            if kind.in_place() {
                let g = dy.get_mut(..out_len).unwrap_or_default();
                match kind {
                    LayerKind::BatchNorm1d(bn) => {
                        let saved = range_mut(view, slot.saved);
                        bn.backward_with::<K>(p, n, shape, saved, g, g_params)?;
                    }
                    _ if relu_done => {}
                    _ => relu::backward(n, shape, range(view, slot.out), g)?,
                }
                relu_done = false;
                if index == 0 && !input_grad.is_empty() {
                    check_len(g.len(), input_grad.len())?;
                    copy(input_grad, g);
                }
                continue;
            }
            let dy = dy.get(..out_len).unwrap_or_default();
            let dx: Option<&mut [f32]> = if index == 0 {
                (!input_grad.is_empty()).then_some(&mut *input_grad)
            } else {
                other.get_mut(..in_len)
            };
            let after_relu = index
                .checked_sub(1)
                .and_then(|i| self.layers().get(i))
                .is_some_and(|previous| matches!(previous, LayerKind::Relu));
            #[cfg(feature = "conv")]
            let pool = matches!(kind, LayerKind::MaxPool1d(_) | LayerKind::GlobalMaxPool1d);
            #[cfg(not(feature = "conv"))]
            let pool = false;
            let through_relu = after_relu && pool;
            let d = (dy, dx, g_params);
            backward_kind::<K>(kind, p, n, shape, input, d, through_relu, scratch)?;
            relu_done = through_relu;
            current ^= 1;
        }
        Ok(())
    }

    /// Checks that every BatchNorm's running statistics stay finite after view 1's and
    /// view 2's batch with `momentum` (the training's, for every BatchNorm; on a copy in
    /// `copy`); writes nothing to `params`.
    pub(crate) fn check_running_stats(
        &self,
        plan: &Plan,
        params: &[f32],
        n: usize,
        views: [&[f32]; 2],
        momentum: f32,
        copy: &mut [f32],
    ) -> SslResult<()> {
        for (kind, slot) in self.layers().iter().zip(&plan.slots) {
            if let LayerKind::BatchNorm1d(bn) = kind {
                let bn = BatchNorm1d { momentum, ..*bn };
                let copy = copy.get_mut(..slot.params.1).unwrap_or_default();
                self::copy(copy, range(params, slot.params));
                let mut tracked = 0_u64;
                for view in views {
                    let saved = range(view, slot.saved);
                    bn.update_running_stats(copy, n, slot.input, saved, &mut tracked)?;
                }
            }
        }
        Ok(())
    }

    /// Updates every BatchNorm's running statistics from view 1's then view 2's batch
    /// with `momentum` (checked before with [`check_running_stats`](Self::check_running_stats)); each
    /// layer's `batches_tracked` grows by two.
    pub(crate) fn commit_running_stats(
        &self,
        plan: &Plan,
        params: &mut [f32],
        n: usize,
        views: [&[f32]; 2],
        momentum: f32,
        batches_tracked: &mut [u64; MAX_ENCODER_LAYERS],
    ) -> SslResult<()> {
        let layers = self.layers().iter().zip(&plan.slots);
        for ((kind, slot), tracked) in layers.zip(batches_tracked.iter_mut()) {
            if let LayerKind::BatchNorm1d(bn) = kind {
                let bn = BatchNorm1d { momentum, ..*bn };
                let p = range_mut(params, slot.params);
                for view in views {
                    let saved = range(view, slot.saved);
                    bn.update_running_stats(p, n, slot.input, saved, tracked)?;
                }
            }
        }
        Ok(())
    }
}

/// Two disjoint ranges of `v`, the first mutable, the second mutable too (`a` before
/// `b`, or `b` before `a`); empty slices where a range is out of bounds.
fn split_two(v: &mut [f32], a: (usize, usize), b: (usize, usize)) -> (&mut [f32], &mut [f32]) {
    if a.0 <= b.0 {
        let (first, second) = v.split_at_mut_checked(b.0).unwrap_or_default();
        (range_mut(first, a), range_mut(second, (0, b.1)))
    } else {
        let (first, second) = v.split_at_mut_checked(a.0).unwrap_or_default();
        let b_part = range_mut(first, b);
        (range_mut(second, (0, a.1)), b_part)
    }
}

/// A kind that is not in place, forward (eval and training are the same for them).
fn forward_kind<K: Kernels>(
    kind: &LayerKind,
    params: &[f32],
    n: usize,
    shape: Shape,
    x: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
) -> SslResult<()> {
    let _ = (shape, &scratch);
    match kind {
        LayerKind::Linear(linear) => linear.forward_eval::<K>(params, n, x, y),
        #[cfg(feature = "conv")]
        LayerKind::Conv1d(conv) => conv.forward_eval::<K>(params, n, shape, x, y, scratch),
        #[cfg(feature = "conv")]
        LayerKind::MaxPool1d(pool) => pool.forward(n, shape, x, y),
        #[cfg(feature = "conv")]
        LayerKind::GlobalMaxPool1d => crate::layers::global_max_pool1d::forward(n, shape, x, y),
        // In-place kinds never come here.
        _ => Err(SslError::InvalidParameter {
            name: "encoder",
            reason: "an in-place kind has no out-of-place forward",
        }),
    }
}

/// A kind that is not in place, backward: `dx` written when given; with `through_relu`
/// (a pool whose input is a ReLU's output) the pool's backward also does the ReLU's.
#[allow(clippy::too_many_arguments)]
fn backward_kind<K: Kernels>(
    kind: &LayerKind,
    params: &[f32],
    n: usize,
    shape: Shape,
    x: &[f32],
    (dy, dx, grads): (&[f32], Option<&mut [f32]>, &mut [f32]),
    through_relu: bool,
    scratch: &mut [f32],
) -> SslResult<()> {
    let _ = (shape, &scratch, through_relu);
    match kind {
        LayerKind::Linear(linear) => linear.backward::<K>(params, n, x, dy, dx, grads),
        #[cfg(feature = "conv")]
        LayerKind::Conv1d(conv) => conv.backward::<K>(params, n, shape, x, dy, dx, grads, scratch),
        #[cfg(feature = "conv")]
        LayerKind::MaxPool1d(pool) => match dx {
            Some(dx) if through_relu => pool.backward_through_relu(n, shape, x, dy, dx),
            Some(dx) => pool.backward(n, shape, x, dy, dx),
            None => Ok(()),
        },
        #[cfg(feature = "conv")]
        LayerKind::GlobalMaxPool1d => {
            use crate::layers::global_max_pool1d;
            match dx {
                Some(dx) if through_relu => {
                    global_max_pool1d::backward_through_relu(n, shape, x, dy, dx)
                }
                Some(dx) => global_max_pool1d::backward(n, shape, x, dy, dx),
                None => Ok(()),
            }
        }
        _ => Err(SslError::InvalidParameter {
            name: "encoder",
            reason: "an in-place kind has no out-of-place backward",
        }),
    }
}

/// The encoder's part of a training step's scratch.
pub(crate) struct TrainBuffers<'a> {
    /// Each view's activations and saved buffers ([`Encoder::plan`]).
    pub(crate) views: [&'a mut [f32]; 2],
    /// Each view's `dL/d(output)`, `n·d_out` (the head's input gradient).
    pub(crate) feature_grads: [&'a mut [f32]; 2],
    /// Two `n·widest` gradient buffers used in turn by the backward.
    pub(crate) grads: [&'a mut [f32]; 2],
    /// The layers' scratch (a convolution's windows).
    pub(crate) scratch: &'a mut [f32],
    /// A copy of one BatchNorm's parameters, for the running-statistics check.
    pub(crate) batch_norm: &'a mut [f32],
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::Encoder;
    use crate::LcgRng;
    use crate::kernels::{Kernels, Scalar, Simd};
    use crate::layers::{BatchNorm1d, Bias, LayerKind, Linear, Shape, relu};
    use std::vec::Vec;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The training forward (a BatchNorm's ReLU in its normalisation pass) equals the
    /// kinds run one after the other, bit for bit: every layer's output and every
    /// BatchNorm's saved buffer.
    fn training_forward_equals_the_kinds_one_by_one<K: Kernels>(encoder: &Encoder, n: usize) {
        let mut rng = LcgRng::new(3);
        let mut params = std::vec![0.0; encoder.param_count().unwrap()];
        rng.fill_normal(&mut params);
        let mut x = std::vec![0.0; n * encoder.d_input()];
        rng.fill_normal(&mut x);
        let plan = encoder.plan(n).unwrap();
        let mut view = std::vec![f32::NAN; plan.view_len];
        let mut scratch = std::vec![f32::NAN; encoder.scratch_len(n).unwrap()];
        encoder
            .forward_train::<K>(&plan, &params, n, &x, &mut view, &mut scratch)
            .unwrap();
        let mut current = x.clone();
        let layers = encoder.walk().zip(&plan.slots).enumerate();
        let mut relus = 0;
        for (index, ((kind, shape, at), slot)) in layers {
            let p = &params[at..at + kind.param_count().unwrap()];
            match kind {
                LayerKind::BatchNorm1d(bn) => {
                    let mut saved = std::vec![f32::NAN; bn.saved_len(shape, n).unwrap()];
                    bn.forward_train_with::<K>(p, n, shape, &mut current, &mut saved)
                        .unwrap();
                    let got = &view[slot.saved.0..slot.saved.0 + slot.saved.1];
                    assert_eq!(bits(got), bits(&saved), "saved buffer");
                }
                LayerKind::Relu => {
                    relu::forward(n, shape, &mut current).unwrap();
                    relus += 1;
                }
                _ => {
                    let out = kind.output_shape(shape).unwrap().batch_len(n).unwrap();
                    let mut y = std::vec![f32::NAN; out];
                    let mut scratch = std::vec![f32::NAN; encoder.scratch_len(n).unwrap()];
                    super::forward_kind::<K>(kind, p, n, shape, &current, &mut y, &mut scratch)
                        .unwrap();
                    current = y;
                }
            }
            // A buffer holds the output of the last layer that works in it.
            let shared = plan.slots[..encoder.layers().len()]
                .get(index + 1)
                .is_some_and(|next| !next.fresh);
            if !shared {
                let got = &view[slot.out.0..slot.out.0 + slot.out.1];
                assert_eq!(bits(got), bits(&current), "output of {kind:?}");
            }
            assert!(current.iter().any(|v| *v > 0.0) && current.iter().all(|v| !v.is_nan()));
        }
        assert!(relus > 0);
    }

    fn encoders() -> Vec<(Encoder, usize)> {
        let dense = Encoder::new(
            Shape::vector(12),
            &[
                LayerKind::Linear(Linear {
                    d_in: 12,
                    d_out: 16,
                    bias: Bias::None,
                }),
                LayerKind::BatchNorm1d(BatchNorm1d::new(16)),
                LayerKind::Relu,
                LayerKind::Linear(Linear {
                    d_in: 16,
                    d_out: 8,
                    bias: Bias::Trainable,
                }),
            ],
        )
        .unwrap();
        core::iter::once((dense, 5)).chain(conv_encoder()).collect()
    }

    #[cfg(not(feature = "conv"))]
    fn conv_encoder() -> Option<(Encoder, usize)> {
        None
    }

    #[cfg(feature = "conv")]
    fn conv_encoder() -> Option<(Encoder, usize)> {
        use crate::layers::{Conv1d, MaxPool1d, Padding};
        let conv = |c_in, c_out| {
            LayerKind::Conv1d(Conv1d {
                c_in,
                c_out,
                kernel: 5,
                stride: 1,
                padding: Padding::Zeros(0),
                bias: Bias::None,
            })
        };
        let encoder = Encoder::new(
            Shape::sequence(3, 41),
            &[
                conv(3, 8),
                LayerKind::BatchNorm1d(BatchNorm1d::new(8)),
                LayerKind::Relu,
                LayerKind::MaxPool1d(MaxPool1d { kernel: 2 }),
                conv(8, 12),
                LayerKind::BatchNorm1d(BatchNorm1d::new(12)),
                LayerKind::Relu,
                LayerKind::GlobalMaxPool1d,
            ],
        )
        .unwrap();
        Some((encoder, 6))
    }

    #[test]
    fn training_forward_equals_the_kinds_one_by_one_simd() {
        for (encoder, n) in encoders() {
            training_forward_equals_the_kinds_one_by_one::<Simd>(&encoder, n);
        }
    }

    #[test]
    fn training_forward_equals_the_kinds_one_by_one_scalar() {
        for (encoder, n) in encoders() {
            training_forward_equals_the_kinds_one_by_one::<Scalar>(&encoder, n);
        }
    }
}
