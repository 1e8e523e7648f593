//! Layer kinds as modules: each kind's eval forward, training forward, backward,
//! parameter tensors and memory needs side by side, with PyTorch's semantics, over
//! caller buffers, generic over the kernel twin ([`Kernels`](crate::kernels::Kernels)).
//!
//! | kind | module | PyTorch | in place |
//! |---|---|---|---|
//! | [`Linear`] | [`linear`] | `nn.Linear` (after an implicit `nn.Flatten`) | no |
//! | [`BatchNorm1d`] | [`batch_norm`] | `nn.BatchNorm1d` over `[N, C]` or `[N, C, T]` | yes |
//! | [`LayerKind::Relu`] | [`relu`] | `nn.ReLU` | yes |
//! | `Conv1d` (feature `conv`) | `conv1d` | `nn.Conv1d`, dilation 1, groups 1 | no |
//! | `MaxPool1d` (feature `conv`) | `max_pool1d` | `nn.MaxPool1d(k)` (stride `k`, floor mode) | no |
//! | `GlobalMaxPool1d` (feature `conv`) | `global_max_pool1d` | `nn.AdaptiveMaxPool1d(1)` + `nn.Flatten()` | no |
//!
//! # Tensors
//! One sample's activation has a [`Shape`] `[C, T]`, channel-major: element `(c, t)` at
//! `c·T + t`, as PyTorch's `x.view(N, C, T)`; a feature vector is `T = 1`. A batch is
//! sample-major `[N, C, T]`: sample `i` at `i·C·T`.
//!
//! # Parameters
//! A layer's parameters are one flat slice, its tensors in PyTorch `state_dict` order
//! ([`LayerKind::params`]), each row-major: `Linear` `weight [out, in]`, `bias [out]`;
//! `Conv1d` `weight [out, in, k]`, `bias [out]`; `BatchNorm1d` `weight [C]`, `bias [C]`
//! (if affine), `running_mean [C]`, `running_var [C]`. `num_batches_tracked` is an
//! integer counter, not a float parameter: the caller holds it (a `u64`) and
//! [`batch_norm::BatchNorm1d::update_running_stats`] advances it. Parameter gradients
//! have the same layout and length; a backward *adds* into the entries of trainable
//! tensors and never touches the others (frozen bias, running statistics).
//!
//! # Calls
//! Every public function checks its slices' lengths up front (checked arithmetic) and
//! returns a typed [`SslError`] before writing anything; none panics, none allocates.
//! Kinds that keep the shape (BatchNorm, ReLU) work in place: the output overwrites the
//! input, and their backward turns `dL/dy` into `dL/dx` in place. The others read `x`
//! and write `y` (overwritten), and their backward writes `dL/dx` (overwritten, or
//! skipped when not asked for).
//!
//! What each backward needs from its forward:
//! - `Linear`, `Conv1d`, the pools: their input `x` (the previous layer's output, which a
//!   network keeps anyway); nothing saved (the pools recompute the position of each
//!   maximum, the convolution re-gathers its windows).
//! - `BatchNorm1d`: the saved buffer of its training forward ([`batch_norm`]), `x̂` of
//!   every element plus five floats per channel.
//! - `ReLU`: its own output `y` (the mask `y > 0`).
//!
//! # Walking a stack
//! A stack is a list of kinds; each layer's input shape follows from the stack's input by
//! [`LayerKind::output_shape`], and its parameters are a range of one flat slice, the
//! layers' [`LayerKind::params`] one after the other. For a training batch of `n`:
//! - forward: one activation buffer (`n·C·T` of the output shape) per layer that is not
//!   [in place](LayerKind::in_place); BatchNorm and ReLU run on the buffer before them,
//!   except where that buffer is the network's input (a first layer) or a ReLU's output
//!   (whose sign is the ReLU's mask): there they get a buffer of their own too.
//!   Each BatchNorm also fills its saved buffer ([`LayerKind::saved_len`]). One scratch
//!   of the largest [`LayerKind::scratch_len`] serves every call in turn.
//! - backward, last layer first, with two gradient buffers of the widest activation used
//!   in turn: an in-place kind turns the current gradient into its input's in place; any
//!   other kind reads its input (the previous activation buffer, as the in-place kinds
//!   after it left it) and writes `dL/dx` into the other buffer. Every reader wants that
//!   final state: ReLU's mask is its output's sign, BatchNorm reads only its saved `x̂`.
//!   The first layer's `dx` is the network's input gradient (or skipped).
//! - then, once every backward and check has passed, each BatchNorm's
//!   [`update_running_stats`](BatchNorm1d::update_running_stats), so that a step stays all
//!   or nothing.
//!
//! The model's dense `Layer` (`Linear`, then BatchNorm and ReLU when present) is the run
//! `[Linear, BatchNorm1d?, Relu?]` of kinds, with the same flat parameter order
//! (`W`, `b`, `γ`, `β`, `running_mean`, `running_var`); its fused stages are runs of one
//! or two such layers. tests/layers.rs checks that the kinds walked one after the other
//! give the fused eval path's and the training step's results bit for bit on the scalar
//! twin.
//!
//! # Summation order
//! `Linear` and `BatchNorm1d` sum exactly as the training step of [`crate::train`] does
//! (the same kernels, start values and order): on the [`Scalar`](crate::kernels::Scalar)
//! twin the results are the same bits, so a fused path can be checked against these
//! modules bit for bit.
//!
//! # Examples
//! The shapes and parameters of a small sequence encoder (feature `conv`), then a dense
//! layer run on both twins:
//! ```
//! use simsiam::layers::{Bias, LayerKind, Shape, linear::Linear};
//! let kind = LayerKind::Linear(Linear { d_in: 3, d_out: 2, bias: Bias::Trainable });
//! assert_eq!(kind.output_shape(Shape::vector(3))?, Shape::vector(2));
//! let names: Vec<_> = kind.params().iter().map(|p| p.name).collect();
//! assert_eq!(names, ["weight", "bias"]);
//! assert_eq!(kind.param_count()?, 8);
//! # Ok::<(), simsiam::SslError>(())
//! ```

pub mod batch_norm;
pub mod linear;
pub mod relu;

#[cfg(feature = "conv")]
pub mod conv1d;
#[cfg(feature = "conv")]
pub mod global_max_pool1d;
#[cfg(feature = "conv")]
pub mod max_pool1d;

use crate::error::{SslError, SslResult};

pub use batch_norm::BatchNorm1d;
#[cfg(feature = "conv")]
pub use conv1d::{Conv1d, Padding};
pub use linear::Linear;
#[cfg(feature = "conv")]
pub use max_pool1d::MaxPool1d;

/// One sample's activation: `channels × len`, channel-major (element `(c, t)` at
/// `c·len + t`). A feature vector of width `d` is `Shape { channels: d, len: 1 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Channels `C` (the features of a vector).
    pub channels: usize,
    /// Positions in time `T` (1 for a vector).
    pub len: usize,
}

impl Shape {
    /// A feature vector of width `d` (`[d, 1]`).
    #[must_use]
    pub const fn vector(d: usize) -> Self {
        Self {
            channels: d,
            len: 1,
        }
    }

    /// A sequence of `channels` channels over `len` positions.
    #[must_use]
    pub const fn sequence(channels: usize, len: usize) -> Self {
        Self { channels, len }
    }

    /// Floats per sample, `C·T`.
    ///
    /// # Errors
    /// `InvalidParameter` (`"shape"`) when a dimension is zero or `C·T` overflows.
    pub fn size(self) -> SslResult<usize> {
        if self.channels == 0 || self.len == 0 {
            return Err(SslError::InvalidParameter {
                name: "shape",
                reason: "channels and len must be at least 1",
            });
        }
        self.channels.checked_mul(self.len).ok_or(OVERFLOW)
    }

    /// Floats in a batch of `n` samples, `n·C·T`.
    ///
    /// # Errors
    /// As [`size`](Self::size); `InvalidParameter` (`"n"`) when `n` is zero or the
    /// product overflows.
    pub fn batch_len(self, n: usize) -> SslResult<usize> {
        let size = self.size()?;
        if n == 0 {
            return Err(SslError::InvalidParameter {
                name: "n",
                reason: "a batch holds at least one sample",
            });
        }
        n.checked_mul(size).ok_or(OVERFLOW)
    }
}

/// The error of a size that overflows `usize`.
pub(crate) const OVERFLOW: SslError = SslError::InvalidParameter {
    name: "shape",
    reason: "size overflows usize",
};

/// A layer's bias: none, trained, or present but frozen (its gradient is never written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Bias {
    /// No bias (`bias=False`).
    #[default]
    None,
    /// A trained bias.
    Trainable,
    /// A bias that training leaves as it is (`requires_grad = False`, as the official
    /// SimSiam projector's last layer).
    Frozen,
}

impl Bias {
    /// Whether the layer has a bias tensor.
    #[must_use]
    pub const fn present(self) -> bool {
        !matches!(self, Self::None)
    }
}

/// The largest rank of a parameter tensor (a convolution's weight).
pub const MAX_RANK: usize = 3;

/// The most parameter tensors a kind has (BatchNorm's four).
pub const MAX_PARAM_TENSORS: usize = 4;

/// One parameter tensor of a layer: its `state_dict` name, shape and place in the
/// layer's flat parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamTensor {
    /// The key's last part in PyTorch's `state_dict` (`"weight"`, `"bias"`,
    /// `"running_mean"`, `"running_var"`).
    pub name: &'static str,
    /// The dimensions, `rank` of them used (the rest 1).
    pub dims: [usize; MAX_RANK],
    /// How many of `dims` the tensor has.
    pub rank: usize,
    /// Where the tensor starts in the layer's parameters (floats).
    pub offset: usize,
    /// Elements, the product of the dimensions.
    pub len: usize,
    /// Whether a backward writes its gradient (false for running statistics and a
    /// frozen bias).
    pub trainable: bool,
}

/// A layer's parameter tensors in `state_dict` order (at most [`MAX_PARAM_TENSORS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamTensors {
    tensors: [ParamTensor; MAX_PARAM_TENSORS],
    count: usize,
}

impl ParamTensors {
    const EMPTY_TENSOR: ParamTensor = ParamTensor {
        name: "",
        dims: [1; MAX_RANK],
        rank: 0,
        offset: 0,
        len: 0,
        trainable: false,
    };

    /// No tensors.
    pub(crate) const NONE: Self = Self {
        tensors: [Self::EMPTY_TENSOR; MAX_PARAM_TENSORS],
        count: 0,
    };

    /// Appends a tensor of `dims` after the others (dropped past
    /// [`MAX_PARAM_TENSORS`], never for the kinds here; lengths saturate, and
    /// [`LayerKind::param_count`] checks them).
    pub(crate) fn push(&mut self, name: &'static str, dims: &[usize], trainable: bool) {
        let offset = self.total();
        let Some(slot) = self.tensors.get_mut(self.count) else {
            return;
        };
        let mut tensor = Self::EMPTY_TENSOR;
        tensor.name = name;
        tensor.offset = offset;
        tensor.trainable = trainable;
        tensor.len = 1;
        for (d, v) in tensor.dims.iter_mut().zip(dims) {
            *d = *v;
            tensor.rank = tensor.rank.saturating_add(1);
            tensor.len = tensor.len.saturating_mul(*v);
        }
        *slot = tensor;
        self.count = self.count.saturating_add(1);
    }

    /// The tensors, in order.
    pub fn iter(&self) -> core::slice::Iter<'_, ParamTensor> {
        self.tensors.get(..self.count).unwrap_or_default().iter()
    }

    /// The tensor named `name`, if the layer has one.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&ParamTensor> {
        self.iter().find(|t| t.name == name)
    }

    /// Floats of all tensors together (saturating; see [`LayerKind::param_count`]).
    #[must_use]
    pub fn total(&self) -> usize {
        self.iter()
            .fold(0_usize, |sum, t| sum.saturating_add(t.len))
    }
}

impl<'a> IntoIterator for &'a ParamTensors {
    type Item = &'a ParamTensor;
    type IntoIter = core::slice::Iter<'a, ParamTensor>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One layer of a stack, with PyTorch's semantics. Each variant's type (in its module)
/// holds the computations.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LayerKind {
    /// `nn.Linear` over the flattened sample.
    Linear(Linear),
    /// `nn.BatchNorm1d`.
    BatchNorm1d(BatchNorm1d),
    /// `nn.ReLU`.
    Relu,
    /// `nn.Conv1d` (dilation 1, groups 1).
    #[cfg(feature = "conv")]
    Conv1d(Conv1d),
    /// `nn.MaxPool1d(kernel)`: stride = kernel, no padding, floor mode.
    #[cfg(feature = "conv")]
    MaxPool1d(MaxPool1d),
    /// `nn.AdaptiveMaxPool1d(1)` then `nn.Flatten()`: `[C, T] → [C, 1]`.
    #[cfg(feature = "conv")]
    GlobalMaxPool1d,
}

impl LayerKind {
    /// The shape of one sample's output for an input of shape `input`.
    ///
    /// # Errors
    /// `InvalidParameter` for a zero dimension (of the kind or of `input`) or an
    /// overflowing size; `DimensionMismatch` when `input` does not fit the kind (its
    /// size against a `Linear`'s `d_in`, its channels against a BatchNorm's or a
    /// convolution's); see each kind's `output_shape`.
    pub fn output_shape(&self, input: Shape) -> SslResult<Shape> {
        match self {
            Self::Linear(linear) => linear.output_shape(input),
            Self::BatchNorm1d(batch_norm) => batch_norm.output_shape(input),
            Self::Relu => relu::output_shape(input),
            #[cfg(feature = "conv")]
            Self::Conv1d(conv) => conv.output_shape(input),
            #[cfg(feature = "conv")]
            Self::MaxPool1d(pool) => pool.output_shape(input),
            #[cfg(feature = "conv")]
            Self::GlobalMaxPool1d => global_max_pool1d::output_shape(input),
        }
    }

    /// The parameter tensors, in PyTorch `state_dict` order, with their shapes and
    /// offsets in the layer's flat parameters. ReLU and the pools have none.
    #[must_use]
    pub fn params(&self) -> ParamTensors {
        match self {
            Self::Linear(linear) => linear.params(),
            Self::BatchNorm1d(batch_norm) => batch_norm.params(),
            #[cfg(feature = "conv")]
            Self::Conv1d(conv) => conv.params(),
            _ => ParamTensors::NONE,
        }
    }

    /// Floats of the layer's flat parameters.
    ///
    /// # Errors
    /// `InvalidParameter` (`"shape"`) when the count overflows `usize`.
    pub fn param_count(&self) -> SslResult<usize> {
        let mut total = 0_usize;
        for tensor in &self.params() {
            let len = tensor.dims[..tensor.rank.min(MAX_RANK)]
                .iter()
                .try_fold(1_usize, |p, d| p.checked_mul(*d))
                .ok_or(OVERFLOW)?;
            total = total.checked_add(len).ok_or(OVERFLOW)?;
        }
        Ok(total)
    }

    /// Floating-point operations of one sample's forward pass (a multiply-add counts
    /// two; an element-wise operation or a comparison one).
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape).
    pub fn flops(&self, input: Shape) -> SslResult<u64> {
        let out = self.output_shape(input)?;
        let in_size = input.size()? as u64;
        let out_size = out.size()? as u64;
        let mul = |a: u64, b: u64| a.checked_mul(b).ok_or(OVERFLOW);
        match self {
            Self::Linear(linear) => mul(2, mul(linear.d_in as u64, linear.d_out as u64)?),
            // (x − mean)·α + β': a multiply and an add per element.
            Self::BatchNorm1d(_) => mul(2, in_size),
            #[cfg(feature = "conv")]
            Self::Conv1d(conv) => mul(
                2,
                mul(out_size, mul(conv.c_in as u64, conv.kernel as u64)?)?,
            ),
            // One comparison per element.
            _ => Ok(in_size.max(out_size)),
        }
    }

    /// Floats a training forward saves per batch of `n` for its backward, beyond the
    /// layer's input and output (which the network keeps): `n·C·T + 5·C` for
    /// BatchNorm ([`BatchNorm1d::saved_len`]), 0 for every other kind.
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape), and for an `n` of 0 or an overflowing
    /// length.
    pub fn saved_len(&self, input: Shape, n: usize) -> SslResult<usize> {
        self.output_shape(input)?;
        match self {
            Self::BatchNorm1d(batch_norm) => batch_norm.saved_len(input, n),
            _ => input.batch_len(n).map(|_| 0),
        }
    }

    /// Floats of working scratch one call (forward or backward) needs at least, whatever
    /// the batch: one sample's windows and outputs for a convolution
    /// (`Conv1d::scratch_len`; a multiple of it runs several samples per product); 0 for
    /// every other kind.
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape).
    pub fn scratch_len(&self, input: Shape) -> SslResult<usize> {
        self.output_shape(input)?;
        match self {
            #[cfg(feature = "conv")]
            Self::Conv1d(conv) => conv.scratch_len(input),
            _ => Ok(0),
        }
    }

    /// Whether the kind works in place (output over input, same shape): BatchNorm and
    /// ReLU.
    #[must_use]
    pub const fn in_place(&self) -> bool {
        matches!(self, Self::BatchNorm1d(_) | Self::Relu)
    }
}

/// `Err(DimensionMismatch)` unless `slice_len` is `n` samples of `shape`.
pub(crate) fn check_batch(shape: Shape, n: usize, slice_len: usize) -> SslResult<usize> {
    let expected = shape.batch_len(n)?;
    if slice_len != expected {
        return Err(SslError::DimensionMismatch {
            expected,
            got: slice_len,
        });
    }
    Ok(expected)
}

/// `Err(DimensionMismatch)` unless `len == expected`.
pub(crate) fn check_len(expected: usize, len: usize) -> SslResult<()> {
    crate::error::check_len(expected, len)
}

/// `Err(InvalidParameter { name, .. })` when `value` is zero.
pub(crate) fn nonzero(value: usize, name: &'static str) -> SslResult<usize> {
    if value == 0 {
        Err(SslError::InvalidParameter {
            name,
            reason: "must be at least 1",
        })
    } else {
        Ok(value)
    }
}
