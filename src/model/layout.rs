//! Where each layer's parameters sit in the flat slice: the public layout table
//! ([`Architecture::tensors`]: every tensor's PyTorch key, shape and range), the offsets
//! computed once per head, and the borrowed views the forward passes work on.

use super::architecture::{Architecture, Layer, MAX_STACK_LAYERS, Stack};
use super::encoder::MAX_ENCODER_LAYERS;
use crate::error::{SslError, SslResult};
use crate::kernels::{SumEnds, SumStart};
use crate::layers::{LayerKind, MAX_PARAM_TENSORS, MAX_RANK, Shape};

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
    /// once (it validates the whole architecture, which a call need not repeat).
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
/// Channel after channel across the vectors would miss L1 at the paper's dimensions
/// (vectors 8 KiB apart fall in one L1 set); more channels a step only cost stack
/// (BENCHMARKS.md, "Measurements behind design choices").
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
    /// went through stack temporaries whose reloads stalled on store forwarding
    /// (BENCHMARKS.md, "Measurements behind design choices").
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

/// Which `nn.Sequential` of the network a parameter tensor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StackName {
    /// The encoder in front of the head ([`Architecture::encoder`]).
    Encoder,
    /// The projector.
    Projector,
    /// The predictor.
    Predictor,
}

impl StackName {
    /// The attribute's name in PyTorch: `"encoder"`, `"projector"` or `"predictor"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Encoder => "encoder",
            Self::Projector => "projector",
            Self::Predictor => "predictor",
        }
    }
}

impl core::fmt::Display for StackName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parameter tensor of a network: its PyTorch `state_dict` key, its shape and where
/// it sits in the flat parameters. [`Architecture::tensors`] lists them all.
///
/// Its key (its `Display`) is `{stack}.{module}.{name}`, e.g. `encoder.1.weight`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Tensor {
    /// The stack it belongs to.
    pub stack: StackName,
    /// The index of its layer in the stack: in [`Encoder::layers`](crate::model::Encoder::layers)
    /// for the encoder, in [`Stack::layers`](crate::model::Stack::layers) for the
    /// projector and predictor (a dense [`Layer`] holds up to three modules).
    pub layer: usize,
    /// The index of its module in the stack's `nn.Sequential` (see
    /// [`Architecture::tensors`] for how modules are counted).
    pub module: usize,
    /// The layer kind (module) that owns it: a `Linear`, a `BatchNorm1d` or a `Conv1d`.
    pub kind: LayerKind,
    /// The key's last part: `"weight"`, `"bias"`, `"running_mean"` or `"running_var"`.
    pub name: &'static str,
    /// The dimensions, `rank` of them used (the rest 1), row-major.
    pub dims: [usize; MAX_RANK],
    /// How many of `dims` the tensor has.
    pub rank: usize,
    /// Where it starts in the network's flat parameters (floats).
    pub start: usize,
    /// Elements, the product of the dimensions.
    pub len: usize,
    /// Whether training updates it (false for running statistics and a frozen bias).
    pub trainable: bool,
}

impl Tensor {
    /// Its shape, as PyTorch's `tensor.shape`.
    #[must_use]
    pub fn shape(&self) -> &[usize] {
        self.dims.get(..self.rank).unwrap_or_default()
    }

    /// Its elements' range in the network's flat parameters, `start .. start + len`
    /// (saturating, never for a valid architecture).
    #[must_use]
    pub fn range(&self) -> core::ops::Range<usize> {
        self.start..self.start.saturating_add(self.len)
    }

    /// The fan-in of the `Linear` (`d_in`) or `Conv1d` (`C_in·k`) that owns it, which
    /// PyTorch's default initialisation bounds by (`±1/√fan_in`); 0 for a BatchNorm's.
    #[must_use]
    pub fn fan_in(&self) -> usize {
        match self.kind {
            LayerKind::Linear(linear) => linear.d_in,
            #[cfg(feature = "conv")]
            LayerKind::Conv1d(conv) => conv.c_in.saturating_mul(conv.kernel),
            _ => 0,
        }
    }
}

impl core::fmt::Display for Tensor {
    /// The `state_dict` key, `{stack}.{module}.{name}`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.stack, self.module, self.name)
    }
}

/// One layer kind of a stack, placed: its stack, layer, module index and parameter start.
#[derive(Clone, Copy)]
struct Placed {
    stack: StackName,
    layer: usize,
    module: usize,
    kind: LayerKind,
    start: usize,
}

/// Where the walk over a stack is: the next module index, whether PyTorch's activation
/// is 3-d `[N, C, T]` there, the next parameter and the activation's shape.
#[derive(Clone, Copy)]
struct Walk {
    module: usize,
    three_d: bool,
    at: usize,
    shape: Shape,
}

/// Whether `kind` needs PyTorch's 3-d `[N, C, T]` activation (an `nn.Unflatten` before
/// it when the activation is flat).
fn needs_three_d(kind: &LayerKind, shape: Shape) -> bool {
    match kind {
        LayerKind::BatchNorm1d(_) => shape.len > 1,
        LayerKind::Linear(_) | LayerKind::Relu => false,
        #[cfg(feature = "conv")]
        _ => true,
    }
}

/// Places the kinds of one stack (each with its layer index), counting PyTorch's modules
/// and the parameters from `start`.
fn place(
    stack: StackName,
    start: usize,
    input: Shape,
    kinds: impl Iterator<Item = (usize, LayerKind)>,
) -> impl Iterator<Item = Placed> {
    let walk = Walk {
        module: 0,
        three_d: false,
        at: start,
        shape: input,
    };
    kinds.scan(walk, move |walk, (layer, kind)| {
        if needs_three_d(&kind, walk.shape) && !walk.three_d {
            // nn.Unflatten(1, (C, T))
            walk.module = walk.module.saturating_add(1);
            walk.three_d = true;
        }
        if matches!(kind, LayerKind::Linear(_)) && walk.three_d {
            // nn.Flatten()
            walk.module = walk.module.saturating_add(1);
            walk.three_d = false;
        }
        let placed = Placed {
            stack,
            layer,
            module: walk.module,
            kind,
            start: walk.at,
        };
        let modules = match kind {
            // nn.AdaptiveMaxPool1d(1), nn.Flatten()
            #[cfg(feature = "conv")]
            LayerKind::GlobalMaxPool1d => {
                walk.three_d = false;
                2
            }
            _ => 1,
        };
        walk.module = walk.module.saturating_add(modules);
        walk.at = walk.at.saturating_add(kind.param_count().unwrap_or(0));
        walk.shape = kind.output_shape(walk.shape).unwrap_or(walk.shape);
        Some(placed)
    })
}

/// The kinds of a projector or predictor, each with its layer's index.
fn head_kinds(stack: &Stack) -> impl Iterator<Item = (usize, LayerKind)> + '_ {
    // `zip` with a bounded range, not `enumerate`, whose counter keeps an overflow panic
    // path in builds with overflow checks.
    (0..MAX_STACK_LAYERS)
        .zip(stack.layers())
        .flat_map(|(index, layer)| layer.kinds().map(move |kind| (index, kind)))
}

/// The parameter tensors of one placed kind.
fn tensors_of(placed: Placed) -> impl Iterator<Item = Tensor> {
    let params = placed.kind.params();
    (0..MAX_PARAM_TENSORS).filter_map(move |index| {
        let tensor = params.iter().nth(index)?;
        Some(Tensor {
            stack: placed.stack,
            layer: placed.layer,
            module: placed.module,
            kind: placed.kind,
            name: tensor.name,
            dims: tensor.dims,
            rank: tensor.rank,
            start: placed.start.saturating_add(tensor.offset),
            len: tensor.len,
            trainable: tensor.trainable,
        })
    })
}

impl Architecture {
    /// The layout table: every parameter tensor of the network in the order of the flat
    /// parameters (encoder, projector, predictor; each layer's tensors in PyTorch
    /// `state_dict` order), with its key, shape and range. For a valid architecture the
    /// ranges tile `0..param_count` exactly.
    ///
    /// Keys are those of a PyTorch module with `nn.Sequential` attributes `encoder`,
    /// `projector` and `predictor`, whose modules are counted as PyTorch numbers them:
    /// - a dense [`Layer`] is `Linear`, then `BatchNorm1d` and `ReLU` when it has them
    ///   (L2 normalisation is not a module);
    /// - the network's input arrives flat, `[N, C·T]`: an `nn.Unflatten(1, (C, T))` comes
    ///   before the first kind that needs `[N, C, T]` (a `Conv1d`, a pool, a BatchNorm
    ///   over a sequence), and an `nn.Flatten()` before a `Linear` that follows such a
    ///   kind;
    /// - `GlobalMaxPool1d` is two modules, `nn.AdaptiveMaxPool1d(1)` and `nn.Flatten()`.
    ///
    /// So `har-conv`'s first `Conv1d` is `encoder.1` (after the `Unflatten`), and the
    /// official projector's layers are `projector.{0,1,3,4,6,7}`.
    ///
    /// # Examples
    /// ```
    /// use simsiam::model::Architecture;
    /// let official = Architecture::official(16, 8, 4)?;
    /// let keys: Vec<String> = official.tensors().map(|t| t.to_string()).collect();
    /// assert_eq!(keys[..3], ["projector.0.weight", "projector.1.weight", "projector.1.bias"]);
    /// assert_eq!(keys.last().map(String::as_str), Some("predictor.3.bias"));
    /// let last = official.tensors().last().unwrap();
    /// assert_eq!((last.shape(), last.range().end), (&[8][..], official.param_count()?));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn tensors(&self) -> impl Iterator<Item = Tensor> + '_ {
        let encoder_len = self.encoder_param_count().unwrap_or(0);
        let projector_len = self.projector.layers().iter().fold(0_usize, |sum, layer| {
            sum.saturating_add(layer.param_count().unwrap_or(0))
        });
        let encoder = self.active_encoder().into_iter().flat_map(|encoder| {
            let kinds = (0..MAX_ENCODER_LAYERS).zip(encoder.layers().iter().copied());
            place(StackName::Encoder, 0, encoder.input(), kinds)
        });
        let projector = place(
            StackName::Projector,
            encoder_len,
            Shape::vector(self.projector.d_in()),
            head_kinds(&self.projector),
        );
        let predictor = place(
            StackName::Predictor,
            encoder_len.saturating_add(projector_len),
            Shape::vector(self.predictor.d_in()),
            head_kinds(&self.predictor),
        );
        encoder
            .chain(projector)
            .chain(predictor)
            .flat_map(tensors_of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets every head computes once ([`Layout::new`]) are the table's ranges.
    #[test]
    fn layout_offsets_are_the_tables() {
        let heads = [
            Architecture::reference(crate::SimSiamConfig::default()),
            Architecture::official(12, 8, 4),
            Architecture::lightly(10, 12, 8, 4),
        ];
        for architecture in heads.iter().flatten() {
            let layout = Layout::new(architecture).unwrap();
            let from_layout =
                architecture
                    .layers()
                    .zip(&layout.layers)
                    .flat_map(|(layer, offsets)| {
                        let vector = |start: Option<usize>| start.map(|s| s..s + layer.d_out);
                        let weights = offsets.weights..offsets.weights + layer.d_in * layer.d_out;
                        let vectors = [
                            offsets.bias,
                            offsets.gamma,
                            offsets.beta,
                            offsets.running_mean,
                            offsets.running_var,
                        ];
                        core::iter::once(weights).chain(vectors.into_iter().filter_map(vector))
                    });
            assert!(from_layout.eq(architecture.tensors().map(|t| t.range())));
        }
    }
}
