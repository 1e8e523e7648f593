//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a HAPT file could not be read, or a request on the data could not be met.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HaptError {
    /// The file could not be read.
    Io {
        /// The file that was opened.
        path: PathBuf,
        /// What the operating system said.
        kind: io::ErrorKind,
    },
    /// The first 8 bytes are not `HAPTBIN\0`: not a HAPT file.
    BadMagic {
        /// The bytes found.
        found: [u8; 8],
    },
    /// A format version this crate does not read.
    UnsupportedVersion {
        /// The version in the header.
        found: u16,
    },
    /// The header names a channel count other than 6.
    UnsupportedChannels {
        /// The channel count in the header.
        found: u16,
    },
    /// The data ends before the length the header (or the header's own size) needs.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The sha256 stored in the header does not match the header and body.
    ChecksumMismatch,
    /// The body does not inflate (corrupt zlib stream, Adler-32 mismatch, or too much output).
    Decompress {
        /// The inflater's reason.
        reason: &'static str,
    },
    /// Sizes or counts in the file disagree with each other, or a value is out of range.
    Inconsistent {
        /// Which check failed.
        what: &'static str,
    },
    /// A window length or stride of 0.
    InvalidWindowSpec,
    /// The windows asked for do not fit in memory (a long window with a small stride).
    WindowsTooLarge,
}

impl fmt::Display for HaptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, kind } => write!(f, "cannot read {}: {kind}", path.display()),
            Self::BadMagic { found } => {
                write!(
                    f,
                    "not a HAPT file: magic {found:02x?}, expected \"HAPTBIN\\0\""
                )
            }
            Self::UnsupportedVersion { found } => {
                write!(f, "HAPT file version {found}, this reader knows version 1")
            }
            Self::UnsupportedChannels { found } => {
                write!(f, "HAPT file with {found} channels, expected 6")
            }
            Self::Truncated { needed, got } => {
                write!(f, "HAPT file truncated: {got} bytes, {needed} needed")
            }
            Self::ChecksumMismatch => f.write_str("HAPT file checksum mismatch (corrupt file)"),
            Self::Decompress { reason } => write!(f, "HAPT file body does not inflate: {reason}"),
            Self::Inconsistent { what } => write!(f, "HAPT file inconsistent: {what}"),
            Self::InvalidWindowSpec => f.write_str("window length and stride must be at least 1"),
            Self::WindowsTooLarge => f.write_str("the windows asked for do not fit in memory"),
        }
    }
}

impl std::error::Error for HaptError {}
