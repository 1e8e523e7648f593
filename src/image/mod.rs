//! The parameter image: one self-describing, checksummed byte string that holds a
//! network's architecture and every parameter, made to be used in place (from flash,
//! with no copy); version 2 also records the input the network expects and, optionally,
//! what resuming its training needs.
//!
//! # Which version is written
//! [`write_image`] writes version 1 for a head alone (projector and predictor: the bytes
//! every earlier build reads, and what firmware embeds) and version 2 for a network with
//! an encoder; [`write_image_with`] always writes version 2, with the input contract and
//! the training section when given. [`Image::parse`] reads both.
//!
//! All integers are little-endian; every image is a 64-byte header, a table of layer
//! records, (version 2) its sections, zero padding up to `header_len` (a multiple of
//! [`IMAGE_ALIGN`] = 64), then the data as `f32` little-endian, nothing after.
//!
//! # Format, version 2
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic [`IMAGE_MAGIC`] = `"SIMSIAM\0"` |
//! | 8 | 4 | format version = 2 |
//! | 12 | 4 | CRC-32 (IEEE, as zlib's `crc32`) of the whole image with these 4 bytes as zero |
//! | 16 | 4 | `header_len`: bytes before the data, `round_up(64 + 48·records + sections, 64)` |
//! | 20 | 4 | element type: 1 = `f32` little-endian (the only one for now) |
//! | 24 | 4 | flags: bit 0 projection L2-normalised, bit 1 prediction L2-normalised, bit 2 input contract, bit 3 standardisation, bit 4 training section |
//! | 28 | 2 | encoder records (0 to [`MAX_ENCODER_LAYERS`] = 16) |
//! | 30 | 2 | projector records (1 to 4) |
//! | 32 | 2 | predictor records (1 to 4) |
//! | 34 | 2 | input layout: 1 = channel-major `[C, T]` (element `c·T + t`); 0 without the contract |
//! | 36 | 4 | input channels `C` (0 without the contract) |
//! | 40 | 4 | input window length `T` (0 without the contract) |
//! | 44 | 4 | reserved, zero |
//! | 48 | 8 | parameter count (elements) |
//! | 56 | 8 | data bytes: 4 × count, twice that with the training section (the momentum) |
//!
//! The table: one 48-byte record per layer, the encoder's first (its layer kinds), then
//! the projector's and the predictor's (dense layers):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 2 | kind: 1 dense head layer, 2 `Linear`, 3 `BatchNorm1d`, 4 `ReLU`, 5 `Conv1d`, 6 `MaxPool1d`, 7 `GlobalMaxPool1d` |
//! | 2 | 2 | flags: bit 0 bias, bit 1 bias frozen, bit 2 BatchNorm, bit 3 BatchNorm affine, bit 4 ReLU, bit 5 padding `'same'` |
//! | 4 | 4 | `d_in`; a BatchNorm's channels; a convolution's `c_in` |
//! | 8 | 4 | `d_out`; a convolution's `c_out` |
//! | 12 | 4 | kernel (convolution, max pool) |
//! | 16 | 4 | stride (convolution) |
//! | 20 | 4 | zero padding on each side (convolution; 0 with `'same'`) |
//! | 24 | 4 | BatchNorm `eps` (`f32`) |
//! | 28 | 4 | BatchNorm `momentum` (`f32`; a `BatchNorm1d` kind's own, 0 in a dense layer, whose momentum is the training config's) |
//! | 32 | 8 | BatchNorm `num_batches_tracked` |
//! | 40 | 8 | offset of the layer's first parameter, in elements from the start of the data |
//!
//! Each kind has exactly the fields and flags its type has, the others zero: a dense
//! layer `d_in`, `d_out`, the bias, BatchNorm (affine, `eps`, counter) and ReLU flags
//! ([`Layer`]); `Linear` `d_in`, `d_out`, the bias flags; `BatchNorm1d` channels,
//! affine, `eps`, `momentum`, counter; `Conv1d` `c_in`, `c_out`, kernel, stride, padding
//! or `'same'`, the bias flags; `MaxPool1d` its kernel; `ReLU` and `GlobalMaxPool1d`
//! nothing. Kinds 5 to 7 need feature `conv`, an encoder feature `encoder`: a build
//! without refuses the image with [`ImageError::FeatureRequired`].
//!
//! The sections, after the table, in this order:
//! - standardisation (flag bit 3, needs bit 2): `mean[C]` then `std[C]`, `f32`; each
//!   finite, every `std > 0`. A sample is standardised as `(x[c, t] − mean[c]) / std[c]`
//!   before it enters the network (see [`InputContract`]).
//! - training (flag bit 4), 88 bytes ([`TrainingState`]):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | optimiser steps taken ([`Sgd::steps`](crate::train::Sgd::steps)) |
//! | 8 | 8 | schedule position: current step |
//! | 16 | 8 | schedule position: total steps |
//! | 24 | 4 | the next step's learning rate ([`Sgd::lr`](crate::train::Sgd::lr)) |
//! | 28 | 4 | schedule position: base learning rate |
//! | 32 | 16 | [`TrainConfig`]: `lr`, `momentum`, `weight_decay`, `batch_norm_momentum` (`f32` each) |
//! | 48 | 4 | flags: bit 0 `fix_predictor_lr`, bit 1 `stop_gradient`, bit 2 augmentation RNG, bit 3 shuffle RNG |
//! | 52 | 4 | reserved, zero |
//! | 56 | 16 | augmentation RNG: a xoshiro128++ state, 4 × `u32` (zero when absent) |
//! | 72 | 16 | shuffle RNG, likewise |
//!
//! The data: the parameters, the flat layout of [`Architecture::param_count`] (the
//! encoder's, each kind's tensors in PyTorch `state_dict` order, then per dense layer
//! `W` (`[d_out × d_in]` row-major), the bias, `γ`, `β`, `running_mean`,
//! `running_var`, as present); with the training section, then the SGD momentum buffer
//! in the same layout. The BatchNorm counters are in the records.
//!
//! The input contract (bit 2) is always recorded for a network with an encoder (the
//! encoder's input shape is part of the network); for a head alone its `C·T` is the
//! projector's input width.
//!
//! # Format, version 1
//! A head alone. The header is version 2's up to offset 28, then
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 24 | 4 | flags: bit 0 projection L2-normalised, bit 1 prediction L2-normalised |
//! | 28 | 2 | projector layers (1 to 4) |
//! | 30 | 2 | predictor layers (1 to 4) |
//! | 32 | 8 | parameter count (elements) |
//! | 40 | 8 | parameter bytes = 4 × count |
//! | 48 | 16 | reserved, zero |
//!
//! and each layer record (32 bytes, `header_len = round_up(64 + 32·layers, 64)`):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | `d_in` |
//! | 4 | 4 | `d_out` |
//! | 8 | 4 | flags: bit 0 bias, bit 1 bias frozen, bit 2 BatchNorm, bit 3 BatchNorm affine, bit 4 ReLU |
//! | 12 | 4 | BatchNorm `eps` (`f32`; 0 without BatchNorm) |
//! | 16 | 8 | BatchNorm `num_batches_tracked` (0 without BatchNorm) |
//! | 24 | 8 | offset of the layer's first parameter, in elements from the start of the data |
//!
//! # One encoding per network
//! Unknown flag bits and kinds, non-zero reserved bytes and unused fields, a header
//! field that disagrees with the table, a wrong length, a non-finite parameter or
//! momentum and a checksum that does not match are all errors: a reader accepts exactly
//! one encoding of each network in each version.
//!
//! # Validation cost and memory
//! [`Image::parse`] reads the header, the table and the sections (O(layers + channels))
//! and then makes one pass over the data, which computes the checksum and checks every
//! value is finite. It allocates nothing; its [`Image`] (`size_of::<Image>()` bytes on the
//! caller's stack: the architecture, with room for an encoder of [`MAX_ENCODER_LAYERS`]
//! kinds, the counters and the training state) borrows the bytes. The parameters can then be viewed in place ([`Image::params`], when they
//! are 4-byte aligned on a little-endian target) or copied ([`Image::copy_params`], any
//! alignment and endianness). Writing ([`write_image`], [`write_image_with`]) fills the
//! caller's buffer of [`image_len`] / [`image_len_with`] bytes in one pass, nothing else.
//!
//! # Examples
//! ```
//! use simsiam::image::{Image, image_len, write_image};
//! use simsiam::model::Architecture;
//! let architecture = Architecture::official(8, 6, 4)?;
//! let params = vec![0.5_f32; architecture.param_count()?];
//! let mut bytes = vec![0_u8; image_len(&architecture)?];
//! write_image(&architecture, &params, &[0; 8], &mut bytes)?;
//! let image = Image::parse(&bytes)?;
//! assert_eq!(image.architecture(), &architecture);
//! let mut copy = vec![0.0_f32; image.param_count()];
//! image.copy_params(&mut copy)?;
//! assert_eq!(copy, params);
//! # Ok::<(), simsiam::SslError>(())
//! ```
//!
//! Version 2, with the input contract and a training section:
//! ```
//! use simsiam::image::{
//!     Image, ImageExtras, InputContract, Standardization, TrainingSection, TrainingState,
//!     image_len_with, write_image_with,
//! };
//! use simsiam::layers::Shape;
//! use simsiam::model::Architecture;
//! let architecture = Architecture::official(8, 6, 4)?;
//! let params = vec![0.5_f32; architecture.param_count()?];
//! let momentum = vec![0.0_f32; params.len()];
//! let (mean, std) = ([0.1_f32, -0.2], [1.5_f32, 0.5]);
//! let extras = ImageExtras {
//!     input: Some(InputContract::channel_major(Shape::sequence(2, 4))
//!         .with_standardization(Standardization::new(&mean, &std)?)),
//!     training: Some(TrainingSection {
//!         state: TrainingState { steps: 12, ..TrainingState::default() },
//!         momentum: &momentum,
//!     }),
//!     ..ImageExtras::default()
//! };
//! let mut bytes = vec![0_u8; image_len_with(&architecture, &extras)?];
//! write_image_with(&architecture, &params, &extras, &mut bytes)?;
//! let image = Image::parse(&bytes)?;
//! assert_eq!(image.version(), 2);
//! assert_eq!(image.input_contract(), extras.input);
//! assert_eq!(image.training().map(|t| t.steps), Some(12));
//! # Ok::<(), simsiam::SslError>(())
//! ```

mod bytes;
mod head;
mod record;

use bytes::{all_zero, crc_and_finite, crc_of_head, f32_at, put, put_f32s, u16_at, u32_at, u64_at};
use record::{RECORD_V1_LEN, RECORD_V2_LEN, Record};

use crate::error::{ImageError, SslError, SslResult, check_finite, check_len};
use crate::layers::{LayerKind, Shape};
use crate::model::{Architecture, Encoder, Layer, MAX_ENCODER_LAYERS, MAX_STACK_LAYERS, Stack};
use crate::train::TrainConfig;

/// The first eight bytes of every image.
pub const IMAGE_MAGIC: [u8; 8] = *b"SIMSIAM\0";
/// The newest format version, which this build writes with [`write_image_with`] (and
/// [`write_image`] for a network with an encoder); it reads versions 1 and 2.
pub const IMAGE_VERSION: u32 = 2;
/// The alignment of the parameters within the image (and what [`AlignedImage`] gives the
/// image itself), enough for any SIMD load.
pub const IMAGE_ALIGN: usize = 64;
/// Most head layer records (projector and predictor) an image holds: two stacks of
/// [`MAX_STACK_LAYERS`]. A version-2 image also holds up to [`MAX_ENCODER_LAYERS`]
/// encoder records.
pub const MAX_IMAGE_LAYERS: usize = 2 * MAX_STACK_LAYERS;

/// The element type code of `f32` little-endian.
const ELEMENT_F32_LE: u32 = 1;
const HEADER_LEN: usize = 64;
const CHECKSUM_AT: usize = 12;
/// Bytes of the training section.
const TRAINING_LEN: usize = 88;

const FLAG_NORMALIZE_PROJECTION: u32 = 1;
const FLAG_NORMALIZE_PREDICTION: u32 = 1 << 1;
const FLAG_INPUT: u32 = 1 << 2;
const FLAG_STANDARDIZATION: u32 = 1 << 3;
const FLAG_TRAINING: u32 = 1 << 4;
const HEADER_FLAGS_V1: u32 = FLAG_NORMALIZE_PROJECTION | FLAG_NORMALIZE_PREDICTION;
const HEADER_FLAGS_V2: u32 = HEADER_FLAGS_V1 | FLAG_INPUT | FLAG_STANDARDIZATION | FLAG_TRAINING;

const TRAIN_FIX_PREDICTOR_LR: u32 = 1;
const TRAIN_STOP_GRADIENT: u32 = 1 << 1;
const TRAIN_AUGMENT_RNG: u32 = 1 << 2;
const TRAIN_SHUFFLE_RNG: u32 = 1 << 3;
const TRAIN_FLAGS: u32 =
    TRAIN_FIX_PREDICTOR_LR | TRAIN_STOP_GRADIENT | TRAIN_AUGMENT_RNG | TRAIN_SHUFFLE_RNG;

/// The layout code of channel-major input.
const LAYOUT_CHANNEL_MAJOR: u16 = 1;

/// Bytes aligned to [`IMAGE_ALIGN`], so that an image embedded with `include_bytes!` can
/// be viewed in place.
///
/// ```
/// use simsiam::image::AlignedImage;
/// static IMAGE: &AlignedImage<[u8]> = &AlignedImage(*b"stand-in for include_bytes!(..)");
/// assert_eq!(IMAGE.0.as_ptr() as usize % 64, 0);
/// ```
#[repr(C, align(64))]
pub struct AlignedImage<B: ?Sized>(pub B);

/// How one input sample's floats are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum InputLayout {
    /// `[C, T]`, element `(c, t)` at `c·T + t`: PyTorch's `x.view(N, C, T)`.
    #[default]
    ChannelMajor,
}

/// Per-channel `f32` values, from the caller or read from an image's bytes.
#[derive(Clone, Copy)]
enum Values<'a> {
    Floats(&'a [f32]),
    /// `f32` little-endian.
    Bytes(&'a [u8]),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Floats(values) => values.len(),
            Self::Bytes(bytes) => bytes.len() / 4,
        }
    }

    fn get(&self, index: usize) -> Option<f32> {
        match self {
            Self::Floats(values) => values.get(index).copied(),
            Self::Bytes(bytes) => bytes
                .as_chunks::<4>()
                .0
                .get(index)
                .map(|word| f32::from_le_bytes(*word)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = f32> + '_ {
        (0..self.len()).map_while(|index| self.get(index))
    }
}

/// The per-channel standardisation a network was trained with: each input value becomes
/// `(x[c, t] − mean[c]) / std[c]` before it enters the network.
///
/// Built from the caller's slices ([`new`](Self::new)) or read from an image
/// ([`Image::input_contract`]); compared by value.
#[derive(Clone, Copy)]
pub struct Standardization<'a> {
    mean: Values<'a>,
    std: Values<'a>,
}

impl core::fmt::Debug for Standardization<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Standardization")
            .field("channels", &self.channels())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Standardization<'_> {
    /// The same values, bit for bit.
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &Values<'_>, b: &Values<'_>| {
            a.len() == b.len() && a.iter().map(f32::to_bits).eq(b.iter().map(f32::to_bits))
        };
        same(&self.mean, &other.mean) && same(&self.std, &other.std)
    }
}

impl<'a> Standardization<'a> {
    /// The standardisation by `mean[c]` and `std[c]`, one of each per input channel.
    ///
    /// # Errors
    /// `DimensionMismatch` unless `std` is as long as `mean`; `NonFinite { location:
    /// "standardization" }` for a non-finite value; `InvalidParameter { name: "std" }`
    /// for a `std` that is not `> 0`.
    pub fn new(mean: &'a [f32], std: &'a [f32]) -> SslResult<Self> {
        check_len(mean.len(), std.len())?;
        check_finite(mean, "standardization")?;
        check_finite(std, "standardization")?;
        if std.iter().any(|s| *s <= 0.0) {
            return Err(SslError::InvalidParameter {
                name: "std",
                reason: "every standard deviation must be > 0",
            });
        }
        Ok(Self {
            mean: Values::Floats(mean),
            std: Values::Floats(std),
        })
    }

    /// The channels it covers.
    #[must_use]
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// `mean[c]`, or `None` past the last channel.
    #[must_use]
    pub fn mean(&self, channel: usize) -> Option<f32> {
        self.mean.get(channel)
    }

    /// `std[c]`, or `None` past the last channel.
    #[must_use]
    pub fn std(&self, channel: usize) -> Option<f32> {
        self.std.get(channel)
    }

    /// Copies the means and standard deviations into `mean` and `std`.
    ///
    /// # Errors
    /// `DimensionMismatch` unless both are [`channels`](Self::channels) long.
    pub fn copy_into(&self, mean: &mut [f32], std: &mut [f32]) -> SslResult<()> {
        check_len(self.channels(), mean.len())?;
        check_len(self.channels(), std.len())?;
        for (out, value) in mean.iter_mut().zip(self.mean.iter()) {
            *out = value;
        }
        for (out, value) in std.iter_mut().zip(self.std.iter()) {
            *out = value;
        }
        Ok(())
    }
}

/// What a network expects as one input sample: its shape `[C, T]`, the order of its
/// floats and, where known, the standardisation it was trained with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputContract<'a> {
    /// Channels `C` and window length `T`.
    pub shape: Shape,
    /// The order of the `C·T` floats.
    pub layout: InputLayout,
    /// The per-channel standardisation, if known.
    pub standardization: Option<Standardization<'a>>,
}

impl<'a> InputContract<'a> {
    /// A channel-major input of `shape`, standardisation unknown.
    #[must_use]
    pub const fn channel_major(shape: Shape) -> Self {
        Self {
            shape,
            layout: InputLayout::ChannelMajor,
            standardization: None,
        }
    }

    /// The same contract with `standardization`.
    #[must_use]
    pub const fn with_standardization(self, standardization: Standardization<'a>) -> Self {
        Self {
            standardization: Some(standardization),
            ..self
        }
    }
}

/// Where a learning-rate schedule stands: it started at `base_lr` and is at `step` of
/// `total` (e.g. [`cosine_lr`](crate::train::cosine_lr)`(base_lr, step, total)` is the
/// next lr of the official cosine schedule). Steps may count optimiser steps or epochs,
/// as the run does.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SchedulePosition {
    /// The schedule's starting learning rate.
    pub base_lr: f32,
    /// The current step.
    pub step: u64,
    /// Steps in the whole run.
    pub total: u64,
}

/// What resuming a training run needs besides the parameters, the BatchNorm counters
/// (in the layer records) and the momentum buffer ([`TrainingSection::momentum`]).
///
/// Build it from an optimiser with [`from_sgd`](Self::from_sgd) and add the schedule
/// and the random generators' states; resume with [`resume_sgd`](Self::resume_sgd) and
/// [`Xoshiro128PlusPlus::from_state`](crate::augment::Xoshiro128PlusPlus::from_state).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingState {
    /// The optimiser's settings ([`TrainConfig`]).
    pub config: TrainConfig,
    /// The learning rate of the next step ([`Sgd::lr`](crate::train::Sgd::lr)).
    pub lr: f32,
    /// Optimiser steps taken ([`Sgd::steps`](crate::train::Sgd::steps)): the momentum
    /// buffer has started when it is not 0.
    pub steps: u64,
    /// The learning-rate schedule's position.
    pub schedule: SchedulePosition,
    /// The augmentations' xoshiro128++ state
    /// ([`Xoshiro128PlusPlus::state`](crate::augment::Xoshiro128PlusPlus::state)), if
    /// recorded.
    pub augment_rng: Option<[u32; 4]>,
    /// The shuffle's xoshiro128++ state, if recorded (a run that draws both from one
    /// generator records it once, as `augment_rng`).
    pub shuffle_rng: Option<[u32; 4]>,
}

impl Default for TrainingState {
    /// A run that has not started: the default config at its lr, no steps, the schedule
    /// at step 0 of 0 from that lr, no generator states.
    fn default() -> Self {
        let config = TrainConfig::default();
        Self {
            config,
            lr: config.lr,
            steps: 0,
            schedule: SchedulePosition {
                base_lr: config.lr,
                step: 0,
                total: 0,
            },
            augment_rng: None,
            shuffle_rng: None,
        }
    }
}

impl TrainingState {
    /// The optimiser's part of the state: its config, next lr and steps (the schedule
    /// at step `steps` of 0 from the config's lr, no generator states: set them).
    #[must_use]
    pub fn from_sgd<M: AsRef<[f32]> + AsMut<[f32]>>(sgd: &crate::train::Sgd<M>) -> Self {
        let config = *sgd.config();
        Self {
            config,
            lr: sgd.lr(),
            steps: sgd.steps(),
            schedule: SchedulePosition {
                base_lr: config.lr,
                step: sgd.steps(),
                total: 0,
            },
            augment_rng: None,
            shuffle_rng: None,
        }
    }

    /// The optimiser this state resumes, over `momentum` holding the saved buffer
    /// ([`Image::copy_momentum`]): [`Sgd::resume`](crate::train::Sgd::resume) with the
    /// config, steps and lr.
    ///
    /// # Errors
    /// As [`Sgd::resume`](crate::train::Sgd::resume).
    pub fn resume_sgd<M: AsRef<[f32]> + AsMut<[f32]>>(
        &self,
        architecture: &Architecture,
        momentum: M,
    ) -> SslResult<crate::train::Sgd<M>> {
        crate::train::Sgd::resume(architecture, self.config, momentum, self.steps, self.lr)
    }

    /// Checks what an image may hold.
    ///
    /// # Errors
    /// [`TrainConfig::validate`]'s errors; `InvalidParameter` for an `lr` or a schedule
    /// `base_lr` that is not finite and `≥ 0` (`"lr"`), or an all-zero generator state
    /// (`"state"`).
    pub fn validate(&self) -> SslResult<()> {
        self.config.validate()?;
        crate::train::check_lr(self.lr)?;
        crate::train::check_lr(self.schedule.base_lr)?;
        if [self.augment_rng, self.shuffle_rng]
            .iter()
            .flatten()
            .any(|state| state.iter().all(|word| *word == 0))
        {
            return Err(SslError::InvalidParameter {
                name: "state",
                reason: "the all-zero state is not a xoshiro128++ state",
            });
        }
        Ok(())
    }
}

/// The training section to write: the state and the SGD momentum buffer (the flat
/// parameter layout, [`Architecture::param_count`] floats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingSection<'a> {
    /// Steps, lr, schedule, generators.
    pub state: TrainingState,
    /// The momentum buffer ([`Sgd::momentum`](crate::train::Sgd::momentum)).
    pub momentum: &'a [f32],
}

/// What an image holds besides the architecture and the parameters.
///
/// `Default` is nothing: counters 0, no input contract, no training section.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ImageExtras<'a> {
    /// Head layer `i`'s BatchNorm `num_batches_tracked` (projector first; ignored for
    /// layers without one; missing entries count as 0).
    pub batches_tracked: &'a [u64],
    /// Encoder layer `i`'s BatchNorm `num_batches_tracked`, likewise.
    pub encoder_batches_tracked: &'a [u64],
    /// The input the network expects (recorded from the encoder's input shape when
    /// `None` for a network with an encoder).
    pub input: Option<InputContract<'a>>,
    /// What resuming training needs.
    pub training: Option<TrainingSection<'a>>,
}

/// `round_up(len, 64)`, `None` on overflow.
fn align_up(len: usize) -> Option<usize> {
    len.checked_next_multiple_of(IMAGE_ALIGN)
}

/// Version 1's bytes before the data: `round_up(64 + 32·layers, 64)`.
fn header_len_v1(layers: usize) -> usize {
    let table_end = HEADER_LEN + RECORD_V1_LEN * layers.min(MAX_IMAGE_LAYERS);
    table_end.div_ceil(IMAGE_ALIGN) * IMAGE_ALIGN
}

/// Where version 2's parts start: the standardisation, the training section, the data.
#[derive(Debug, Clone, Copy)]
struct SectionsV2 {
    standardization: usize,
    training: usize,
    header_len: usize,
}

/// Version 2's sections for `records` layer records, `channels` of standardisation
/// (0 without), and a training section or not; `None` on overflow.
fn sections_v2(records: usize, channels: usize, training: bool) -> Option<SectionsV2> {
    let standardization = RECORD_V2_LEN
        .checked_mul(records)?
        .checked_add(HEADER_LEN)?;
    let training_at = channels.checked_mul(8)?.checked_add(standardization)?;
    let end = training_at.checked_add(if training { TRAINING_LEN } else { 0 })?;
    Some(SectionsV2 {
        standardization,
        training: training_at,
        header_len: align_up(end)?,
    })
}

const fn inconsistent(field: &'static str) -> SslError {
    SslError::Image(ImageError::Inconsistent { field })
}

const LENGTH_OVERFLOW: SslError = SslError::InvalidParameter {
    name: "config",
    reason: "image length overflows usize",
};

/// The total length of an image of `header_len` bytes before `data_floats` floats.
fn total_len(header_len: usize, data_floats: usize) -> SslResult<usize> {
    data_floats
        .checked_mul(4)
        .and_then(|data| data.checked_add(header_len))
        .ok_or(LENGTH_OVERFLOW)
}

/// A checked plan of a version-2 image: its sections and the input shape it records.
struct PlanV2 {
    sections: SectionsV2,
    input: Option<Shape>,
    len: usize,
}

fn plan_v2(architecture: &Architecture, extras: &ImageExtras<'_>) -> SslResult<PlanV2> {
    architecture.validate()?;
    let encoder = architecture.encoder.as_ref();
    let input = match (extras.input, encoder) {
        (Some(contract), _) => {
            let size = contract.shape.size()?;
            let fits = match encoder {
                Some(encoder) => contract.shape == encoder.input(),
                None => size == architecture.d_encoder(),
            };
            if !fits {
                return Err(SslError::InvalidParameter {
                    name: "input",
                    reason: "the input contract's shape is not the network's input",
                });
            }
            if let Some(standardization) = contract.standardization {
                check_len(contract.shape.channels, standardization.channels())?;
            }
            Some(contract.shape)
        }
        (None, Some(encoder)) => Some(encoder.input()),
        (None, None) => None,
    };
    if let Some(shape) = input
        && (u32::try_from(shape.channels).is_err() || u32::try_from(shape.len).is_err())
    {
        return Err(SslError::InvalidParameter {
            name: "input",
            reason: "a dimension above u32::MAX cannot be stored",
        });
    }
    let param_count = architecture.param_count()?;
    if let Some(training) = extras.training {
        training.state.validate()?;
        check_len(param_count, training.momentum.len())?;
        check_finite(training.momentum, "momentum")?;
    }
    let channels = extras
        .input
        .and_then(|contract| contract.standardization)
        .map_or(0, |standardization| standardization.channels());
    let records = encoder
        .map_or(0, |encoder| encoder.layers().len())
        .saturating_add(architecture.layers().count());
    let sections =
        sections_v2(records, channels, extras.training.is_some()).ok_or(LENGTH_OVERFLOW)?;
    let data_floats = if extras.training.is_some() {
        param_count.checked_mul(2).ok_or(LENGTH_OVERFLOW)?
    } else {
        param_count
    };
    Ok(PlanV2 {
        sections,
        input,
        len: total_len(sections.header_len, data_floats)?,
    })
}

/// How many bytes [`write_image`] writes for `architecture`: version 1 for a head alone
/// (the header and table, padded to [`IMAGE_ALIGN`], plus 4 bytes per parameter),
/// version 2 with the counters only for a network with an encoder.
///
/// # Errors
/// The architecture's errors ([`Architecture::validate`]); `InvalidParameter` when the
/// size overflows `usize`.
pub fn image_len(architecture: &Architecture) -> SslResult<usize> {
    architecture.validate()?;
    if architecture.encoder.is_some() {
        return image_len_with(architecture, &ImageExtras::default());
    }
    let layers = architecture.layers().count();
    total_len(header_len_v1(layers), architecture.param_count()?)
}

/// How many bytes [`write_image_with`] writes for `architecture` and `extras`.
///
/// # Errors
/// As [`write_image_with`], except those about `params` and `out`.
pub fn image_len_with(architecture: &Architecture, extras: &ImageExtras<'_>) -> SslResult<usize> {
    Ok(plan_v2(architecture, extras)?.len)
}

/// Writes the image of `architecture` with `params` (its flat layout) into the start of
/// `out`, and returns its length ([`image_len`]): version 1 for a head alone, version 2
/// for a network with an encoder (its counters 0: use [`write_image_with`] to record
/// them). `batches_tracked[i]` is head layer `i`'s BatchNorm `num_batches_tracked`
/// (ignored for layers without one; missing entries count as 0).
///
/// # Errors
/// The architecture's errors; `DimensionMismatch` when `params.len()` is not its
/// parameter count; `CapacityTooSmall { needed, capacity }` (in bytes) when `out` is too
/// short; `NonFinite { location: "params" }` for a NaN or infinite parameter (an image
/// never holds one); `InvalidParameter` for a width above `u32::MAX`.
pub fn write_image(
    architecture: &Architecture,
    params: &[f32],
    batches_tracked: &[u64],
    out: &mut [u8],
) -> SslResult<usize> {
    let extras = ImageExtras {
        batches_tracked,
        ..ImageExtras::default()
    };
    if architecture.encoder.is_some() {
        return write_image_with(architecture, params, &extras, out);
    }
    let len = image_len(architecture)?;
    let out = prepare(architecture, params, len, out)?;
    let header_len = header_len_v1(architecture.layers().count());
    let mut flags = 0;
    if architecture.normalize_projection {
        flags |= FLAG_NORMALIZE_PROJECTION;
    }
    if architecture.normalize_prediction {
        flags |= FLAG_NORMALIZE_PREDICTION;
    }
    put(out, 0, &IMAGE_MAGIC);
    put(out, 8, &1_u32.to_le_bytes());
    // `header_len` is at most 64 + 8·32 rounded up.
    put(out, 16, &(header_len as u32).to_le_bytes());
    put(out, 20, &ELEMENT_F32_LE.to_le_bytes());
    put(out, 24, &flags.to_le_bytes());
    // At most four layers a stack (`Stack`), so both counts fit in `u16`.
    let stack_len = |stack: &Stack| stack.layers().len() as u16;
    put(out, 28, &stack_len(&architecture.projector).to_le_bytes());
    put(out, 30, &stack_len(&architecture.predictor).to_le_bytes());
    put(out, 32, &(params.len() as u64).to_le_bytes());
    put(
        out,
        40,
        &(params.len() as u64).saturating_mul(4).to_le_bytes(),
    );
    let mut tracked = extras.batches_tracked.iter().copied();
    let mut offset = 0_u64;
    // A running record position (at most 8 records, so none saturates): no overflow
    // panic path in builds with overflow checks.
    let mut at = HEADER_LEN;
    for layer in architecture.layers() {
        let mut record = Record::dense(layer, tracked.next().unwrap_or(0))?;
        record.offset = offset;
        record.write_v1(out, at);
        at = at.saturating_add(RECORD_V1_LEN);
        // `validate` proved every count fits in `usize`, so in `u64` too.
        offset = offset.saturating_add(layer.param_count().unwrap_or(0) as u64);
    }
    seal(out, header_len, params, &[]);
    Ok(len)
}

/// Checks `params` against `architecture` and cuts `out` to `len` bytes, zeroed.
fn prepare<'o>(
    architecture: &Architecture,
    params: &[f32],
    len: usize,
    out: &'o mut [u8],
) -> SslResult<&'o mut [u8]> {
    check_len(architecture.param_count()?, params.len())?;
    check_finite(params, "params")?;
    let capacity = out.len();
    let out = out.get_mut(..len).ok_or(SslError::CapacityTooSmall {
        needed: len,
        capacity,
    })?;
    out.fill(0);
    Ok(out)
}

/// Writes the data (`params`, then `momentum`) after `header_len` and the checksum.
fn seal(out: &mut [u8], header_len: usize, params: &[f32], momentum: &[f32]) {
    put_f32s(out, header_len, params.iter().chain(momentum).copied());
    let (head, data) = out.split_at_mut_checked(header_len).unwrap_or_default();
    let (crc, _) = crc_and_finite(crc_of_head(head, CHECKSUM_AT), data);
    put(head, CHECKSUM_AT, &(!crc).to_le_bytes());
}

/// Writes a version-2 image of `architecture` with `params` (its flat layout) and
/// `extras` (BatchNorm counters, input contract, training section) into the start of
/// `out`, and returns its length ([`image_len_with`]).
///
/// # Errors
/// As [`write_image`]; also `InvalidParameter { name: "input" }` for an input contract
/// whose shape is not the encoder's input (or, for a head alone, whose `C·T` is not
/// [`Architecture::d_encoder`]), `DimensionMismatch` for a standardisation of another
/// channel count or a momentum buffer that is not `param_count` long, `NonFinite {
/// location: "momentum" }`, and [`TrainingState::validate`]'s errors.
///
/// # Examples
/// See [the module](self).
pub fn write_image_with(
    architecture: &Architecture,
    params: &[f32],
    extras: &ImageExtras<'_>,
    out: &mut [u8],
) -> SslResult<usize> {
    let plan = plan_v2(architecture, extras)?;
    let out = prepare(architecture, params, plan.len, out)?;
    let SectionsV2 {
        standardization,
        training,
        header_len,
    } = plan.sections;
    let mut flags = 0;
    if architecture.normalize_projection {
        flags |= FLAG_NORMALIZE_PROJECTION;
    }
    if architecture.normalize_prediction {
        flags |= FLAG_NORMALIZE_PREDICTION;
    }
    let encoder_layers = architecture
        .encoder
        .as_ref()
        .map_or(&[][..], Encoder::layers);
    put(out, 0, &IMAGE_MAGIC);
    put(out, 8, &IMAGE_VERSION.to_le_bytes());
    let too_long = SslError::InvalidParameter {
        name: "input",
        reason: "a header above u32::MAX bytes cannot be stored",
    };
    let header_len_u32 = u32::try_from(header_len).map_err(|_| too_long)?;
    put(out, 16, &header_len_u32.to_le_bytes());
    put(out, 20, &ELEMENT_F32_LE.to_le_bytes());
    // At most 16 encoder layers and four a stack, so the counts fit in `u16`.
    put(out, 28, &(encoder_layers.len() as u16).to_le_bytes());
    put(
        out,
        30,
        &(architecture.projector.layers().len() as u16).to_le_bytes(),
    );
    put(
        out,
        32,
        &(architecture.predictor.layers().len() as u16).to_le_bytes(),
    );
    if let Some(shape) = plan.input {
        flags |= FLAG_INPUT;
        put(out, 34, &LAYOUT_CHANNEL_MAJOR.to_le_bytes());
        // `plan_v2` checked both fit in `u32`.
        put(out, 36, &(shape.channels as u32).to_le_bytes());
        put(out, 40, &(shape.len as u32).to_le_bytes());
    }
    let param_count = params.len() as u64;
    put(out, 48, &param_count.to_le_bytes());
    let data_floats = if extras.training.is_some() {
        param_count.saturating_mul(2)
    } else {
        param_count
    };
    put(out, 56, &data_floats.saturating_mul(4).to_le_bytes());

    let mut offset = 0_u64;
    let mut at = HEADER_LEN;
    let mut tracked = extras.encoder_batches_tracked.iter().copied();
    for kind in encoder_layers {
        let mut record = Record::kind(kind, tracked.next().unwrap_or(0))?;
        record.offset = offset;
        record.write_v2(out, at);
        at = at.saturating_add(RECORD_V2_LEN);
        offset = offset.saturating_add(kind.param_count().unwrap_or(0) as u64);
    }
    let mut tracked = extras.batches_tracked.iter().copied();
    for layer in architecture.layers() {
        let mut record = Record::dense(layer, tracked.next().unwrap_or(0))?;
        record.offset = offset;
        record.write_v2(out, at);
        at = at.saturating_add(RECORD_V2_LEN);
        offset = offset.saturating_add(layer.param_count().unwrap_or(0) as u64);
    }
    if let Some(values) = extras.input.and_then(|contract| contract.standardization) {
        flags |= FLAG_STANDARDIZATION;
        put_f32s(
            out,
            standardization,
            values.mean.iter().chain(values.std.iter()),
        );
    }
    let mut momentum: &[f32] = &[];
    if let Some(section) = extras.training {
        flags |= FLAG_TRAINING;
        write_training(out, training, &section.state);
        momentum = section.momentum;
    }
    put(out, 24, &flags.to_le_bytes());
    seal(out, header_len, params, momentum);
    Ok(plan.len)
}

fn write_training(out: &mut [u8], at: usize, state: &TrainingState) {
    let field = |offset: usize| at.saturating_add(offset);
    let config = &state.config;
    put(out, at, &state.steps.to_le_bytes());
    put(out, field(8), &state.schedule.step.to_le_bytes());
    put(out, field(16), &state.schedule.total.to_le_bytes());
    put_f32s(
        out,
        field(24),
        [
            state.lr,
            state.schedule.base_lr,
            config.lr,
            config.momentum,
            config.weight_decay,
            config.batch_norm_momentum,
        ]
        .into_iter(),
    );
    let mut flags = 0;
    if config.fix_predictor_lr {
        flags |= TRAIN_FIX_PREDICTOR_LR;
    }
    if config.stop_gradient {
        flags |= TRAIN_STOP_GRADIENT;
    }
    for (bit, rng, offset) in [
        (TRAIN_AUGMENT_RNG, state.augment_rng, 56),
        (TRAIN_SHUFFLE_RNG, state.shuffle_rng, 72),
    ] {
        if let Some(words) = rng {
            flags |= bit;
            for (word, slot) in words.iter().zip((0..4).map(|i| field(offset + 4 * i))) {
                put(out, slot, &word.to_le_bytes());
            }
        }
    }
    put(out, field(48), &flags.to_le_bytes());
}

/// Reads and checks the training section at `section`.
fn read_training(section: &[u8]) -> SslResult<TrainingState> {
    let flags = u32_at(section, 48);
    if flags & !TRAIN_FLAGS != 0 {
        return Err(inconsistent("training flags"));
    }
    if u32_at(section, 52) != 0 {
        return Err(inconsistent("training reserved"));
    }
    let rng = |bit: u32, offset: usize| -> SslResult<Option<[u32; 4]>> {
        let words = [0, 4, 8, 12].map(|i| u32_at(section, offset + i));
        match (flags & bit != 0, words == [0; 4]) {
            (true, false) => Ok(Some(words)),
            (false, true) => Ok(None),
            _ => Err(inconsistent("training rng")),
        }
    };
    let state = TrainingState {
        config: TrainConfig {
            lr: f32_at(section, 32),
            momentum: f32_at(section, 36),
            weight_decay: f32_at(section, 40),
            fix_predictor_lr: flags & TRAIN_FIX_PREDICTOR_LR != 0,
            stop_gradient: flags & TRAIN_STOP_GRADIENT != 0,
            batch_norm_momentum: f32_at(section, 44),
        },
        lr: f32_at(section, 24),
        steps: u64_at(section, 0),
        schedule: SchedulePosition {
            base_lr: f32_at(section, 28),
            step: u64_at(section, 8),
            total: u64_at(section, 16),
        },
        augment_rng: rng(TRAIN_AUGMENT_RNG, 56)?,
        shuffle_rng: rng(TRAIN_SHUFFLE_RNG, 72)?,
    };
    if state.validate().is_err() {
        return Err(inconsistent("training state"));
    }
    Ok(state)
}

/// A validated parameter image: its architecture, BatchNorm counters, input contract,
/// training state and data, borrowed from the image.
#[derive(Clone, Copy, PartialEq)]
pub struct Image<'a> {
    version: u32,
    architecture: Architecture,
    batches_tracked: [u64; MAX_IMAGE_LAYERS],
    encoder_batches_tracked: [u64; MAX_ENCODER_LAYERS],
    input: Option<Shape>,
    /// `mean[C]` then `std[C]`, `f32` little-endian; empty without.
    standardization: &'a [u8],
    training: Option<TrainingState>,
    data: &'a [u8],
    /// The momentum buffer's bytes; empty without a training section.
    momentum: &'a [u8],
}

impl core::fmt::Debug for Image<'_> {
    /// The version, architecture and sizes, not the parameters.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Image")
            .field("version", &self.version)
            .field("architecture", &self.architecture)
            .field("param_count", &self.param_count())
            .field("input", &self.input)
            .field("training", &self.training)
            .finish_non_exhaustive()
    }
}

/// `BadLayer { index, reason }` with the reason an architecture or layer error gives.
fn bad_layer(index: usize, error: SslError) -> SslError {
    let reason = match error {
        SslError::InvalidParameter { reason, .. } => reason,
        SslError::DimensionMismatch { .. } => "its input's shape does not fit the layer",
        _ => "invalid layer",
    };
    ImageError::BadLayer { index, reason }.into()
}

/// Each layer starts where the ones before it end (every size fits: validated).
fn check_offsets(offsets: &[u64], counts: impl Iterator<Item = usize>) -> SslResult<()> {
    let mut expected = 0_u64;
    for (offset, count) in offsets.iter().zip(counts) {
        if *offset != expected {
            return Err(inconsistent("layer offset"));
        }
        expected = expected.saturating_add(count as u64);
    }
    Ok(())
}

impl<'a> Image<'a> {
    /// Validates `bytes` as an image (version 1 or 2): header, layer table, sections,
    /// lengths, checksum, and that every parameter (and momentum) is finite.
    /// O(layers + channels) plus one pass over the data; no allocation.
    ///
    /// # Errors
    /// [`SslError::Image`] with [`ImageError::Truncated`], `BadMagic`,
    /// `UnsupportedVersion`, `UnsupportedElementType`, `FeatureRequired`, `BadLayer`,
    /// `Inconsistent` or `ChecksumMismatch` (checked in about that order); `NonFinite {
    /// location: "params" }` (or `"momentum"`) for a NaN or infinite value.
    pub fn parse(bytes: &'a [u8]) -> SslResult<Self> {
        Self::parse_with(bytes, true)
    }

    /// [`parse`](Self::parse) without its pass over the data: the header, the layer table,
    /// the sections and the lengths are checked as `parse` checks them, the checksum and
    /// the data's finiteness are not. For bytes `parse` accepted before and that have not
    /// changed since (the C API validates an image once, at `simsiam_model_init_image`,
    /// then rebuilds the head at every call). Changed bytes are never unsafe: a malformed
    /// header or table is still an error, changed parameters give unspecified values or a
    /// `NonFinite` output error.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), except `ChecksumMismatch` and `NonFinite`.
    pub fn parse_unverified(bytes: &'a [u8]) -> SslResult<Self> {
        Self::parse_with(bytes, false)
    }

    fn parse_with(bytes: &'a [u8], verify: bool) -> SslResult<Self> {
        let header = bytes.get(..HEADER_LEN).ok_or(ImageError::Truncated {
            needed: HEADER_LEN,
            got: bytes.len(),
        })?;
        if header.first_chunk::<8>() != Some(&IMAGE_MAGIC) {
            return Err(ImageError::BadMagic.into());
        }
        let version = u32_at(header, 8);
        if version != 1 && version != IMAGE_VERSION {
            return Err(ImageError::UnsupportedVersion { version }.into());
        }
        let element = u32_at(header, 20);
        if element != ELEMENT_F32_LE {
            return Err(ImageError::UnsupportedElementType { code: element }.into());
        }
        let (image, head) = if version == 1 {
            Self::parse_v1(bytes)?
        } else {
            Self::parse_v2(bytes)?
        };
        if verify {
            let crc = crc_of_head(head, CHECKSUM_AT);
            let (crc, params_finite) = crc_and_finite(crc, image.data);
            let (crc, momentum_finite) = crc_and_finite(crc, image.momentum);
            let computed = !crc;
            let stored = u32_at(header, CHECKSUM_AT);
            if stored != computed {
                return Err(ImageError::ChecksumMismatch { stored, computed }.into());
            }
            if !params_finite {
                return Err(SslError::NonFinite { location: "params" });
            }
            if !momentum_finite {
                return Err(SslError::NonFinite {
                    location: "momentum",
                });
            }
        }
        Ok(image)
    }

    /// The data after `header_len` for `param_count` parameters (and as many momentum
    /// values with `training`), checked against the header's `count` and `data_bytes`
    /// fields and the length of `bytes`.
    fn data(
        bytes: &'a [u8],
        header_len: usize,
        param_count: usize,
        [count, data_bytes]: [u64; 2],
        training: bool,
    ) -> SslResult<(&'a [u8], &'a [u8])> {
        if count != param_count as u64 {
            return Err(inconsistent("parameter count"));
        }
        let params_len = param_count
            .checked_mul(4)
            .ok_or(inconsistent("parameter bytes"))?;
        let data_len = if training {
            params_len.checked_mul(2)
        } else {
            Some(params_len)
        }
        .ok_or(inconsistent("parameter bytes"))?;
        if data_bytes != data_len as u64 {
            return Err(inconsistent("parameter bytes"));
        }
        let total = header_len
            .checked_add(data_len)
            .ok_or(inconsistent("parameter bytes"))?;
        let data = bytes.get(header_len..total).ok_or(ImageError::Truncated {
            needed: total,
            got: bytes.len(),
        })?;
        if bytes.len() != total {
            return Err(inconsistent("length (trailing bytes)"));
        }
        Ok(data.split_at_checked(params_len).unwrap_or((data, &[])))
    }

    /// Version 1: the image and its bytes before the data.
    fn parse_v1(bytes: &'a [u8]) -> SslResult<(Self, &'a [u8])> {
        let header = bytes.get(..HEADER_LEN).unwrap_or_default();
        let flags = u32_at(header, 24);
        if flags & !HEADER_FLAGS_V1 != 0 {
            return Err(inconsistent("flags"));
        }
        if !all_zero(header.get(48..).unwrap_or_default()) {
            return Err(inconsistent("reserved"));
        }
        let counts = [
            usize::from(u16_at(header, 28)),
            usize::from(u16_at(header, 30)),
        ];
        if counts.iter().any(|n| !(1..=MAX_STACK_LAYERS).contains(n)) {
            return Err(inconsistent("layer count"));
        }
        let layer_count = counts[0].saturating_add(counts[1]);
        let header_len = header_len_v1(layer_count);
        if u32_at(header, 16) as usize != header_len {
            return Err(inconsistent("header_len"));
        }
        let head = bytes.get(..header_len).ok_or(ImageError::Truncated {
            needed: header_len,
            got: bytes.len(),
        })?;
        let table = head.get(HEADER_LEN..).unwrap_or_default();
        if !all_zero(
            table
                .get(RECORD_V1_LEN.saturating_mul(layer_count)..)
                .unwrap_or_default(),
        ) {
            return Err(inconsistent("padding"));
        }
        let mut layers = [Layer::linear(0, 0); MAX_IMAGE_LAYERS];
        let mut batches_tracked = [0_u64; MAX_IMAGE_LAYERS];
        let mut offsets = [0_u64; MAX_IMAGE_LAYERS];
        let records = table
            .as_chunks::<RECORD_V1_LEN>()
            .0
            .iter()
            .take(layer_count);
        let slots = layers
            .iter_mut()
            .zip(batches_tracked.iter_mut())
            .zip(offsets.iter_mut());
        // A counter rather than `enumerate`, whose `+= 1` keeps an overflow panic path
        // in builds with overflow checks.
        let mut index = 0_usize;
        for (record, ((layer, tracked), offset)) in records.zip(slots) {
            let record = Record::read_v1(record);
            *layer = record.dense_layer(index)?;
            (*tracked, *offset) = (record.tracked, record.offset);
            index = index.saturating_add(1);
        }
        let architecture = head_architecture(&layers, counts, flags, 0)?;
        check_offsets(
            &offsets,
            architecture
                .layers()
                .map(|layer| layer.param_count().unwrap_or(0)),
        )?;
        let param_count = architecture.param_count()?;
        let (data, momentum) = Self::data(
            bytes,
            header_len,
            param_count,
            [u64_at(header, 32), u64_at(header, 40)],
            false,
        )?;
        let image = Self {
            version: 1,
            architecture,
            batches_tracked,
            encoder_batches_tracked: [0; MAX_ENCODER_LAYERS],
            input: None,
            standardization: &[],
            training: None,
            data,
            momentum,
        };
        Ok((image, head))
    }

    /// Version 2: the image and its bytes before the data.
    fn parse_v2(bytes: &'a [u8]) -> SslResult<(Self, &'a [u8])> {
        let header = bytes.get(..HEADER_LEN).unwrap_or_default();
        let flags = u32_at(header, 24);
        if flags & !HEADER_FLAGS_V2 != 0 {
            return Err(inconsistent("flags"));
        }
        if u32_at(header, 44) != 0 {
            return Err(inconsistent("reserved"));
        }
        let has = |bit: u32| flags & bit != 0;
        let encoder_count = usize::from(u16_at(header, 28));
        let counts = [
            usize::from(u16_at(header, 30)),
            usize::from(u16_at(header, 32)),
        ];
        if encoder_count > MAX_ENCODER_LAYERS
            || counts.iter().any(|n| !(1..=MAX_STACK_LAYERS).contains(n))
        {
            return Err(inconsistent("layer count"));
        }
        if encoder_count > 0 && !cfg!(feature = "encoder") {
            return Err(ImageError::FeatureRequired {
                index: 0,
                feature: "encoder",
            }
            .into());
        }
        let layout = u16_at(header, 34);
        let shape = Shape::sequence(u32_at(header, 36) as usize, u32_at(header, 40) as usize);
        let input = if has(FLAG_INPUT) {
            if layout != LAYOUT_CHANNEL_MAJOR {
                return Err(inconsistent("input layout"));
            }
            if shape.size().is_err() {
                return Err(inconsistent("input shape"));
            }
            Some(shape)
        } else {
            if layout != 0 || shape.channels != 0 || shape.len != 0 {
                return Err(inconsistent("input shape"));
            }
            if encoder_count > 0 || has(FLAG_STANDARDIZATION) {
                return Err(inconsistent("flags"));
            }
            None
        };
        let channels = if has(FLAG_STANDARDIZATION) {
            shape.channels
        } else {
            0
        };
        let head_count = counts[0].saturating_add(counts[1]);
        let record_count = encoder_count.saturating_add(head_count);
        let sections = sections_v2(record_count, channels, has(FLAG_TRAINING))
            .ok_or(inconsistent("header_len"))?;
        if u32_at(header, 16) as usize != sections.header_len {
            return Err(inconsistent("header_len"));
        }
        let head = bytes
            .get(..sections.header_len)
            .ok_or(ImageError::Truncated {
                needed: sections.header_len,
                got: bytes.len(),
            })?;
        let padding_at = if has(FLAG_TRAINING) {
            sections.training.saturating_add(TRAINING_LEN)
        } else {
            sections.training
        };
        if !all_zero(head.get(padding_at..).unwrap_or_default()) {
            return Err(inconsistent("padding"));
        }
        let table = head.get(HEADER_LEN..).unwrap_or_default();
        let mut records = table.as_chunks::<RECORD_V2_LEN>().0.iter();
        let mut offsets = [0_u64; MAX_ENCODER_LAYERS + MAX_IMAGE_LAYERS];
        let mut offset_slots = offsets.iter_mut();
        let mut index = 0_usize;

        let mut encoder = None;
        let mut encoder_batches_tracked = [0_u64; MAX_ENCODER_LAYERS];
        if encoder_count > 0 && cfg!(feature = "encoder") {
            let mut kinds = [LayerKind::Relu; MAX_ENCODER_LAYERS];
            let mut walked = shape;
            let slots = kinds
                .iter_mut()
                .zip(encoder_batches_tracked.iter_mut())
                .take(encoder_count);
            for ((kind, tracked), record) in slots.zip(records.by_ref()) {
                let record = Record::read_v2(record);
                *kind = record.layer_kind(index)?;
                kind.param_count().map_err(|e| bad_layer(index, e))?;
                walked = kind.output_shape(walked).map_err(|e| bad_layer(index, e))?;
                *tracked = record.tracked;
                if let Some(slot) = offset_slots.next() {
                    *slot = record.offset;
                }
                index = index.saturating_add(1);
            }
            let kinds = kinds.get(..encoder_count).unwrap_or_default();
            encoder = Some(
                Encoder::new(shape, kinds)
                    .map_err(|e| bad_layer(encoder_count.saturating_sub(1), e))?,
            );
        }

        let mut layers = [Layer::linear(0, 0); MAX_IMAGE_LAYERS];
        let mut batches_tracked = [0_u64; MAX_IMAGE_LAYERS];
        let slots = layers.iter_mut().zip(batches_tracked.iter_mut());
        for ((layer, tracked), record) in slots.zip(records).take(head_count) {
            let record = Record::read_v2(record);
            if record.kind != record::KIND_DENSE {
                return Err(ImageError::BadLayer {
                    index,
                    reason: "the projector and predictor hold dense layers only",
                }
                .into());
            }
            *layer = record.dense_layer(index)?;
            *tracked = record.tracked;
            if let Some(slot) = offset_slots.next() {
                *slot = record.offset;
            }
            index = index.saturating_add(1);
        }
        let mut architecture = head_architecture(&layers, counts, flags, encoder_count)?;
        if let Some(encoder) = encoder {
            architecture = architecture
                .with_encoder(encoder)
                .map_err(|e| bad_layer(encoder_count, e))?;
        } else if input.is_some_and(|shape| shape.size().ok() != Some(architecture.d_encoder())) {
            return Err(inconsistent("input shape"));
        }
        let encoder_counts = encoder
            .iter()
            .flat_map(|encoder| encoder.layers().iter())
            .map(|kind| kind.param_count().unwrap_or(0));
        let head_counts = architecture
            .layers()
            .map(|layer| layer.param_count().unwrap_or(0));
        check_offsets(&offsets, encoder_counts.chain(head_counts))?;

        let standardization = if has(FLAG_STANDARDIZATION) {
            let values = head
                .get(sections.standardization..sections.training)
                .unwrap_or_default();
            let (words, _) = values.as_chunks::<4>();
            let (mean, std) = words.split_at_checked(channels).unwrap_or_default();
            let finite = |w: &[u8; 4]| f32::from_le_bytes(*w).is_finite();
            if !(mean.iter().all(finite)
                && std
                    .iter()
                    .all(|w| finite(w) && f32::from_le_bytes(*w) > 0.0))
            {
                return Err(inconsistent("standardization"));
            }
            values
        } else {
            &[]
        };
        let training = if has(FLAG_TRAINING) {
            let section = head.get(sections.training..).unwrap_or_default();
            Some(read_training(section)?)
        } else {
            None
        };
        let param_count = architecture.param_count()?;
        let (data, momentum) = Self::data(
            bytes,
            sections.header_len,
            param_count,
            [u64_at(header, 48), u64_at(header, 56)],
            has(FLAG_TRAINING),
        )?;
        let image = Self {
            version: IMAGE_VERSION,
            architecture,
            batches_tracked,
            encoder_batches_tracked,
            input,
            standardization,
            training,
            data,
            momentum,
        };
        Ok((image, head))
    }

    /// The format version the image was written in (1 or 2).
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The network the image describes.
    #[must_use]
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// Head layer `i`'s BatchNorm `num_batches_tracked` (0 for layers without one),
    /// projector first.
    #[must_use]
    pub fn batches_tracked(&self) -> &[u64; MAX_IMAGE_LAYERS] {
        &self.batches_tracked
    }

    /// Encoder layer `i`'s BatchNorm `num_batches_tracked` (0 for other kinds and
    /// without an encoder).
    #[must_use]
    pub fn encoder_batches_tracked(&self) -> &[u64; MAX_ENCODER_LAYERS] {
        &self.encoder_batches_tracked
    }

    /// The input contract, if recorded (always for a network with an encoder; never in
    /// version 1).
    #[must_use]
    pub fn input_contract(&self) -> Option<InputContract<'a>> {
        let shape = self.input?;
        let (mean, std) = self
            .standardization
            .split_at_checked(shape.channels.saturating_mul(4))
            .unwrap_or_default();
        let standardization = (!self.standardization.is_empty()).then_some(Standardization {
            mean: Values::Bytes(mean),
            std: Values::Bytes(std),
        });
        Some(InputContract {
            shape,
            layout: InputLayout::ChannelMajor,
            standardization,
        })
    }

    /// The training state, if the image has a training section.
    #[must_use]
    pub fn training(&self) -> Option<TrainingState> {
        self.training
    }

    /// How many parameters the image holds.
    #[must_use]
    pub fn param_count(&self) -> usize {
        self.data.len() / 4
    }

    /// The parameters, viewed in place (no copy).
    ///
    /// # Errors
    /// `Image(Misaligned)` when the data's address is not a multiple of 4 (keep the image
    /// in an [`AlignedImage`]) or the target is big-endian; use
    /// [`copy_params`](Self::copy_params) then.
    pub fn params(&self) -> SslResult<&'a [f32]> {
        view(self.data)
    }

    /// Copies the parameters into `out` (any alignment, any endianness).
    ///
    /// # Errors
    /// `DimensionMismatch` unless `out.len()` is [`param_count`](Self::param_count).
    pub fn copy_params(&self, out: &mut [f32]) -> SslResult<()> {
        copy(self.data, out)
    }

    /// The SGD momentum buffer of the training section, viewed in place; empty without
    /// a training section.
    ///
    /// # Errors
    /// As [`params`](Self::params).
    pub fn momentum(&self) -> SslResult<&'a [f32]> {
        view(self.momentum)
    }

    /// Copies the SGD momentum buffer of the training section into `out`.
    ///
    /// # Errors
    /// `InvalidParameter { name: "training" }` when the image has no training section;
    /// `DimensionMismatch` unless `out.len()` is [`param_count`](Self::param_count).
    pub fn copy_momentum(&self, out: &mut [f32]) -> SslResult<()> {
        if self.training.is_none() {
            return Err(SslError::InvalidParameter {
                name: "training",
                reason: "the image has no training section",
            });
        }
        copy(self.momentum, out)
    }
}

/// The head of `counts` projector and predictor layers from `layers`, with the
/// normalisation `flags`; errors name the table index (after `first` encoder records).
fn head_architecture(
    layers: &[Layer],
    counts: [usize; 2],
    flags: u32,
    first: usize,
) -> SslResult<Architecture> {
    let (projector, predictor) = layers.split_at_checked(counts[0]).unwrap_or_default();
    let predictor = predictor.get(..counts[1]).unwrap_or_default();
    let architecture = Architecture {
        encoder: None,
        projector: Stack::new(projector)?,
        predictor: Stack::new(predictor)?,
        normalize_projection: flags & FLAG_NORMALIZE_PROJECTION != 0,
        normalize_prediction: flags & FLAG_NORMALIZE_PREDICTION != 0,
    };
    if let Some((index, error)) = architecture.first_fault() {
        return Err(bad_layer(first.saturating_add(index), error));
    }
    Ok(architecture)
}

/// `f32` little-endian bytes viewed as floats.
fn view(bytes: &[u8]) -> SslResult<&[f32]> {
    if bytes.is_empty() {
        // Nothing to view (no training section): at any address.
        return Ok(&[]);
    }
    if cfg!(target_endian = "big") {
        return Err(ImageError::Misaligned.into());
    }
    bytemuck::try_cast_slice(bytes).map_err(|_| ImageError::Misaligned.into())
}

/// `f32` little-endian bytes copied into `out`, which must hold them all.
fn copy(bytes: &[u8], out: &mut [f32]) -> SslResult<()> {
    crate::error::check_len(bytes.len() / 4, out.len())?;
    let (words, _) = bytes.as_chunks::<4>();
    for (value, word) in out.iter_mut().zip(words) {
        *value = f32::from_le_bytes(*word);
    }
    Ok(())
}
