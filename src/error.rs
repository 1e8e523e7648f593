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
        }
    }
}

impl core::error::Error for SslError {}

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
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(SslError::NonFinite { location })
    }
}
