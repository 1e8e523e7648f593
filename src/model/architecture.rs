//! What a head is made of: two short stacks of dense layers, each layer with its shape, a
//! bias or not, a BatchNorm or not and a ReLU or not, and where the outputs are
//! L2-normalised. The reference's 2-layer head and the official and lightly heads are
//! presets; the flat parameter layout follows from the layers.

use super::config::SimSiamConfig;
use super::encoder::Encoder;
use crate::error::{SslError, SslResult};
use crate::layers::{BatchNorm1d, Bias, LayerKind, Linear};

/// The most layers one stack (projector or predictor) may have.
pub const MAX_STACK_LAYERS: usize = 4;

/// PyTorch's `BatchNorm1d` default `eps`.
pub const BATCH_NORM_EPS: f32 = 1e-5;

/// A `BatchNorm1d` after a layer's affine map (before its ReLU).
///
/// In inference (PyTorch's `eval()`) it is `(x − running_mean) / √(running_var + eps)·γ + β`,
/// with `γ = 1`, `β = 0` when it is not affine.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BatchNorm {
    /// Whether it has the learnable `γ` (PyTorch's `weight`) and `β` (`bias`).
    pub affine: bool,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl BatchNorm {
    /// An affine BatchNorm with PyTorch's default `eps` (`1e-5`).
    pub const AFFINE: Self = Self {
        affine: true,
        eps: BATCH_NORM_EPS,
    };
    /// A BatchNorm without `γ`, `β` (`affine=False`), default `eps`.
    pub const PLAIN: Self = Self {
        affine: false,
        eps: BATCH_NORM_EPS,
    };

    /// The same BatchNorm with another `eps`.
    #[must_use]
    pub const fn with_eps(self, eps: f32) -> Self {
        Self { eps, ..self }
    }
}

/// One dense layer: `y = ReLU?(BatchNorm?(W·x + b?))`, `W` row-major `[d_out × d_in]`.
///
/// Its parameters, in this order in the flat layout: `W`, then `b` (`d_out`, if
/// [`bias`](Self::bias)), then the BatchNorm's `γ`, `β` (if affine), `running_mean`,
/// `running_var` (`d_out` each): PyTorch's `state_dict` order for a `Linear` followed by
/// a `BatchNorm1d`.
///
/// # Examples
/// ```
/// use simsiam::model::{BatchNorm, Layer};
/// let layer = Layer::linear(2048, 2048).with_batch_norm(BatchNorm::AFFINE).with_relu();
/// assert_eq!(layer.param_count(), Some(2048 * 2048 + 4 * 2048));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Layer {
    /// Input width (columns of `W`, the fan-in).
    pub d_in: usize,
    /// Output width (rows of `W`).
    pub d_out: usize,
    /// Whether the layer adds a bias `b`.
    pub bias: bool,
    /// Whether training leaves the bias as it is (the official projector's last bias,
    /// which PyTorch freezes with `requires_grad = False`).
    pub bias_frozen: bool,
    /// The BatchNorm after the affine map, if any.
    pub batch_norm: Option<BatchNorm>,
    /// Whether ReLU ends the layer.
    pub relu: bool,
}

impl Layer {
    /// `y = W·x`: no bias, no BatchNorm, no ReLU.
    #[must_use]
    pub const fn linear(d_in: usize, d_out: usize) -> Self {
        Self {
            d_in,
            d_out,
            bias: false,
            bias_frozen: false,
            batch_norm: None,
            relu: false,
        }
    }

    /// The same layer with a bias.
    #[must_use]
    pub const fn with_bias(self) -> Self {
        Self { bias: true, ..self }
    }

    /// The same layer with a bias that training never updates.
    #[must_use]
    pub const fn with_frozen_bias(self) -> Self {
        Self {
            bias: true,
            bias_frozen: true,
            ..self
        }
    }

    /// The same layer with a BatchNorm after its affine map.
    #[must_use]
    pub const fn with_batch_norm(self, batch_norm: BatchNorm) -> Self {
        Self {
            batch_norm: Some(batch_norm),
            ..self
        }
    }

    /// The same layer ending in ReLU.
    #[must_use]
    pub const fn with_relu(self) -> Self {
        Self { relu: true, ..self }
    }

    /// The layer as its run of [layer kinds](crate::layers): `Linear`, then `BatchNorm1d`
    /// and `Relu` as present, with the same flat parameter order. The kinds define the
    /// semantics; the fused paths of the head compute the same bits on the scalar twin
    /// (tests/layers.rs).
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::LayerKind;
    /// use simsiam::model::{BatchNorm, Layer};
    /// let layer = Layer::linear(4, 3).with_batch_norm(BatchNorm::AFFINE).with_relu();
    /// let kinds: Vec<LayerKind> = layer.kinds().collect();
    /// assert_eq!(kinds.len(), 3);
    /// assert!(matches!(kinds[2], LayerKind::Relu));
    /// ```
    pub fn kinds(&self) -> impl Iterator<Item = LayerKind> + use<> {
        let bias = match (self.bias, self.bias_frozen) {
            (false, _) => Bias::None,
            (true, false) => Bias::Trainable,
            (true, true) => Bias::Frozen,
        };
        let linear = LayerKind::Linear(Linear {
            d_in: self.d_in,
            d_out: self.d_out,
            bias,
        });
        let channels = self.d_out;
        let batch_norm = self.batch_norm.map(|batch_norm| {
            LayerKind::BatchNorm1d(BatchNorm1d {
                affine: batch_norm.affine,
                eps: batch_norm.eps,
                ..BatchNorm1d::new(channels)
            })
        });
        let relu = self.relu.then_some(LayerKind::Relu);
        [Some(linear), batch_norm, relu].into_iter().flatten()
    }

    /// How many `d_out`-long vectors follow `W` in the layout: the bias, `γ`, `β`,
    /// `running_mean`, `running_var`, as present.
    #[must_use]
    pub const fn vector_count(&self) -> usize {
        let bias = if self.bias { 1 } else { 0 };
        let batch_norm = match self.batch_norm {
            Some(BatchNorm { affine: true, .. }) => 4,
            Some(BatchNorm { affine: false, .. }) => 2,
            None => 0,
        };
        bias + batch_norm
    }

    /// `d_out·d_in`, or `None` when it overflows `usize`.
    #[must_use]
    pub const fn weight_count(&self) -> Option<usize> {
        self.d_out.checked_mul(self.d_in)
    }

    /// All its parameters: `d_out·d_in + vector_count·d_out`, or `None` on overflow.
    #[must_use]
    pub const fn param_count(&self) -> Option<usize> {
        match (
            self.weight_count(),
            self.d_out.checked_mul(self.vector_count()),
        ) {
            (Some(weights), Some(vectors)) => weights.checked_add(vectors),
            _ => None,
        }
    }
}

/// Up to [`MAX_STACK_LAYERS`] layers applied in order: a projector or a predictor.
#[derive(Clone, Copy, PartialEq)]
pub struct Stack {
    layers: [Layer; MAX_STACK_LAYERS],
    len: usize,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.layers()).finish()
    }
}

impl Stack {
    /// The stack of `layers`.
    ///
    /// # Errors
    /// `InvalidParameter { name: "layers", .. }` for an empty stack or one of more than
    /// [`MAX_STACK_LAYERS`]. Shapes are checked by [`Architecture::new`].
    pub fn new(layers: &[Layer]) -> SslResult<Self> {
        let mut stack = Self {
            layers: [Layer::linear(0, 0); MAX_STACK_LAYERS],
            len: layers.len(),
        };
        if layers.is_empty() {
            return Err(SslError::InvalidParameter {
                name: "layers",
                reason: "a stack needs at least one layer",
            });
        }
        let slots = stack
            .layers
            .get_mut(..layers.len())
            .ok_or(SslError::InvalidParameter {
                name: "layers",
                reason: "a stack has at most MAX_STACK_LAYERS (4) layers",
            })?;
        slots.copy_from_slice(layers);
        Ok(stack)
    }

    /// The stack of a list of [layer kinds](crate::layers): runs of `Linear`, then an
    /// optional `BatchNorm1d` over its outputs, then an optional `Relu`, each run one
    /// [`Layer`] (the official projector's 8 kinds are 3 layers). The inverse of
    /// [`kinds`](Self::kinds). Widths between runs are checked by [`Architecture::new`].
    ///
    /// # Errors
    /// `InvalidParameter { name: "layers", .. }` for a list that is not such runs (a
    /// stack must start with `Linear`; a head stack holds no convolution or pool), or
    /// for more than [`MAX_STACK_LAYERS`] runs or none;
    /// `DimensionMismatch { expected: d_out, got: channels }` for a BatchNorm over
    /// another width than its Linear's output; `InvalidParameter { name: "momentum", .. }`
    /// for a BatchNorm whose momentum is not PyTorch's default 0.1 (the head's running
    /// statistics use that one).
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Bias, BatchNorm1d, LayerKind, Linear};
    /// use simsiam::model::{Architecture, Stack};
    /// let kinds = [
    ///     LayerKind::Linear(Linear { d_in: 8, d_out: 4, bias: Bias::None }),
    ///     LayerKind::BatchNorm1d(BatchNorm1d::new(4)),
    ///     LayerKind::Relu,
    ///     LayerKind::Linear(Linear { d_in: 4, d_out: 8, bias: Bias::Trainable }),
    /// ];
    /// let predictor = Stack::from_kinds(&kinds)?;
    /// assert_eq!(predictor.layers().len(), 2);
    /// assert!(predictor.kinds().eq(kinds));
    /// assert_eq!(predictor, Architecture::official(16, 8, 4)?.predictor);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn from_kinds(kinds: &[LayerKind]) -> SslResult<Self> {
        const NOT_RUNS: SslError = SslError::InvalidParameter {
            name: "layers",
            reason: "a head stack is runs of Linear, then BatchNorm1d and ReLU as present",
        };
        let mut layers = [Layer::linear(0, 0); MAX_STACK_LAYERS];
        let mut len = 0_usize;
        let mut rest = kinds;
        while let Some((first, tail)) = rest.split_first() {
            let LayerKind::Linear(linear) = first else {
                return Err(NOT_RUNS);
            };
            let mut layer = Layer::linear(linear.d_in, linear.d_out);
            match linear.bias {
                Bias::None => {}
                Bias::Trainable => layer = layer.with_bias(),
                Bias::Frozen => layer = layer.with_frozen_bias(),
            }
            rest = tail;
            if let Some((LayerKind::BatchNorm1d(batch_norm), tail)) = rest.split_first() {
                if batch_norm.channels != layer.d_out {
                    return Err(SslError::DimensionMismatch {
                        expected: layer.d_out,
                        got: batch_norm.channels,
                    });
                }
                if batch_norm.momentum.to_bits() != BatchNorm1d::new(1).momentum.to_bits() {
                    return Err(SslError::InvalidParameter {
                        name: "momentum",
                        reason: "a head's BatchNorm uses PyTorch's default momentum 0.1",
                    });
                }
                let affine = if batch_norm.affine {
                    BatchNorm::AFFINE
                } else {
                    BatchNorm::PLAIN
                };
                layer = layer.with_batch_norm(affine.with_eps(batch_norm.eps));
                rest = tail;
            }
            if let Some((LayerKind::Relu, tail)) = rest.split_first() {
                layer = layer.with_relu();
                rest = tail;
            }
            *layers.get_mut(len).ok_or(SslError::InvalidParameter {
                name: "layers",
                reason: "a stack has at most MAX_STACK_LAYERS (4) layers",
            })? = layer;
            len += 1;
        }
        Self::new(layers.get(..len).unwrap_or_default())
    }

    /// The stack as a list of [layer kinds](crate::layers): each layer's
    /// [`Layer::kinds`], first to last.
    pub fn kinds(&self) -> impl Iterator<Item = LayerKind> + '_ {
        self.layers().iter().flat_map(Layer::kinds)
    }

    /// The layers, first to last.
    #[must_use]
    pub fn layers(&self) -> &[Layer] {
        self.layers.get(..self.len).unwrap_or_default()
    }

    /// The input width of the first layer.
    #[must_use]
    pub fn d_in(&self) -> usize {
        self.layers().first().map_or(0, |layer| layer.d_in)
    }

    /// The output width of the last layer.
    #[must_use]
    pub fn d_out(&self) -> usize {
        self.layers().last().map_or(0, |layer| layer.d_out)
    }
}

/// A SimSiam head: a projector stack, a predictor stack, and which outputs are
/// L2-normalised.
///
/// `project` returns the projector's output (normalised if
/// [`normalize_projection`](Self::normalize_projection)), `predict` the predictor's
/// (likewise); `loss` normalises whatever is not normalised already. The predictor maps
/// the projection width back to itself.
///
/// # Examples
/// ```
/// use simsiam::model::Architecture;
/// use simsiam::SimSiamConfig;
/// let reference = Architecture::reference(SimSiamConfig::default())?;
/// assert_eq!(reference.param_count()?, 16_640);
/// let official = Architecture::official(2048, 2048, 512)?;
/// assert_eq!(official.projector.layers().len(), 3);
/// assert!(!official.normalize_projection);
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Architecture {
    /// The encoder in front of the projector, if any ([`with_encoder`](Self::with_encoder)):
    /// then the network's input is the encoder's, and its output (flattened) the
    /// projector's. `None` for a head alone, whose input is the encoder output.
    pub encoder: Option<Encoder>,
    /// Encoder output → projection.
    pub projector: Stack,
    /// Projection → prediction.
    pub predictor: Stack,
    /// Whether `project` L2-normalises its output (the reference's head does).
    pub normalize_projection: bool,
    /// Whether `predict` L2-normalises its output (the reference's head does).
    pub normalize_prediction: bool,
}

const ZERO_WIDTH: SslError = SslError::InvalidParameter {
    name: "layers",
    reason: "every layer width must be > 0",
};
const BROKEN_CHAIN: SslError = SslError::InvalidParameter {
    name: "layers",
    reason: "a layer's d_in must equal the previous layer's d_out",
};
const PREDICTOR_SHAPE: SslError = SslError::InvalidParameter {
    name: "predictor",
    reason: "the predictor must map the projection width to itself",
};
const BAD_EPS: SslError = SslError::InvalidParameter {
    name: "batch_norm",
    reason: "eps must be finite and > 0",
};
const ENCODER_FEATURE: SslError = SslError::InvalidParameter {
    name: "encoder",
    reason: "a network with an encoder needs the crate feature `encoder`",
};
const ENCODER_OUTPUT: SslError = SslError::InvalidParameter {
    name: "encoder",
    reason: "the encoder's output (flattened) must be the projector's input width",
};
const PARAM_OVERFLOW: SslError = SslError::InvalidParameter {
    name: "config",
    reason: "parameter count overflows usize",
};

impl Architecture {
    /// A head of two stacks.
    ///
    /// # Errors
    /// `InvalidParameter` when a width is zero (`name: "layers"`), a layer's `d_in` is
    /// not the previous layer's `d_out` (`"layers"`), the predictor does not map the
    /// projector's output width to itself (`"predictor"`), a BatchNorm `eps` is not a
    /// positive finite number (`"batch_norm"`), or the parameter count overflows `usize`
    /// (`"config"`).
    pub fn new(
        projector: Stack,
        predictor: Stack,
        normalize_projection: bool,
        normalize_prediction: bool,
    ) -> SslResult<Self> {
        let architecture = Self {
            encoder: None,
            projector,
            predictor,
            normalize_projection,
            normalize_prediction,
        };
        architecture.validate()?;
        Ok(architecture)
    }

    /// Checks what [`new`](Self::new) checks (the fields are public).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn validate(&self) -> SslResult<()> {
        if let Some((_, error)) = self.first_fault() {
            return Err(error);
        }
        if let Some(encoder) = &self.encoder {
            if !cfg!(feature = "encoder") {
                return Err(ENCODER_FEATURE);
            }
            if encoder.d_out() != self.d_encoder() {
                return Err(ENCODER_OUTPUT);
            }
            self.head_param_count()?
                .checked_add(encoder.param_count()?)
                .ok_or(PARAM_OVERFLOW)?;
        }
        Ok(())
    }

    /// The same network with `encoder` in front of the projector.
    ///
    /// The encoder's output, flattened channel-major (PyTorch's `nn.Flatten()`), is the
    /// projector's input: a sequence output `[C, T]` is `C·T` floats (end the encoder
    /// in a `GlobalMaxPool1d` for a vector of `C`). With an encoder:
    /// - [`SimSiamHead::encode_into`](crate::SimSiamHead::encode_into) gives its output,
    ///   the feature a user keeps;
    /// - `project_into`, `loss` and their batch forms take the network's input
    ///   ([`d_input`](Self::d_input) floats a sample), `predict_into` a projection, as
    ///   without;
    /// - the parameters are the encoder's, then the projector's and the predictor's
    ///   (PyTorch's `state_dict` order of a module with `encoder`, `projector`,
    ///   `predictor`);
    /// - training ([`crate::train`]) trains all three, the encoder at the projector's
    ///   learning rate;
    /// - the parameter image holds the whole network from its version 2
    ///   ([`crate::image`]), with the input contract (the encoder's input shape).
    ///
    /// The encoder's paths are compiled in with the crate feature `encoder` (which `conv`
    /// implies): without it, a network with an encoder is refused, and builds that run
    /// heads alone (firmware) carry none of its code.
    ///
    /// # Errors
    /// `InvalidParameter { name: "encoder", .. }` when the encoder's output is not
    /// [`d_encoder`](Self::d_encoder) floats, or the crate is built without feature
    /// `encoder`; the architecture's errors; `"config"` when the parameter count
    /// overflows.
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Bias, LayerKind, Linear, Shape};
    /// use simsiam::model::{Architecture, Encoder};
    /// let head = Architecture::official(16, 8, 4)?;
    /// let encoder = Encoder::new(Shape::sequence(2, 5), &[
    ///     LayerKind::Linear(Linear { d_in: 10, d_out: 16, bias: Bias::Trainable }),
    ///     LayerKind::Relu,
    /// ])?;
    /// # #[cfg(feature = "encoder")] {
    /// let network = head.with_encoder(encoder)?;
    /// assert_eq!((network.d_input(), network.d_encoder()), (10, 16));
    /// assert_eq!(network.param_count()?, head.param_count()? + 10 * 16 + 16);
    /// # }
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn with_encoder(self, encoder: Encoder) -> SslResult<Self> {
        let architecture = Self {
            encoder: Some(encoder),
            ..self
        };
        architecture.validate()?;
        Ok(architecture)
    }

    /// The encoder, when the crate is built with feature `encoder` (else `None`, so that
    /// the encoder's paths are not linked into builds that cannot have one: a valid
    /// architecture has no encoder without the feature).
    #[inline(always)]
    pub(crate) fn active_encoder(&self) -> Option<&Encoder> {
        if cfg!(feature = "encoder") {
            self.encoder.as_ref()
        } else {
            None
        }
    }

    /// The network's input width: the encoder's input (`C·T`), or
    /// [`d_encoder`](Self::d_encoder) without an encoder.
    #[must_use]
    pub fn d_input(&self) -> usize {
        self.active_encoder()
            .map_or_else(|| self.d_encoder(), Encoder::d_input)
    }

    /// The encoder's parameters (0 without an encoder): where the projector's start in
    /// the flat slice.
    ///
    /// # Errors
    /// `InvalidParameter` (`"shape"`) on overflow (never for a valid encoder).
    pub fn encoder_param_count(&self) -> SslResult<usize> {
        // Without feature `encoder` a valid architecture has none (`validate` refuses it).
        self.active_encoder().map_or(Ok(0), Encoder::param_count)
    }

    /// The first layer at fault (its index, projector first, from 0) and why; `None`
    /// when the architecture is valid.
    pub(crate) fn first_fault(&self) -> Option<(usize, SslError)> {
        let mut index = 0;
        for stack in [&self.projector, &self.predictor] {
            let mut width = stack.d_in();
            for layer in stack.layers() {
                if layer.d_in == 0 || layer.d_out == 0 {
                    return Some((index, ZERO_WIDTH));
                }
                if layer.d_in != width {
                    return Some((index, BROKEN_CHAIN));
                }
                if let Some(batch_norm) = layer.batch_norm
                    && !(batch_norm.eps.is_finite() && batch_norm.eps > 0.0)
                {
                    return Some((index, BAD_EPS));
                }
                if layer.param_count().is_none() {
                    return Some((index, PARAM_OVERFLOW));
                }
                width = layer.d_out;
                index += 1;
            }
        }
        let projection = self.projector.d_out();
        if self.predictor.d_in() != projection || self.predictor.d_out() != projection {
            return Some((self.projector.layers().len(), PREDICTOR_SHAPE));
        }
        self.param_count().err().map(|error| (index, error))
    }

    /// The reference's head (`oxicuda-ssl` 0.5.5): `Linear + ReLU, Linear` twice, with
    /// biases, no BatchNorm, both outputs L2-normalised. Its layout is the reference's:
    /// `proj_w1, proj_b1, proj_w2, proj_b2, pred_w1, pred_b1, pred_w2, pred_b2`.
    ///
    /// # Errors
    /// The config's errors ([`SimSiamConfig::param_count`]).
    pub fn reference(config: SimSiamConfig) -> SslResult<Self> {
        config.param_count()?;
        let SimSiamConfig {
            d_encoder,
            d_projector,
            d_predictor,
            d_out,
        } = config;
        Self::new(
            Stack::new(&[
                Layer::linear(d_encoder, d_projector)
                    .with_bias()
                    .with_relu(),
                Layer::linear(d_projector, d_out).with_bias(),
            ])?,
            Stack::new(&[
                Layer::linear(d_out, d_predictor).with_bias().with_relu(),
                Layer::linear(d_predictor, d_out).with_bias(),
            ])?,
            true,
            true,
        )
    }

    /// The official head (facebookresearch/simsiam, `simsiam/builder.py`):
    /// ```text
    /// projector: Linear(prev_dim, prev_dim, bias=False), BatchNorm1d(prev_dim), ReLU,
    ///            Linear(prev_dim, prev_dim, bias=False), BatchNorm1d(prev_dim), ReLU,
    ///            Linear(prev_dim, dim) (bias frozen), BatchNorm1d(dim, affine=False)
    /// predictor: Linear(dim, pred_dim, bias=False), BatchNorm1d(pred_dim), ReLU,
    ///            Linear(pred_dim, dim)
    /// ```
    /// No L2 normalisation between them. The paper's ResNet-50 head is
    /// `official(2048, 2048, 512)`.
    ///
    /// # Errors
    /// `InvalidParameter` for a zero width or an overflowing parameter count.
    pub fn official(prev_dim: usize, dim: usize, pred_dim: usize) -> SslResult<Self> {
        Self::three_layer(prev_dim, prev_dim, dim, pred_dim, true)
    }

    /// lightly's `SimSiamProjectionHead(input_dim, hidden_dim, output_dim)` and
    /// `SimSiamPredictionHead(output_dim, pred_hidden_dim, output_dim)`: the official
    /// stacks, except that every Linear followed by a BatchNorm has no bias (so the
    /// projector's last Linear has none).
    ///
    /// # Errors
    /// `InvalidParameter` for a zero width or an overflowing parameter count.
    pub fn lightly(
        input_dim: usize,
        hidden_dim: usize,
        output_dim: usize,
        pred_hidden_dim: usize,
    ) -> SslResult<Self> {
        Self::three_layer(input_dim, hidden_dim, output_dim, pred_hidden_dim, false)
    }

    fn three_layer(
        input: usize,
        hidden: usize,
        output: usize,
        pred_hidden: usize,
        last_projector_bias: bool,
    ) -> SslResult<Self> {
        let last = Layer::linear(hidden, output).with_batch_norm(BatchNorm::PLAIN);
        let last = if last_projector_bias {
            last.with_frozen_bias()
        } else {
            last
        };
        Self::new(
            Stack::new(&[
                Layer::linear(input, hidden)
                    .with_batch_norm(BatchNorm::AFFINE)
                    .with_relu(),
                Layer::linear(hidden, hidden)
                    .with_batch_norm(BatchNorm::AFFINE)
                    .with_relu(),
                last,
            ])?,
            Stack::new(&[
                Layer::linear(output, pred_hidden)
                    .with_batch_norm(BatchNorm::AFFINE)
                    .with_relu(),
                Layer::linear(pred_hidden, output).with_bias(),
            ])?,
            false,
            false,
        )
    }

    /// Encoder output width (the projector's input).
    #[must_use]
    pub fn d_encoder(&self) -> usize {
        self.projector.d_in()
    }

    /// Projection width (= the predictor's input and output width).
    #[must_use]
    pub fn d_out(&self) -> usize {
        self.projector.d_out()
    }

    /// Every layer, projector first, with whether it belongs to the projector.
    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.projector
            .layers()
            .iter()
            .chain(self.predictor.layers())
    }

    /// How many `f32` the flat parameters hold: the encoder's
    /// ([`encoder_param_count`](Self::encoder_param_count)), then each layer's
    /// ([`Layer::param_count`]), projector first.
    ///
    /// # Errors
    /// `InvalidParameter { name: "config", .. }` when it overflows `usize`.
    pub fn param_count(&self) -> SslResult<usize> {
        self.head_param_count()?
            .checked_add(self.encoder_param_count().map_err(|_| PARAM_OVERFLOW)?)
            .ok_or(PARAM_OVERFLOW)
    }

    /// The projector's and the predictor's parameters.
    pub(crate) fn head_param_count(&self) -> SslResult<usize> {
        self.layers().try_fold(0_usize, |total, layer| {
            layer
                .param_count()
                .and_then(|count| total.checked_add(count))
                .ok_or(PARAM_OVERFLOW)
        })
    }

    /// The widest vector either stack keeps between its two stages, per input: 0 for
    /// stacks of up to two layers (the reference's), the first layer's width for three
    /// (the official projector: `prev_dim`), the second's for four.
    #[must_use]
    pub fn intermediate_len(&self) -> usize {
        let of = |stack: &Stack| match stack.layers() {
            [first, _, _] => first.d_out,
            [_, second, _, _] => second.d_out,
            _ => 0,
        };
        of(&self.projector).max(of(&self.predictor))
    }

    /// How many `f32` of `workspace` suffice for every call on up to `n` inputs or pairs
    /// ([`SimSiamHead::loss`](crate::SimSiamHead::loss) is `n = 1`):
    /// `min(n, 8)·(4·d_out + 2·intermediate_len)`, the projections and predictions of
    /// the eight pairs (sixteen inputs) processed together and their intermediate
    /// vectors, plus, for `n ≥ 2`, the blocks of the batch calls' lanes path,
    /// [`lanes_len`](Self::lanes_len). `0` for `n = 0`; for the reference's head
    /// `4·d_out` for `n = 1` and `4·d_out·min(n, 8) + lanes_len` from `n = 2`. Each call
    /// documents what it needs itself, which may be less.
    ///
    /// With an encoder, add `2·n·d_encoder` (the features of both views) and the
    /// encoder's [`Encoder::eval_work_len`]`(n)` (`2·n·widest activation + conv
    /// scratch`): linear in `n`, as the encoder runs on the whole batch at once. Every
    /// call of a network with an encoder takes at least `workspace_len(n)`.
    ///
    /// # Errors
    /// The architecture's errors; `InvalidParameter { name: "d_out", reason:
    /// "workspace length overflows usize" }` on overflow.
    ///
    /// # Examples
    /// ```
    /// use simsiam::model::Architecture;
    /// let official = Architecture::official(2048, 2048, 512)?;
    /// assert_eq!(official.workspace_len(1)?, 4 * 2048 + 2 * 2048);
    /// assert_eq!(official.lanes_len(), 16 * (2048 + 2048 + 256) + 15);
    /// assert_eq!(official.workspace_len(64)?, 8 * (4 * 2048 + 2 * 2048) + official.lanes_len());
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn workspace_len(&self, n: usize) -> SslResult<usize> {
        let head = self.head_workspace_len(n)?;
        match self.active_encoder() {
            None => Ok(head),
            Some(encoder) => head
                .checked_add(encoder_workspace_len(encoder, n)?)
                .ok_or(crate::error::WORKSPACE_OVERFLOW),
        }
    }

    /// [`workspace_len`](Self::workspace_len) of the projector and predictor alone.
    pub(crate) fn head_workspace_len(&self, n: usize) -> SslResult<usize> {
        self.validate()?;
        let per_pair = self
            .d_out()
            .checked_mul(4)
            .and_then(|outputs| {
                let scratch = self.intermediate_len().checked_mul(2)?;
                outputs.checked_add(scratch)
            })
            .ok_or(crate::error::WORKSPACE_OVERFLOW)?;
        let lanes = if n >= 2 { self.lanes_len() } else { 0 };
        per_pair
            .checked_mul(n.min(super::sizes::BATCH_PAIRS))
            .and_then(|len| len.checked_add(lanes))
            .ok_or(crate::error::WORKSPACE_OVERFLOW)
    }

    /// How many `f32` of workspace the lanes path of the batch calls takes (groups of
    /// three to sixteen inputs: a batch forward call on more than two inputs, a batch
    /// loss of two pairs or more): `16·(pack + hidden + rows) + 15`, three blocks of
    /// lanes (16 floats, one per input of a group) and 15 floats of slack that let them
    /// start on a 64-byte line. The block sizes follow the head's *stages* (a stack of
    /// two layers is one fused stage; of three, a single layer and then a fused pair; of
    /// four, two pairs):
    /// - `pack = min(D_in, P)` input columns, `D_in` the widest input of a stage;
    /// - `hidden = min(H, P)` hidden units, `H` the widest output of the first layer of a
    ///   fused stage (0 when no stage is fused);
    /// - `rows = min(D_out, R)` output rows, `D_out` the widest output of a stage;
    ///
    /// with `P = 128`, `R = 64` when `D_in` and `H` are both at most 128, else
    /// `P = 2048`, `R = 256` (whole weight rows per pass, which stream faster from memory
    /// on wide heads). At most `16·4352 + 15` floats (272 KiB), 52 KiB for 256/512/128/64.
    ///
    /// # Examples
    /// ```
    /// use simsiam::model::Architecture;
    /// use simsiam::SimSiamConfig;
    /// // 64 → 128 → 32 and 32 → 64 → 32: pack 64, hidden 128, rows 32 (14 KiB).
    /// let reference = Architecture::reference(SimSiamConfig::default())?;
    /// assert_eq!(reference.lanes_len(), 16 * (64 + 128 + 32) + 15);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    #[must_use]
    pub fn lanes_len(&self) -> usize {
        let [d_in, hidden, d_out] = self.lane_widths();
        super::sizes::lanes_len(d_in, hidden, d_out)
    }

    /// The widest input, fused hidden layer and output of the stages of either stack
    /// (see [`lanes_len`](Self::lanes_len)).
    pub(crate) fn lane_widths(&self) -> [usize; 3] {
        let mut widest = [0_usize; 3];
        for stack in [&self.projector, &self.predictor] {
            let stages = match stack.layers() {
                [a] => [Some((a, None)), None],
                [a, b] => [Some((a, Some(b))), None],
                [a, b, c] => [Some((a, None)), Some((b, Some(c)))],
                [a, b, c, d] => [Some((a, Some(b))), Some((c, Some(d)))],
                _ => [None, None],
            };
            for (first, second) in stages.into_iter().flatten() {
                let hidden = second.map_or(0, |_| first.d_out);
                let d_out = second.unwrap_or(first).d_out;
                for (w, value) in widest.iter_mut().zip([first.d_in, hidden, d_out]) {
                    *w = (*w).max(value);
                }
            }
        }
        widest
    }

    /// The widest layer output of either stack.
    #[must_use]
    pub fn max_width(&self) -> usize {
        self.layers().map(|layer| layer.d_out).max().unwrap_or(0)
    }
}

/// What an encoder adds to the workspace of a call on `n` inputs or pairs.
fn encoder_workspace_len(encoder: &Encoder, n: usize) -> SslResult<usize> {
    if n == 0 {
        return Ok(0);
    }
    n.checked_mul(encoder.d_out())
        .and_then(|features| features.checked_mul(2))
        .and_then(|features| features.checked_add(encoder.eval_work_len(n).ok()?))
        .ok_or(crate::error::WORKSPACE_OVERFLOW)
}

#[cfg(test)]
mod tests {
    use super::{Architecture, BatchNorm, Layer, MAX_STACK_LAYERS, Stack};
    use crate::SslError;
    use crate::layers::{BatchNorm1d, Bias, LayerKind, Linear};

    const fn linear(d_in: usize, d_out: usize) -> LayerKind {
        LayerKind::Linear(Linear {
            d_in,
            d_out,
            bias: Bias::None,
        })
    }

    fn kinds_of(stack: &Stack) -> ([LayerKind; 3 * MAX_STACK_LAYERS], usize) {
        let mut kinds = [LayerKind::Relu; 3 * MAX_STACK_LAYERS];
        let mut len = 0;
        for (slot, kind) in kinds.iter_mut().zip(stack.kinds()) {
            *slot = kind;
            len += 1;
        }
        (kinds, len)
    }

    #[test]
    fn every_preset_stack_round_trips_through_its_kinds() {
        let presets = [
            Architecture::reference(crate::SimSiamConfig::default()).unwrap(),
            Architecture::official(32, 16, 8).unwrap(),
            Architecture::lightly(32, 24, 16, 8).unwrap(),
        ];
        for architecture in presets {
            for stack in [architecture.projector, architecture.predictor] {
                let (kinds, len) = kinds_of(&stack);
                assert_eq!(Stack::from_kinds(&kinds[..len]), Ok(stack));
            }
        }
        // The official projector: 8 kinds, the last bias-free Linear + plain BatchNorm.
        let official = Architecture::official(32, 16, 8).unwrap();
        let (kinds, len) = kinds_of(&official.projector);
        assert_eq!(len, 8);
        assert!(matches!(
            kinds[len - 1],
            LayerKind::BatchNorm1d(BatchNorm1d { affine: false, .. })
        ));
    }

    #[test]
    fn a_frozen_bias_and_an_eps_survive_the_round_trip() {
        let layer = Layer::linear(3, 2)
            .with_frozen_bias()
            .with_batch_norm(BatchNorm::PLAIN.with_eps(1e-3));
        let stack = Stack::new(&[layer]).unwrap();
        let (kinds, len) = kinds_of(&stack);
        assert_eq!(len, 2);
        assert!(matches!(
            kinds[0],
            LayerKind::Linear(Linear {
                bias: Bias::Frozen,
                ..
            })
        ));
        assert_eq!(Stack::from_kinds(&kinds[..len]), Ok(stack));
    }

    #[test]
    fn lists_that_are_not_dense_runs_get_typed_errors() {
        let not_runs = SslError::InvalidParameter {
            name: "layers",
            reason: "a head stack is runs of Linear, then BatchNorm1d and ReLU as present",
        };
        let bn = |c| LayerKind::BatchNorm1d(BatchNorm1d::new(c));
        assert_eq!(Stack::from_kinds(&[LayerKind::Relu]), Err(not_runs));
        assert_eq!(
            Stack::from_kinds(&[linear(2, 3), LayerKind::Relu, bn(3)]),
            Err(not_runs)
        );
        assert_eq!(
            Stack::from_kinds(&[linear(2, 3), bn(3), bn(3)]),
            Err(not_runs)
        );
        assert_eq!(
            Stack::from_kinds(&[linear(2, 3), bn(4)]),
            Err(SslError::DimensionMismatch {
                expected: 3,
                got: 4
            })
        );
        let slow = LayerKind::BatchNorm1d(BatchNorm1d {
            momentum: 0.01,
            ..BatchNorm1d::new(3)
        });
        assert!(matches!(
            Stack::from_kinds(&[linear(2, 3), slow]),
            Err(SslError::InvalidParameter {
                name: "momentum",
                ..
            })
        ));
        assert!(matches!(
            Stack::from_kinds(&[]),
            Err(SslError::InvalidParameter { name: "layers", .. })
        ));
        let five = [linear(2, 2); MAX_STACK_LAYERS + 1];
        assert_eq!(
            Stack::from_kinds(&five),
            Err(SslError::InvalidParameter {
                name: "layers",
                reason: "a stack has at most MAX_STACK_LAYERS (4) layers",
            })
        );
        assert_eq!(
            Stack::from_kinds(&five[..MAX_STACK_LAYERS]).map(|s| s.layers().len()),
            Ok(MAX_STACK_LAYERS)
        );
    }
}
