//! The UCI HAPT raw sensor signals, as committed at `data/hapt.bin`, and the hapt recipes'
//! windows, subject split and standardisation; [`probe`] holds the recipes' evaluation
//! protocols (linear probe and nearest neighbours, as scikit-learn computes them).
//!
//! HAPT (Smartphone-Based Recognition of Human Activities and Postural Transitions; Reyes-Ortiz,
//! Anguita, Ghio, Oneto, Parra; UCI Machine Learning Repository, CC BY 4.0) holds 61
//! recordings of 30 subjects at 50 Hz: a smartphone's accelerometer (x, y, z in g) and
//! gyroscope (x, y, z in rad/s), with a label per sample: 1–6 activities (walking, walking
//! upstairs, walking downstairs, sitting, standing, lying), 7–12 postural transitions, −1
//! unlabelled. `data/README.md` documents the file byte by byte and where it comes from.
//!
//! The decoder checks the file's sha256, its sizes and counts; bad or truncated data is a
//! [`HaptError`], never a panic.
//!
//! The package's example `hapt` (`examples/hapt.rs`) is the README's main command: the
//! `hapt-dense` / `hapt-conv` recipe trained with `simsiam` and evaluated with [`probe`];
//! `tests/recipe.rs` runs a short version of it.
//!
//! # Examples
//! ```
//! use simsiam_hapt::{Hapt, Split, WindowSpec};
//!
//! let hapt = Hapt::load_committed()?;
//! assert_eq!(hapt.recordings().len(), 61);
//! let mut train = hapt.windows(WindowSpec::RECIPE, Split::Train)?;
//! let stats = train.channel_stats().expect("the training split has windows");
//! train.standardise(&stats);
//! let test = hapt.windows(WindowSpec::RECIPE, Split::Test)?.labelled();
//! assert_eq!(test.count(), 2_874);
//! # Ok::<(), simsiam_hapt::HaptError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod format;
pub mod probe;
mod windows;

use std::path::Path;

pub use error::HaptError;
pub use format::{HEADER_LEN, MAGIC, VERSION};
pub use windows::{ChannelStats, Split, TEST_SUBJECTS, WindowOrigin, WindowSpec, Windows};

/// Channels per sample: acc x, y, z (g), then gyro x, y, z (rad/s).
pub const CHANNELS: usize = 6;

/// The path of the committed data file, `data/hapt.bin` at the repository's root.
pub const DATA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/hapt.bin");

/// The whole data set: every recording, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Hapt {
    sample_rate_hz: u16,
    steps: [f32; CHANNELS],
    recordings: Vec<Recording>,
}

/// One recording (one HAPT experiment) of one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    subject: u16,
    experiment: u16,
    signals: Vec<f32>,
    labels: Vec<i8>,
}

impl Hapt {
    /// Decodes a HAPT file held in memory.
    ///
    /// # Errors
    /// [`HaptError::BadMagic`], [`HaptError::UnsupportedVersion`] or
    /// [`HaptError::UnsupportedChannels`] for a file this crate does not read;
    /// [`HaptError::Truncated`] (with the length needed) for a short one;
    /// [`HaptError::ChecksumMismatch`] if any byte differs from what was written;
    /// [`HaptError::Decompress`] or [`HaptError::Inconsistent`] for a body that does not
    /// decode to what the header declares.
    ///
    /// # Examples
    /// ```
    /// use simsiam_hapt::{Hapt, HaptError};
    /// assert_eq!(Hapt::from_bytes(b"HAPT"), Err(HaptError::Truncated { needed: 88, got: 4 }));
    /// let bytes = std::fs::read(simsiam_hapt::DATA_PATH).expect("committed file");
    /// assert_eq!(Hapt::from_bytes(&bytes)?.samples(), 1_122_772);
    /// # Ok::<(), HaptError>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HaptError> {
        format::decode(bytes)
    }

    /// Reads and decodes the HAPT file at `path`.
    ///
    /// # Errors
    /// [`HaptError::Io`] if the file cannot be read, else as [`Hapt::from_bytes`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, HaptError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| HaptError::Io {
            path: path.to_path_buf(),
            kind: e.kind(),
        })?;
        Self::from_bytes(&bytes)
    }

    /// Reads and decodes the committed file at [`DATA_PATH`].
    ///
    /// # Errors
    /// As [`Hapt::load`].
    pub fn load_committed() -> Result<Self, HaptError> {
        Self::load(DATA_PATH)
    }

    /// The recordings, by experiment id.
    #[must_use]
    pub fn recordings(&self) -> &[Recording] {
        &self.recordings
    }

    /// The total number of samples over all recordings.
    #[must_use]
    pub fn samples(&self) -> usize {
        self.recordings.iter().map(Recording::len).sum()
    }

    /// The sampling rate in Hz (50).
    #[must_use]
    pub fn sample_rate_hz(&self) -> u16 {
        self.sample_rate_hz
    }

    /// Each channel's quantisation step: a value is its 16-bit code times this, in `f32`.
    #[must_use]
    pub fn steps(&self) -> [f32; CHANNELS] {
        self.steps
    }
}

impl Recording {
    /// The subject, 1–30.
    #[must_use]
    pub fn subject(&self) -> u16 {
        self.subject
    }

    /// HAPT's experiment id, 1–61.
    #[must_use]
    pub fn experiment(&self) -> u16 {
        self.experiment
    }

    /// The number of samples (`n`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the recording has no samples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The signals, sample-major `[n × 6]`: sample `t`, channel `c` at `t * 6 + c`; channels
    /// acc x, y, z (g), gyro x, y, z (rad/s).
    #[must_use]
    pub fn signals(&self) -> &[f32] {
        &self.signals
    }

    /// Each sample's label: 1–6 activities, 7–12 transitions, −1 unlabelled.
    #[must_use]
    pub fn labels(&self) -> &[i8] {
        &self.labels
    }
}
