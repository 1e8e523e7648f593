//! Where each layer's parameters sit in the flat slice, computed once from the
//! architecture, and the borrowed views the forward passes work on.

use super::architecture::{Architecture, Layer, MAX_STACK_LAYERS};
use crate::error::{SslError, SslResult};
use crate::kernels::{SumEnds, SumStart};

/// Most layers in a head: two stacks.
pub const MAX_LAYERS: usize = 2 * MAX_STACK_LAYERS;

/// One layer's parameter offsets (elements from the start of the flat slice). Each
/// vector is `d_out` long; absent ones are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LayerOffsets {
    pub(crate) weights: usize,
    pub(crate) bias: Option<usize>,
    pub(crate) gamma: Option<usize>,
    pub(crate) beta: Option<usize>,
    pub(crate) running_mean: Option<usize>,
    pub(crate) running_var: Option<usize>,
    /// One past the layer's last parameter.
    pub(crate) end: usize,
}

/// The offsets of every layer, projector first, and the sizes every call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) layers: [LayerOffsets; MAX_LAYERS],
    /// All parameters (the encoder's, then the head's).
    pub(crate) param_count: usize,
    /// The encoder's parameters, at the start of the flat slice (0 without one).
    pub(crate) encoder_param_count: usize,
    /// The head's part of [`Architecture::workspace_len`]`(1)`, the workspace of one
    /// `loss` (all of it without an encoder): worked out here
    /// once (it validates the whole architecture, about 450 instructions on the
    /// Cortex-M4F, 0.5 % of a default `loss`).
    pub(crate) loss_workspace_len: SslResult<usize>,
}

impl Layout {
    /// The layout of a validated architecture.
    ///
    /// # Errors
    /// The architecture's errors.
    pub(crate) fn new(architecture: &Architecture) -> SslResult<Self> {
        architecture.validate()?;
        let overflow = SslError::InvalidParameter {
            name: "config",
            reason: "parameter count overflows usize",
        };
        let mut layers = [LayerOffsets::default(); MAX_LAYERS];
        let encoder_param_count = architecture.encoder_param_count()?;
        let mut at = encoder_param_count;
        for (slot, layer) in layers.iter_mut().zip(architecture.layers()) {
            let weights = at;
            at = at
                .checked_add(layer.weight_count().ok_or(overflow)?)
                .ok_or(overflow)?;
            let mut next = |present: bool| -> SslResult<Option<usize>> {
                if !present {
                    return Ok(None);
                }
                let start = at;
                at = at.checked_add(layer.d_out).ok_or(overflow)?;
                Ok(Some(start))
            };
            let batch_norm = layer.batch_norm;
            let affine = batch_norm.is_some_and(|bn| bn.affine);
            *slot = LayerOffsets {
                weights,
                bias: next(layer.bias)?,
                gamma: next(affine)?,
                beta: next(affine)?,
                running_mean: next(batch_norm.is_some())?,
                running_var: next(batch_norm.is_some())?,
                end: 0,
            };
            slot.end = at;
        }
        Ok(Self {
            layers,
            param_count: at,
            encoder_param_count,
            loss_workspace_len: architecture.head_workspace_len(1),
        })
    }
}

/// The BatchNorm of one layer, viewed in the parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchNormView<'a> {
    pub(crate) gamma: Option<&'a [f32]>,
    pub(crate) beta: Option<&'a [f32]>,
    pub(crate) running_mean: &'a [f32],
    pub(crate) running_var: &'a [f32],
    pub(crate) eps: f32,
}

/// Channels per step of [`BatchNormView::apply_group`]: their `(α, β')` on the stack
/// (128 B), then each vector swept over them, one 64-byte line of each per step.
/// Channel after channel across the vectors took 6 % of the official head's batch loss
/// at the paper's dimensions: vectors 8 KiB apart fall in one L1 set, so every access
/// missed. (64 channels a step measured the same and took 384 B more of the firmware's
/// stack.)
const GROUP_CHANNELS: usize = 16;

impl BatchNormView<'_> {
    /// `(α, β')` of channel `c` in PyTorch's eval form `y = x·α + β'`:
    /// `α = γ / √(running_var + eps)`, `β' = β − running_mean·α` (ATen's
    /// `batch_norm_cpu_collect_linear_and_constant_terms`); `γ = 1`, `β = 0` when not
    /// affine. A missing channel gives the identity `(1, 0)` (never for a validated
    /// head).
    #[inline]
    pub(crate) fn scale_shift(&self, channel: usize) -> (f32, f32) {
        let at = |v: Option<&[f32]>, default: f32| {
            v.and_then(|v| v.get(channel)).copied().unwrap_or(default)
        };
        let (Some(mean), Some(var)) = (
            self.running_mean.get(channel),
            self.running_var.get(channel),
        ) else {
            return (1.0, 0.0);
        };
        let inv_std = 1.0 / libm::sqrtf(var + self.eps);
        let alpha = inv_std * at(self.gamma, 1.0);
        (alpha, at(self.beta, 0.0) - mean * alpha)
    }

    /// `v[i] = v[i]·α_c + β'_c` for channels `c = first_channel + i` of every vector `v`
    /// of a group, each channel's `(α, β')` computed once for all of them (a square root
    /// and a division per channel), for [`GROUP_CHANNELS`] channels at a time so that
    /// each vector is swept contiguously.
    #[inline]
    pub(crate) fn apply_group(&self, vs: &mut [&mut [f32]], first_channel: usize) {
        let len = vs.iter().map(|v| v.len()).max().unwrap_or(0);
        let mut start = 0_usize;
        let mut channel = first_channel;
        while start < len {
            let count = (len - start).min(GROUP_CHANNELS);
            let mut coefficients = [(1.0_f32, 0.0_f32); GROUP_CHANNELS];
            for slot in coefficients.iter_mut().take(count) {
                *slot = self.scale_shift(channel);
                channel = channel.saturating_add(1);
            }
            for v in vs.iter_mut() {
                let part = v.get_mut(start..).unwrap_or_default().iter_mut();
                for (x, (alpha, shift)) in part.take(count).zip(&coefficients) {
                    *x = *x * alpha + shift;
                }
            }
            start = start.saturating_add(count);
        }
    }
}

/// One dense layer viewed in the parameters: `y = ReLU?(BN?(W·x + b?))`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DenseView<'a> {
    /// Row-major `[d_out × d_in]`.
    pub(crate) weights: &'a [f32],
    pub(crate) d_in: usize,
    pub(crate) d_out: usize,
    pub(crate) bias: Option<&'a [f32]>,
    pub(crate) batch_norm: Option<BatchNormView<'a>>,
    pub(crate) relu: bool,
}

impl<'a> DenseView<'a> {
    /// A layer with no parameters (0 × 0): the filler of unused slots.
    pub(crate) const EMPTY: Self = Self {
        weights: &[],
        d_in: 0,
        d_out: 0,
        bias: None,
        batch_norm: None,
        relu: false,
    };

    /// Layer `layer` at `offsets` in `params`; `None` when `params` is too short (never
    /// for a validated head).
    pub(crate) fn new(layer: &Layer, offsets: &LayerOffsets, params: &'a [f32]) -> Option<Self> {
        let mut view = Self::EMPTY;
        view.set(layer, offsets, params).then_some(view)
    }

    /// [`new`](Self::new) in place, field by field; `false` (and `self` partly set) when
    /// `params` is too short. Built as a value and moved into a stack view, the views
    /// went through stack temporaries whose reloads stalled on store forwarding (7 % of a
    /// default `loss` on x86-64).
    pub(crate) fn set(&mut self, layer: &Layer, offsets: &LayerOffsets, params: &'a [f32]) -> bool {
        let vector = |start: Option<usize>| -> Option<Option<&'a [f32]>> {
            match start {
                None => Some(None),
                Some(start) => params.get(start..start.checked_add(layer.d_out)?).map(Some),
            }
        };
        let mut set = || -> Option<()> {
            let weight_count = layer.weight_count()?;
            self.weights =
                params.get(offsets.weights..offsets.weights.checked_add(weight_count)?)?;
            self.d_in = layer.d_in;
            self.d_out = layer.d_out;
            self.bias = vector(offsets.bias)?;
            self.batch_norm = match layer.batch_norm {
                None => None,
                Some(spec) => Some(BatchNormView {
                    gamma: vector(offsets.gamma)?,
                    beta: vector(offsets.beta)?,
                    running_mean: vector(offsets.running_mean)??,
                    running_var: vector(offsets.running_var)??,
                    eps: spec.eps,
                }),
            };
            self.relu = layer.relu;
            Some(())
        };
        set().is_some()
    }

    /// `out = b` (or 0): the start value of every output sum. The bias is cut to `out`'s
    /// length first, so the copy is one `memcpy` (`copy_from_slice` would keep a
    /// length-mismatch panic at opt-level "z"). Out of line: inlined at every caller, its
    /// copies took 900 B of the firmware's `.text`.
    #[inline(never)]
    pub(crate) fn init(&self, out: &mut [f32], first_channel: usize) {
        let len = out.len();
        match self.bias.and_then(|b| b.get(first_channel..)?.get(..len)) {
            Some(bias) => out.iter_mut().zip(bias).for_each(|(o, b)| *o = *b),
            None => out.fill(0.0),
        }
    }

    /// The start and end of the layer's sums for output channels `first_channel ..
    /// first_channel + len` in one kernel call over all its inputs
    /// ([`matvec_layer_group`](crate::kernels::matvec_layer_group)): the bias (or 0) as
    /// the start, and the ReLU when no BatchNorm comes between (see
    /// [`finish_fused`](Self::finish_fused)).
    #[inline]
    pub(crate) fn sum_ends(&self, first_channel: usize, len: usize) -> SumEnds<'a> {
        SumEnds {
            start: self.sum_start(first_channel, len),
            relu: self.relu && self.batch_norm.is_none(),
        }
    }

    /// The start of the layer's sums for output channels `first_channel ..
    /// first_channel + len`: the bias, or 0 without one (or, never for a validated head,
    /// when the bias is shorter).
    #[inline]
    pub(crate) fn sum_start(&self, first_channel: usize, len: usize) -> SumStart<'a> {
        match self.bias.and_then(|b| b.get(first_channel..)?.get(..len)) {
            Some(bias) => SumStart::Values(bias),
            None => SumStart::Zero,
        }
    }

    /// After a kernel that ran with [`sum_ends`](Self::sum_ends): the BatchNorm and the
    /// ReLU after it, for channels from `first_channel` (nothing without a BatchNorm: the
    /// kernel did the ReLU).
    #[inline]
    pub(crate) fn finish_fused(&self, outs: &mut [&mut [f32]], first_channel: usize) {
        if self.batch_norm.is_some() {
            self.finish_group(outs, first_channel);
        }
    }

    /// After the sums of a group of outputs: the BatchNorm (its per-channel factors
    /// computed once for the group), then the ReLU, for channels from `first_channel`.
    /// The ReLU keeps NaN and ±inf (an overflowed partial sum), so that they reach the
    /// output's finiteness check instead of becoming a finite, wrong 0.
    #[inline]
    pub(crate) fn finish_group(&self, outs: &mut [&mut [f32]], first_channel: usize) {
        if let Some(batch_norm) = &self.batch_norm {
            batch_norm.apply_group(outs, first_channel);
        }
        if self.relu {
            outs.iter_mut()
                .for_each(|out| crate::kernels::relu_in_place(out));
        }
    }
}
