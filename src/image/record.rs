//! The layer records of the table: version 1's dense records (32 bytes) and version 2's
//! kind records (48 bytes), encoded and decoded.

use super::bytes::{f32_at, put, u16_at, u32_at, u64_at};
use crate::error::{ImageError, SslError, SslResult};
use crate::layers::{BatchNorm1d, Bias, LayerKind, Linear};
use crate::model::{BatchNorm, Layer};

/// Bytes of a version-1 record.
pub(super) const RECORD_V1_LEN: usize = 32;
/// Bytes of a version-2 record.
pub(super) const RECORD_V2_LEN: usize = 48;

pub(super) const BIAS: u32 = 1;
pub(super) const BIAS_FROZEN: u32 = 1 << 1;
pub(super) const BATCH_NORM: u32 = 1 << 2;
pub(super) const BATCH_NORM_AFFINE: u32 = 1 << 3;
pub(super) const RELU: u32 = 1 << 4;
/// Version 2, `Conv1d`: PyTorch's `padding='same'` (the padding field is then 0).
pub(super) const PADDING_SAME: u32 = 1 << 5;
/// The flags of a dense head layer (every flag of version 1).
pub(super) const DENSE_FLAGS: u32 = BIAS | BIAS_FROZEN | BATCH_NORM | BATCH_NORM_AFFINE | RELU;

/// Kind codes of version 2.
pub(super) const KIND_DENSE: u16 = 1;
pub(super) const KIND_LINEAR: u16 = 2;
pub(super) const KIND_BATCH_NORM: u16 = 3;
pub(super) const KIND_RELU: u16 = 4;
pub(super) const KIND_CONV1D: u16 = 5;
pub(super) const KIND_MAX_POOL: u16 = 6;
pub(super) const KIND_GLOBAL_MAX_POOL: u16 = 7;

/// Which of a version-2 record's value fields a kind uses (the others must be zero).
const USES_IN: u8 = 1;
const USES_OUT: u8 = 1 << 1;
const USES_KERNEL: u8 = 1 << 2;
const USES_STRIDE: u8 = 1 << 3;
const USES_PADDING: u8 = 1 << 4;
const USES_EPS: u8 = 1 << 5;
const USES_MOMENTUM: u8 = 1 << 6;
const USES_TRACKED: u8 = 1 << 7;

/// One record's fields, decoded as numbers (version 1 fills what it has).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Record {
    pub(super) kind: u16,
    pub(super) flags: u32,
    /// `d_in`, a BatchNorm's channels, a convolution's `c_in`.
    pub(super) d_in: u32,
    /// `d_out`, a convolution's `c_out`.
    pub(super) d_out: u32,
    pub(super) kernel: u32,
    pub(super) stride: u32,
    pub(super) padding: u32,
    pub(super) eps: f32,
    pub(super) momentum: f32,
    pub(super) tracked: u64,
    /// The layer's first parameter, in elements from the start of the data.
    pub(super) offset: u64,
}

const TOO_WIDE: SslError = SslError::InvalidParameter {
    name: "layers",
    reason: "a width above u32::MAX cannot be stored",
};

fn to_u32(value: usize) -> SslResult<u32> {
    u32::try_from(value).map_err(|_| TOO_WIDE)
}

fn bias_flags(bias: Bias) -> u32 {
    match bias {
        Bias::None => 0,
        Bias::Trainable => BIAS,
        Bias::Frozen => BIAS | BIAS_FROZEN,
    }
}

impl Record {
    /// The record of a dense head layer; `tracked` counts for a BatchNorm only.
    pub(super) fn dense(layer: &Layer, tracked: u64) -> SslResult<Self> {
        let mut record = Self {
            kind: KIND_DENSE,
            d_in: to_u32(layer.d_in)?,
            d_out: to_u32(layer.d_out)?,
            ..Self::default()
        };
        if layer.bias {
            record.flags |= BIAS;
        }
        if layer.bias_frozen {
            record.flags |= BIAS_FROZEN;
        }
        if let Some(batch_norm) = layer.batch_norm {
            record.flags |= BATCH_NORM;
            if batch_norm.affine {
                record.flags |= BATCH_NORM_AFFINE;
            }
            record.eps = batch_norm.eps;
            record.tracked = tracked;
        }
        if layer.relu {
            record.flags |= RELU;
        }
        Ok(record)
    }

    /// The record of an encoder layer; `tracked` counts for a BatchNorm only.
    pub(super) fn kind(kind: &LayerKind, tracked: u64) -> SslResult<Self> {
        let mut record = Self::default();
        match kind {
            LayerKind::Linear(linear) => {
                record.kind = KIND_LINEAR;
                record.flags = bias_flags(linear.bias);
                record.d_in = to_u32(linear.d_in)?;
                record.d_out = to_u32(linear.d_out)?;
            }
            LayerKind::BatchNorm1d(batch_norm) => {
                record.kind = KIND_BATCH_NORM;
                if batch_norm.affine {
                    record.flags = BATCH_NORM_AFFINE;
                }
                record.d_in = to_u32(batch_norm.channels)?;
                record.eps = batch_norm.eps;
                record.momentum = batch_norm.momentum;
                record.tracked = tracked;
            }
            LayerKind::Relu => record.kind = KIND_RELU,
            #[cfg(feature = "conv")]
            LayerKind::Conv1d(conv) => {
                use crate::layers::Padding;
                record.kind = KIND_CONV1D;
                record.flags = bias_flags(conv.bias);
                record.d_in = to_u32(conv.c_in)?;
                record.d_out = to_u32(conv.c_out)?;
                record.kernel = to_u32(conv.kernel)?;
                record.stride = to_u32(conv.stride)?;
                match conv.padding {
                    Padding::Zeros(padding) => record.padding = to_u32(padding)?,
                    Padding::Same => record.flags |= PADDING_SAME,
                }
            }
            #[cfg(feature = "conv")]
            LayerKind::MaxPool1d(pool) => {
                record.kind = KIND_MAX_POOL;
                record.kernel = to_u32(pool.kernel)?;
            }
            #[cfg(feature = "conv")]
            LayerKind::GlobalMaxPool1d => record.kind = KIND_GLOBAL_MAX_POOL,
        }
        Ok(record)
    }

    /// Writes the version-1 record (a dense layer) at `at`.
    pub(super) fn write_v1(&self, out: &mut [u8], at: usize) {
        let field = |offset: usize| at.saturating_add(offset);
        put(out, at, &self.d_in.to_le_bytes());
        put(out, field(4), &self.d_out.to_le_bytes());
        put(out, field(8), &self.flags.to_le_bytes());
        put(out, field(12), &self.eps.to_le_bytes());
        put(out, field(16), &self.tracked.to_le_bytes());
        put(out, field(24), &self.offset.to_le_bytes());
    }

    /// Writes the version-2 record at `at`.
    pub(super) fn write_v2(&self, out: &mut [u8], at: usize) {
        let field = |offset: usize| at.saturating_add(offset);
        // Flags fit in 16 bits (the kinds' flags are the six above).
        put(out, at, &self.kind.to_le_bytes());
        put(out, field(2), &(self.flags as u16).to_le_bytes());
        put(out, field(4), &self.d_in.to_le_bytes());
        put(out, field(8), &self.d_out.to_le_bytes());
        put(out, field(12), &self.kernel.to_le_bytes());
        put(out, field(16), &self.stride.to_le_bytes());
        put(out, field(20), &self.padding.to_le_bytes());
        put(out, field(24), &self.eps.to_le_bytes());
        put(out, field(28), &self.momentum.to_le_bytes());
        put(out, field(32), &self.tracked.to_le_bytes());
        put(out, field(40), &self.offset.to_le_bytes());
    }

    /// Reads a version-1 record (a dense layer).
    pub(super) fn read_v1(bytes: &[u8]) -> Self {
        Self {
            kind: KIND_DENSE,
            d_in: u32_at(bytes, 0),
            d_out: u32_at(bytes, 4),
            flags: u32_at(bytes, 8),
            eps: f32_at(bytes, 12),
            tracked: u64_at(bytes, 16),
            offset: u64_at(bytes, 24),
            ..Self::default()
        }
    }

    /// Reads a version-2 record.
    pub(super) fn read_v2(bytes: &[u8]) -> Self {
        Self {
            kind: u16_at(bytes, 0),
            flags: u32::from(u16_at(bytes, 2)),
            d_in: u32_at(bytes, 4),
            d_out: u32_at(bytes, 8),
            kernel: u32_at(bytes, 12),
            stride: u32_at(bytes, 16),
            padding: u32_at(bytes, 20),
            eps: f32_at(bytes, 24),
            momentum: f32_at(bytes, 28),
            tracked: u64_at(bytes, 32),
            offset: u64_at(bytes, 40),
        }
    }

    /// The dense head layer of a record of kind Dense (version 1's fields: version 2's
    /// kernel, stride, padding and momentum must be zero).
    ///
    /// # Errors
    /// `BadLayer` at `index` for unknown flags, a frozen bias without a bias, or
    /// BatchNorm fields on a layer without BatchNorm. Shapes are the architecture's to
    /// check.
    pub(super) fn dense_layer(&self, index: usize) -> SslResult<Layer> {
        let bad = |reason| SslError::Image(ImageError::BadLayer { index, reason });
        if self.flags & !DENSE_FLAGS != 0 {
            return Err(bad("unknown layer flags"));
        }
        let unused = self.kernel | self.stride | self.padding | self.momentum.to_bits();
        if unused != 0 {
            return Err(bad("a field the layer's kind does not use is set"));
        }
        let has = |bit: u32| self.flags & bit != 0;
        let bias = bias_of(self.flags).ok_or(bad("a frozen bias without a bias"))?;
        let mut layer = Layer::linear(self.d_in as usize, self.d_out as usize);
        match bias {
            Bias::None => {}
            Bias::Trainable => layer = layer.with_bias(),
            Bias::Frozen => layer = layer.with_frozen_bias(),
        }
        if has(BATCH_NORM) {
            let batch_norm = if has(BATCH_NORM_AFFINE) {
                BatchNorm::AFFINE
            } else {
                BatchNorm::PLAIN
            };
            layer = layer.with_batch_norm(batch_norm.with_eps(self.eps));
        } else if has(BATCH_NORM_AFFINE) || self.eps.to_bits() != 0 || self.tracked != 0 {
            return Err(bad("BatchNorm fields on a layer without BatchNorm"));
        }
        if has(RELU) {
            layer = layer.with_relu();
        }
        Ok(layer)
    }

    /// The encoder layer kind of a version-2 record.
    ///
    /// # Errors
    /// `BadLayer` at `index` for an unknown kind (or Dense, which only the head has),
    /// flags the kind does not have, a frozen bias without a bias, or a field the kind
    /// does not use that is not zero; `FeatureRequired { feature: "conv" }` for a
    /// convolution or a pool in a build without feature `conv`. Shapes are the
    /// encoder's to check.
    pub(super) fn layer_kind(&self, index: usize) -> SslResult<LayerKind> {
        let bad = |reason| SslError::Image(ImageError::BadLayer { index, reason });
        let (flags, uses) = match self.kind {
            KIND_LINEAR => (BIAS | BIAS_FROZEN, USES_IN | USES_OUT),
            KIND_BATCH_NORM => (
                BATCH_NORM_AFFINE,
                USES_IN | USES_EPS | USES_MOMENTUM | USES_TRACKED,
            ),
            KIND_RELU | KIND_GLOBAL_MAX_POOL => (0, 0),
            KIND_CONV1D => (
                BIAS | BIAS_FROZEN | PADDING_SAME,
                USES_IN | USES_OUT | USES_KERNEL | USES_STRIDE | USES_PADDING,
            ),
            KIND_MAX_POOL => (0, USES_KERNEL),
            _ => return Err(bad("unknown layer kind")),
        };
        if self.flags & !flags != 0 {
            return Err(bad("unknown layer flags"));
        }
        let fields = [
            (USES_IN, u64::from(self.d_in)),
            (USES_OUT, u64::from(self.d_out)),
            (USES_KERNEL, u64::from(self.kernel)),
            (USES_STRIDE, u64::from(self.stride)),
            (USES_PADDING, u64::from(self.padding)),
            (USES_EPS, u64::from(self.eps.to_bits())),
            (USES_MOMENTUM, u64::from(self.momentum.to_bits())),
            (USES_TRACKED, self.tracked),
        ];
        if fields
            .iter()
            .any(|(field, value)| uses & field == 0 && *value != 0)
        {
            return Err(bad("a field the layer's kind does not use is set"));
        }
        let bias = bias_of(self.flags).ok_or(bad("a frozen bias without a bias"))?;
        let d_in = self.d_in as usize;
        let d_out = self.d_out as usize;
        match self.kind {
            KIND_LINEAR => Ok(LayerKind::Linear(Linear { d_in, d_out, bias })),
            KIND_BATCH_NORM => Ok(LayerKind::BatchNorm1d(BatchNorm1d {
                channels: d_in,
                affine: self.flags & BATCH_NORM_AFFINE != 0,
                eps: self.eps,
                momentum: self.momentum,
            })),
            KIND_RELU => Ok(LayerKind::Relu),
            _ => self.conv_kind(index, bias),
        }
    }

    #[cfg(feature = "conv")]
    fn conv_kind(&self, index: usize, bias: Bias) -> SslResult<LayerKind> {
        use crate::layers::{Conv1d, MaxPool1d, Padding};
        match self.kind {
            KIND_CONV1D => {
                let padding = if self.flags & PADDING_SAME != 0 {
                    if self.padding != 0 {
                        return Err(ImageError::BadLayer {
                            index,
                            reason: "padding 'same' with a padding width",
                        }
                        .into());
                    }
                    Padding::Same
                } else {
                    Padding::Zeros(self.padding as usize)
                };
                Ok(LayerKind::Conv1d(Conv1d {
                    c_in: self.d_in as usize,
                    c_out: self.d_out as usize,
                    kernel: self.kernel as usize,
                    stride: self.stride as usize,
                    padding,
                    bias,
                }))
            }
            KIND_MAX_POOL => Ok(LayerKind::MaxPool1d(MaxPool1d {
                kernel: self.kernel as usize,
            })),
            _ => Ok(LayerKind::GlobalMaxPool1d),
        }
    }

    #[cfg(not(feature = "conv"))]
    fn conv_kind(&self, index: usize, _bias: Bias) -> SslResult<LayerKind> {
        Err(ImageError::FeatureRequired {
            index,
            feature: "conv",
        }
        .into())
    }
}

/// The bias the flags give, `None` for a frozen bias without a bias.
fn bias_of(flags: u32) -> Option<Bias> {
    match (flags & BIAS != 0, flags & BIAS_FROZEN != 0) {
        (false, false) => Some(Bias::None),
        (true, false) => Some(Bias::Trainable),
        (true, true) => Some(Bias::Frozen),
        (false, true) => None,
    }
}
