//! The crate's one error type.

use core::fmt;

/// Every way a `simsiam` call can fail.
///
/// Small and `Copy`: payloads are integers and `&'static str`, so it needs no
/// allocator. The first two variants print exactly as `oxicuda-ssl` 0.5.5 prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslError {
    /// A slice has the wrong length for the shape it stands for.
    DimensionMismatch {
        /// The length the shape requires.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// A configuration value is out of range (zero, or a product that overflows `usize`).
    InvalidParameter {
        /// The field or argument at fault.
        name: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// An input, a parameter or an intermediate result is NaN or infinite.
    ///
    /// The reference silently returns NaN here; this crate says so instead.
    NonFinite {
        /// Which value was not finite (`"z"`, `"params"`, `"projector output"`, …).
        location: &'static str,
    },
    /// A fixed-capacity buffer (a `heapless::Vec`, a stack workspace) is too small.
    CapacityTooSmall {
        /// How many `f32` the call needs.
        needed: usize,
        /// How many the buffer can hold.
        capacity: usize,
    },
    /// The allocator could not provide the memory (only with the `alloc` feature).
    OutOfMemory {
        /// How many `f32` were requested.
        floats: usize,
    },
    /// A parameter image is malformed (see [`crate::image`]).
    Image(ImageError),
}

/// Every way a parameter image ([`crate::image`]) can be malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageError {
    /// The bytes end before the header, the layer table or the data does.
    Truncated {
        /// How many bytes the image needs (as far as could be read).
        needed: usize,
        /// How many there are.
        got: usize,
    },
    /// The first eight bytes are not [`IMAGE_MAGIC`](crate::image::IMAGE_MAGIC).
    BadMagic,
    /// A format version this build cannot read.
    UnsupportedVersion {
        /// The version in the header.
        version: u32,
    },
    /// An element type other than `f32` (the only one for now).
    UnsupportedElementType {
        /// The type code in the header.
        code: u32,
    },
    /// The stored CRC-32 does not match the bytes.
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// The parameters cannot be viewed in place: their address is not a multiple of 4
    /// (wrap `include_bytes!` in [`AlignedImage`](crate::image::AlignedImage)), or the
    /// target is big-endian. Copying them still works.
    Misaligned,
    /// A layer record describes an impossible network (zero width, layers that do not
    /// chain, a predictor that does not map the projection to itself, a bad `eps`, an
    /// overflowing size, an unknown kind, unknown flags, a field its kind does not use).
    BadLayer {
        /// The layer's position in the table (from 0: the encoder's first, then the
        /// projector's and the predictor's).
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header field disagrees with the layer table or the length of the bytes.
    Inconsistent {
        /// Which field.
        field: &'static str,
    },
    /// The image needs a part of the crate this build leaves out: an encoder (feature
    /// `encoder`) or a convolution or pool (feature `conv`).
    FeatureRequired {
        /// The first layer record that needs it (its position in the table, from 0).
        index: usize,
        /// The cargo feature to build with.
        feature: &'static str,
    },
}

impl From<ImageError> for SslError {
    fn from(error: ImageError) -> Self {
        Self::Image(error)
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, got } => {
                write!(f, "truncated: needs {needed} bytes, has {got}")
            }
            Self::BadMagic => f.write_str("not a simsiam parameter image (bad magic)"),
            Self::UnsupportedVersion { version } => {
                write!(f, "unsupported format version {version}")
            }
            Self::UnsupportedElementType { code } => {
                write!(f, "unsupported element type {code}")
            }
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Self::Misaligned => f.write_str(
                "parameters not 4-byte aligned (or big-endian target): cannot view in place",
            ),
            Self::BadLayer { index, reason } => write!(f, "layer {index}: {reason}"),
            Self::Inconsistent { field } => write!(f, "inconsistent header field `{field}`"),
            Self::FeatureRequired { index, feature } => write!(
                f,
                "layer {index} needs the crate feature `{feature}`, which this build leaves out"
            ),
        }
    }
}

/// `Result` with [`SslError`].
pub type SslResult<T> = Result<T, SslError>;

impl fmt::Display for SslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DimensionMismatch { expected, got } => {
                write!(f, "dimension mismatch: expected {expected}, got {got}")
            }
            Self::InvalidParameter { name, reason } => {
                write!(f, "invalid parameter `{name}`: {reason}")
            }
            Self::NonFinite { location } => write!(f, "non-finite value at: {location}"),
            Self::CapacityTooSmall { needed, capacity } => {
                write!(f, "capacity too small: need {needed} f32, have {capacity}")
            }
            Self::OutOfMemory { floats } => {
                write!(f, "out of memory: could not allocate {floats} f32")
            }
            Self::Image(error) => write!(f, "invalid parameter image: {error}"),
        }
    }
}

impl core::error::Error for SslError {}

impl core::error::Error for ImageError {}

/// A batch size times a row width overflows `usize` (the core and the `alloc` wrapper
/// report this one cause the same way).
pub(crate) const BATCH_OVERFLOW: SslError = SslError::InvalidParameter {
    name: "n",
    reason: "batch size × dimension overflows usize",
};

/// A workspace length (`4·d_out`, times the pairs of a batch group) overflows `usize`.
pub(crate) const WORKSPACE_OVERFLOW: SslError = SslError::InvalidParameter {
    name: "d_out",
    reason: "workspace length overflows usize",
};

/// `Err(DimensionMismatch)` unless `got == expected`.
#[inline]
pub(crate) fn check_len(expected: usize, got: usize) -> SslResult<()> {
    if got == expected {
        Ok(())
    } else {
        Err(SslError::DimensionMismatch { expected, got })
    }
}

/// `Err(NonFinite { location })` unless every element is finite.
#[inline]
pub(crate) fn check_finite(values: &[f32], location: &'static str) -> SslResult<()> {
    // The largest magnitude's bits, without an early exit: finite when below the
    // exponent's all-ones pattern (infinity; NaN is above it). It vectorises on x86 and
    // is an integer mask and maximum per value on FPUs without vector units.
    const MAGNITUDE: u32 = 0x7fff_ffff;
    const INFINITY: u32 = 0x7f80_0000;
    let largest = values
        .iter()
        .fold(0, |largest: u32, v| largest.max(v.to_bits() & MAGNITUDE));
    if largest < INFINITY {
        Ok(())
    } else {
        Err(SslError::NonFinite { location })
    }
}
