//! Converts trained SimSiam heads between PyTorch checkpoints and `simsiam` parameter
//! images.
//!
//! - [`Checkpoint::read`] opens a `torch.save` file (`.pth`, `.pth.tar`: zip or older
//!   formats, through [`pytorch_reader`]) or a `.safetensors` file, chosen by content.
//! - [`Head::from_checkpoint`] picks a [`Preset`]'s tensors out of it (backbone, optimizer
//!   and other keys are ignored), reads the dimensions from their shapes, builds the
//!   [`Architecture`] with the `simsiam` presets and checks every tensor's shape, dtype and
//!   finiteness against it.
//! - [`Head::to_image`] writes the parameter image (every tensor bit for bit, each
//!   BatchNorm's `num_batches_tracked`); [`Head::from_image`] reads one back, and
//!   [`Head::to_safetensors`] writes it under the preset's PyTorch key names.
//! - [`inspect`] describes an image, [`emit`] embeds one in C or Rust source.
//!
//! ```no_run
//! use simsiam_convert::{Checkpoint, Head, KeyNames, Preset};
//! let checkpoint = Checkpoint::read("checkpoint_0099.pth.tar")?;
//! let head = Head::from_checkpoint(&checkpoint, Preset::Official, &KeyNames::default())?;
//! std::fs::write("head.simsiam", head.to_image()?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use simsiam::SimSiamConfig;
use simsiam::SslError;
use simsiam::image::{
    IMAGE_ALIGN, Image, ImageExtras, image_len, image_len_with, write_image, write_image_with,
};
use simsiam::layers::LayerKind;
use simsiam::model::{
    Architecture, BatchNorm, HarConv, HarDense, Layer, MAX_ENCODER_LAYERS, MAX_LAYERS, StackName,
    Tensor,
};

/// Every way a conversion can fail. Each prints as one line naming what is at fault (the
/// file, or the checkpoint key).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A `torch.save` file that [`pytorch_reader`] cannot read.
    #[error("{}: cannot read as a PyTorch checkpoint: {message}", path.display())]
    Pytorch {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// A malformed `.safetensors` file.
    #[error("{}: cannot read as safetensors: {message}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A tensor the preset needs is not in the checkpoint.
    #[error("missing key `{key}`")]
    MissingKey {
        /// The full key, prefixes included.
        key: String,
    },
    /// A tensor whose shape does not fit the head.
    #[error("`{key}`: unexpected shape: expected {expected}, got {got:?}")]
    Shape {
        /// The full key.
        key: String,
        /// The shape the head needs (`[48, 48]`, or a description).
        expected: String,
        /// The tensor's shape.
        got: Vec<usize>,
    },
    /// A tensor of the wrong element type (weights must be `F32`, `num_batches_tracked`
    /// `I64`).
    #[error("`{key}`: wrong dtype: expected {expected}, got {got}")]
    Dtype {
        /// The full key.
        key: String,
        /// The dtype the head needs.
        expected: &'static str,
        /// The tensor's dtype.
        got: String,
    },
    /// A NaN or infinite parameter (an image never holds one).
    #[error("`{key}`: non-finite value {value} at index {index} (row-major)")]
    NonFinite {
        /// The full key.
        key: String,
        /// The flat row-major index of the first non-finite element.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A negative `num_batches_tracked`.
    #[error("`{key}`: negative num_batches_tracked {value}")]
    NegativeCount {
        /// The full key.
        key: String,
        /// Its value.
        value: i64,
    },
    /// A `num_batches_tracked` above `i64::MAX`, which PyTorch cannot hold.
    #[error("layer {layer}: num_batches_tracked {value} does not fit in I64")]
    CountOverflow {
        /// The layer (projector first, from 0).
        layer: usize,
        /// Its value.
        value: u64,
    },
    /// An encoder BatchNorm's `num_batches_tracked` above `i64::MAX`.
    #[error("`{key}`: num_batches_tracked {value} does not fit in I64")]
    KeyCountOverflow {
        /// The key it would be exported under.
        key: String,
        /// Its value.
        value: u64,
    },
    /// The image's head is not the shape of the preset asked for.
    #[error("the image's head is not a `{preset}` head: {reason}")]
    NotPreset {
        /// The preset asked for.
        preset: Preset,
        /// The first difference.
        reason: String,
    },
    /// An error of the `simsiam` crate (an invalid architecture, a malformed image).
    #[error("{context}: {source}")]
    Simsiam {
        /// What was being done.
        context: &'static str,
        /// The crate's error.
        #[source]
        source: SslError,
    },
    /// A `--name` that is not a C / Rust identifier.
    #[error("invalid name `{0}`: use letters, digits and `_`, not starting with a digit")]
    InvalidName(String),
}

/// `Result` with [`ConvertError`].
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

fn simsiam_error(context: &'static str) -> impl FnOnce(SslError) -> ConvertError {
    move |source| ConvertError::Simsiam { context, source }
}

/// The head layouts this converter knows, named after where their checkpoints come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// facebookresearch/simsiam (`builder.py`): `encoder.fc.{0,1,3,4,6,7}` and
    /// `predictor.{0,1,3}`, usually under `module.` ([`Architecture::official`]).
    Official,
    /// lightly's `SimSiamProjectionHead` / `SimSiamPredictionHead`: `layers.{0,1,3,4,6,7}`
    /// and `layers.{0,1,3}` under the two head prefixes ([`Architecture::lightly`]).
    #[value(
        help = "lightly heads: projection_head.layers.{0,1,3,4,6,7}, prediction_head.layers.{0,1,3}"
    )]
    Lightly,
    /// The reference's 2-layer head: `projector.{0,2}` and `predictor.{0,2}`, each a
    /// Linear with bias ([`Architecture::reference`]).
    #[value(help = "the reference's 2-layer head: projector.{0,2}, predictor.{0,2}")]
    Seed,
    /// The sensor recipe's dense network: `encoder.{0,1,3,4}`, `projector.{0,1,3,4}`,
    /// `predictor.{0,1,3}` ([`Architecture::har_dense`]).
    #[value(
        name = "har-dense",
        help = "the sensor recipe's dense network: encoder.{0,1,3,4}, projector.{0,1,3,4}, predictor.{0,1,3}"
    )]
    HarDense,
    /// The sensor recipe's convolutional network: `encoder.{1,2,5,6,9,10}` (after an
    /// `Unflatten`), `projector.{0,1,3,4}`, `predictor.{0,1,3}` ([`Architecture::har_conv`]).
    #[value(
        name = "har-conv",
        help = "the sensor recipe's convolutional network: encoder.{1,2,5,6,9,10}, projector.{0,1,3,4}, predictor.{0,1,3}"
    )]
    HarConv,
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Official => "official",
            Self::Lightly => "lightly",
            Self::Seed => "seed",
            Self::HarDense => "har-dense",
            Self::HarConv => "har-conv",
        })
    }
}

/// Where a preset's keys sit in the checkpoint.
///
/// Every key is `prefix` + the preset's name; for [`Preset::Lightly`] the name starts with
/// `projector_prefix` or `predictor_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNames {
    /// Before every key. `None`: on import `module.` when any key of the checkpoint starts
    /// with it (a `DistributedDataParallel` state dict), else nothing; on export `module.`
    /// for [`Preset::Official`] (as `main_simsiam.py` saves), nothing for the others.
    pub prefix: Option<String>,
    /// lightly's projection head, `projection_head.` by default.
    pub projector_prefix: String,
    /// lightly's prediction head, `prediction_head.` by default.
    pub predictor_prefix: String,
}

impl Default for KeyNames {
    fn default() -> Self {
        Self {
            prefix: None,
            projector_prefix: "projection_head.".into(),
            predictor_prefix: "prediction_head.".into(),
        }
    }
}

/// The input of a network with an encoder (`har-dense`, `har-conv`), which its
/// checkpoint does not hold: channels `C` and window length `T` of a sample `[C, T]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputShape {
    /// Channels `C` (6 by default: acc and gyro x/y/z).
    pub channels: usize,
    /// Window length `T` (128 by default).
    pub window: usize,
}

impl Default for InputShape {
    fn default() -> Self {
        Self {
            channels: 6,
            window: 128,
        }
    }
}

/// Which `num_batches_tracked` a counter is: a head layer's (projector first) or an
/// encoder layer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Head(usize),
    Encoder(usize),
}

impl Preset {
    /// Where a stack's modules sit under this preset, before the module index.
    fn stack_prefix(self, stack: StackName, names: &KeyNames) -> String {
        match (self, stack) {
            (Self::Official, StackName::Projector) => "encoder.fc.".into(),
            (Self::Lightly, StackName::Projector) => format!("{}layers.", names.projector_prefix),
            (Self::Lightly, StackName::Predictor) => format!("{}layers.", names.predictor_prefix),
            (_, stack) => format!("{stack}."),
        }
    }

    /// The checkpoint key of module `module`'s tensor `name` in `stack`, `prefix` first.
    fn key(
        self,
        names: &KeyNames,
        prefix: &str,
        stack: StackName,
        module: usize,
        name: &str,
    ) -> String {
        format!("{prefix}{}{module}.{name}", self.stack_prefix(stack, names))
    }

    /// The preset's architecture for the dimensions of `architecture` (which may be any
    /// network): what `architecture` must equal to be this preset's.
    fn like(self, architecture: &Architecture) -> Result<Architecture, SslError> {
        let hidden = |layers: &[Layer]| layers.first().map_or(0, |layer| layer.d_out);
        let projector_hidden = hidden(architecture.projector.layers());
        let predictor_hidden = hidden(architecture.predictor.layers());
        let (d_in, d_out) = (architecture.d_encoder(), architecture.d_out());
        let not_encoder = SslError::InvalidParameter {
            name: "encoder",
            reason: "the encoder is not the preset's",
        };
        let encoder = architecture.encoder.as_ref();
        let input = encoder.map(|e| e.input());
        let out = |kinds: &[LayerKind], index: usize| match kinds.get(index) {
            Some(LayerKind::Linear(linear)) => Some((linear.d_out, 0)),
            Some(LayerKind::Conv1d(conv)) => Some((conv.c_out, conv.kernel)),
            Some(LayerKind::MaxPool1d(pool)) => Some((pool.kernel, 0)),
            _ => None,
        };
        match self {
            Self::Official => Architecture::official(d_in, d_out, predictor_hidden),
            Self::Lightly => Architecture::lightly(d_in, projector_hidden, d_out, predictor_hidden),
            Self::Seed => Architecture::reference(SimSiamConfig {
                d_encoder: d_in,
                d_projector: projector_hidden,
                d_predictor: predictor_hidden,
                d_out,
            }),
            Self::HarDense => {
                let (kinds, input) = encoder.map(|e| e.layers()).zip(input).ok_or(not_encoder)?;
                let ((hidden, _), (feature, _)) =
                    out(kinds, 0).zip(out(kinds, 3)).ok_or(not_encoder)?;
                Architecture::har_dense(&HarDense {
                    channels: input.channels,
                    window: input.len,
                    hidden,
                    feature,
                    projector_hidden,
                    projection: d_out,
                    predictor_hidden,
                })
            }
            Self::HarConv => {
                let (kinds, input) = encoder.map(|e| e.layers()).zip(input).ok_or(not_encoder)?;
                let [c1, pool, c2, c3] = [0, 3, 4, 8].map(|index| out(kinds, index));
                let ((c1, k1), (pool, _), (c2, k2), (c3, k3)) = c1
                    .zip(pool)
                    .zip(c2)
                    .zip(c3)
                    .map(|(((a, b), c), d)| (a, b, c, d))
                    .ok_or(not_encoder)?;
                Architecture::har_conv(&HarConv {
                    channels: input.channels,
                    window: input.len,
                    conv_channels: [c1, c2, c3],
                    kernels: [k1, k2, k3],
                    pool,
                    projector_hidden,
                    projection: d_out,
                    predictor_hidden,
                })
            }
        }
    }

    /// The architecture of the preset, its dimensions read off the weights' shapes (the
    /// input's from `input` for a network with an encoder).
    fn architecture_from(
        self,
        checkpoint: &Checkpoint,
        names: &KeyNames,
        prefix: &str,
        input: InputShape,
    ) -> Result<Architecture> {
        let key = |stack, module| self.key(names, prefix, stack, module, "weight");
        let shape = |stack, module| checkpoint.matrix_shape(&key(stack, module));
        let head = |projector_first: usize, projector_last: usize| -> Result<[usize; 3]> {
            let (projector_hidden, _) = shape(StackName::Projector, projector_first)?;
            let (projection, _) = shape(StackName::Projector, projector_last)?;
            let (predictor_hidden, _) = shape(StackName::Predictor, 0)?;
            Ok([projector_hidden, projection, predictor_hidden])
        };
        let architecture = match self {
            Self::Official => {
                let (_, prev_dim) = shape(StackName::Projector, 0)?;
                let [_, dim, pred_dim] = head(0, 6)?;
                Architecture::official(prev_dim, dim, pred_dim)
            }
            Self::Lightly => {
                let (hidden, input) = shape(StackName::Projector, 0)?;
                let [_, output, pred_hidden] = head(0, 6)?;
                Architecture::lightly(input, hidden, output, pred_hidden)
            }
            Self::Seed => {
                let (d_projector, d_encoder) = shape(StackName::Projector, 0)?;
                let [_, d_out, d_predictor] = head(0, 2)?;
                Architecture::reference(SimSiamConfig {
                    d_encoder,
                    d_projector,
                    d_predictor,
                    d_out,
                })
            }
            Self::HarDense => {
                let (hidden, d_input) = shape(StackName::Encoder, 0)?;
                let (feature, _) = shape(StackName::Encoder, 3)?;
                let expected = input.channels.checked_mul(input.window);
                if expected != Some(d_input) {
                    return Err(ConvertError::Shape {
                        key: key(StackName::Encoder, 0),
                        expected: format!(
                            "[{hidden}, {}] (channels {} × window {})",
                            expected.map_or("overflow".into(), |d| d.to_string()),
                            input.channels,
                            input.window
                        ),
                        got: vec![hidden, d_input],
                    });
                }
                let [projector_hidden, projection, predictor_hidden] = head(0, 3)?;
                Architecture::har_dense(&HarDense {
                    channels: input.channels,
                    window: input.window,
                    hidden,
                    feature,
                    projector_hidden,
                    projection,
                    predictor_hidden,
                })
            }
            Self::HarConv => {
                let mut convs = [(0, 0); 3];
                for (conv, module) in convs.iter_mut().zip([1, 5, 9]) {
                    let key = key(StackName::Encoder, module);
                    let [c_out, c_in, kernel] = checkpoint.conv_shape(&key)?;
                    if module == 1 && c_in != input.channels {
                        return Err(ConvertError::Shape {
                            key,
                            expected: format!(
                                "[{c_out}, {}, {kernel}] (channels {})",
                                input.channels, input.channels
                            ),
                            got: vec![c_out, c_in, kernel],
                        });
                    }
                    *conv = (c_out, kernel);
                }
                let [(c1, k1), (c2, k2), (c3, k3)] = convs;
                let [projector_hidden, projection, predictor_hidden] = head(0, 3)?;
                Architecture::har_conv(&HarConv {
                    channels: input.channels,
                    window: input.window,
                    conv_channels: [c1, c2, c3],
                    kernels: [k1, k2, k3],
                    pool: HarConv::default().pool,
                    projector_hidden,
                    projection,
                    predictor_hidden,
                })
            }
        };
        architecture.map_err(simsiam_error("the checkpoint's dimensions"))
    }
}

/// The element type of a checkpoint tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DType {
    /// `float32`: weights, biases, BatchNorm parameters and statistics.
    F32,
    /// `int64`: `num_batches_tracked`.
    I64,
    /// Any other type, by name (`F64`, `F16`, `BF16`, …): never accepted.
    Other(String),
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::F32 => f.write_str("F32"),
            Self::I64 => f.write_str("I64"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// Where a tensor's bytes are.
#[derive(Clone)]
enum Source {
    /// Little-endian bytes `range` of a safetensors file's data section.
    Safetensors(std::sync::Arc<Vec<u8>>, std::ops::Range<usize>),
    /// Read from the `torch.save` file on demand (native-endian bytes).
    Pytorch(pytorch_reader::Tensor),
}

/// One tensor of a checkpoint: its type, shape and where its bytes are.
#[derive(Clone)]
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    source: Source,
}

/// A checkpoint's tensors by key: a PyTorch state dict, from a `torch.save` file or a
/// `.safetensors` file. Tensor data is read only when asked for.
#[derive(Clone)]
pub struct Checkpoint {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(key, entry)| (key, (&entry.dtype, &entry.shape))),
            )
            .finish()
    }
}

/// Whether `head` (the first bytes of a file) starts like a safetensors file: an 8-byte
/// little-endian header length, then a JSON object.
fn looks_like_safetensors(head: &[u8]) -> bool {
    head.len() > 8 && head.get(8) == Some(&b'{')
}

impl Checkpoint {
    /// Opens a checkpoint, telling the format by its content: a zip (`torch.save` since
    /// PyTorch 1.6) or another `torch.save` format goes to [`pytorch_reader`], a
    /// safetensors header (or the `.safetensors` extension) to [`safetensors`].
    ///
    /// A `torch.save` file of a dict that holds a state dict under `state_dict` (as
    /// `main_simsiam.py` saves: `epoch`, `arch`, `state_dict`, `optimizer`) is read as
    /// that state dict; other files as a plain state dict.
    ///
    /// # Errors
    /// [`ConvertError::Io`], [`ConvertError::Pytorch`], [`ConvertError::Safetensors`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| ConvertError::Io {
            path: path.to_owned(),
            source,
        };
        let mut head = [0_u8; 16];
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut got = 0;
        while got < head.len() {
            match file
                .read(head.get_mut(got..).unwrap_or_default())
                .map_err(io)?
            {
                0 => break,
                n => got += n,
            }
        }
        let head = head.get(..got).unwrap_or_default();
        let is_zip = head.starts_with(b"PK\x03\x04");
        let safetensors_extension = path.extension().is_some_and(|ext| ext == "safetensors");
        if !is_zip && (looks_like_safetensors(head) || safetensors_extension) {
            let bytes = std::fs::read(path).map_err(io)?;
            Self::from_safetensors(bytes, path).map_err(|message| ConvertError::Safetensors {
                path: path.to_owned(),
                message,
            })
        } else {
            Self::from_pytorch(path).map_err(|message| ConvertError::Pytorch {
                path: path.to_owned(),
                message,
            })
        }
    }

    /// The tensors of a safetensors file's bytes (`path` names it in messages).
    ///
    /// # Errors
    /// The parser's message.
    pub fn from_safetensors(bytes: Vec<u8>, path: &Path) -> Result<Self, String> {
        // Validates the header, the offsets and the lengths.
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
        let (header_len, metadata) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| e.to_string())?;
        let data_start = header_len.saturating_add(8);
        let bytes = std::sync::Arc::new(bytes);
        let entries = metadata
            .tensors()
            .into_iter()
            .map(|(key, info)| {
                let dtype = match info.dtype {
                    safetensors::Dtype::F32 => DType::F32,
                    safetensors::Dtype::I64 => DType::I64,
                    other => DType::Other(format!("{other:?}")),
                };
                let (start, end) = info.data_offsets;
                let range = data_start.saturating_add(start)..data_start.saturating_add(end);
                let source = Source::Safetensors(bytes.clone(), range);
                let shape = info.shape.clone();
                (
                    key,
                    Entry {
                        dtype,
                        shape,
                        source,
                    },
                )
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// The tensors of a `torch.save` file (the state dict under `state_dict`, if any).
    ///
    /// # Errors
    /// The reader's message.
    pub fn from_pytorch(path: &Path) -> Result<Self, String> {
        let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| e.to_string())?;
        let tensors = reader.into_tensors();
        let nested = tensors.keys().any(|key| key.starts_with("state_dict."));
        let entries = tensors
            .into_iter()
            .filter_map(|(key, tensor)| {
                let key = if nested {
                    key.strip_prefix("state_dict.")?.to_owned()
                } else {
                    key
                };
                let dtype = match tensor.dtype() {
                    pytorch_reader::DType::F32 => DType::F32,
                    pytorch_reader::DType::I64 => DType::I64,
                    other => DType::Other(format!("{other:?}")),
                };
                let shape = tensor.shape().to_vec();
                let source = Source::Pytorch(tensor);
                Some((
                    key,
                    Entry {
                        dtype,
                        shape,
                        source,
                    },
                ))
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// Every key, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The dtype and shape of `key`, if present.
    #[must_use]
    pub fn info(&self, key: &str) -> Option<(&DType, &[usize])> {
        self.entries
            .get(key)
            .map(|entry| (&entry.dtype, entry.shape.as_slice()))
    }

    fn entry(&self, key: &str) -> Result<&Entry> {
        self.entries
            .get(key)
            .ok_or_else(|| ConvertError::MissingKey {
                key: key.to_owned(),
            })
    }

    /// `(rows, cols)` of the 2-d tensor `key`.
    fn matrix_shape(&self, key: &str) -> Result<(usize, usize)> {
        match self.entry(key)?.shape.as_slice() {
            [rows, cols] => Ok((*rows, *cols)),
            other => Err(ConvertError::Shape {
                key: key.to_owned(),
                expected: "a 2-d [out_features, in_features] weight".into(),
                got: other.to_vec(),
            }),
        }
    }

    /// `[out_channels, in_channels, kernel]` of the 3-d tensor `key`.
    fn conv_shape(&self, key: &str) -> Result<[usize; 3]> {
        match self.entry(key)?.shape.as_slice() {
            [c_out, c_in, kernel] => Ok([*c_out, *c_in, *kernel]),
            other => Err(ConvertError::Shape {
                key: key.to_owned(),
                expected: "a 3-d [out_channels, in_channels, kernel] weight".into(),
                got: other.to_vec(),
            }),
        }
    }

    /// The bytes of `key` and whether they are little-endian (else native-endian).
    fn bytes(&self, key: &str, entry: &Entry) -> Result<(Vec<u8>, bool)> {
        match &entry.source {
            Source::Safetensors(bytes, range) => {
                Ok((bytes.get(range.clone()).unwrap_or_default().to_vec(), true))
            }
            Source::Pytorch(tensor) => {
                tensor
                    .read()
                    .map(|bytes| (bytes, false))
                    .map_err(|error| ConvertError::Pytorch {
                        path: self.path.clone(),
                        message: format!("`{key}`: {error}"),
                    })
            }
        }
    }

    /// The `F32` tensor `key`, checked to have `shape` and only finite values.
    ///
    /// # Errors
    /// [`ConvertError::MissingKey`], [`ConvertError::Shape`], [`ConvertError::Dtype`],
    /// [`ConvertError::NonFinite`].
    pub fn f32_tensor(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let entry = self.entry(key)?;
        check_shape(key, entry, shape)?;
        if entry.dtype != DType::F32 {
            return Err(ConvertError::Dtype {
                key: key.to_owned(),
                expected: "F32",
                got: entry.dtype.to_string(),
            });
        }
        let (bytes, little) = self.bytes(key, entry)?;
        let (words, _) = bytes.as_chunks::<4>();
        let values: Vec<f32> = words
            .iter()
            .map(|word| {
                if little {
                    f32::from_le_bytes(*word)
                } else {
                    f32::from_ne_bytes(*word)
                }
            })
            .collect();
        if let Some((index, value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ConvertError::NonFinite {
                key: key.to_owned(),
                index,
                value: *value,
            });
        }
        Ok(values)
    }

    /// The 0-d `I64` tensor `key` (a `num_batches_tracked`) as a non-negative count;
    /// `Ok(None)` when absent.
    ///
    /// # Errors
    /// [`ConvertError::Shape`], [`ConvertError::Dtype`], [`ConvertError::NegativeCount`].
    pub fn count(&self, key: &str) -> Result<Option<u64>> {
        let Some(entry) = self.entries.get(key) else {
            return Ok(None);
        };
        check_shape(key, entry, &[])?;
        if entry.dtype != DType::I64 {
            return Err(ConvertError::Dtype {
                key: key.to_owned(),
                expected: "I64",
                got: entry.dtype.to_string(),
            });
        }
        let (bytes, little) = self.bytes(key, entry)?;
        let word = bytes.first_chunk::<8>().copied().unwrap_or_default();
        let value = if little {
            i64::from_le_bytes(word)
        } else {
            i64::from_ne_bytes(word)
        };
        u64::try_from(value)
            .map(Some)
            .map_err(|_| ConvertError::NegativeCount {
                key: key.to_owned(),
                value,
            })
    }
}

fn check_shape(key: &str, entry: &Entry, shape: &[usize]) -> Result<()> {
    if entry.shape == shape {
        Ok(())
    } else {
        Err(ConvertError::Shape {
            key: key.to_owned(),
            expected: format!("{shape:?}"),
            got: entry.shape.clone(),
        })
    }
}

/// One tensor of the flat layout: its key, shape and position.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    key: String,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// The flat layout of `architecture` ([`Architecture::tensors`]) under `preset`'s
/// PyTorch names, and each BatchNorm's `num_batches_tracked` key with its counter.
fn slots(
    architecture: &Architecture,
    preset: Preset,
    names: &KeyNames,
    prefix: &str,
) -> (Vec<Slot>, Vec<(Counter, String)>) {
    let projector_len = architecture.projector.layers().len();
    let key = |t: &Tensor, name: &str| preset.key(names, prefix, t.stack, t.module, name);
    let mut counters = Vec::new();
    let slots = architecture
        .tensors()
        .map(|tensor| {
            if tensor.name == "running_var" {
                let counter = match tensor.stack {
                    StackName::Encoder => Counter::Encoder(tensor.layer),
                    StackName::Projector => Counter::Head(tensor.layer),
                    StackName::Predictor => Counter::Head(projector_len + tensor.layer),
                };
                counters.push((counter, key(&tensor, "num_batches_tracked")));
            }
            Slot {
                key: key(&tensor, tensor.name),
                shape: tensor.shape().to_vec(),
                start: tensor.start,
                len: tensor.len,
            }
        })
        .collect();
    (slots, counters)
}

/// A head: its architecture, flat parameters and BatchNorm counters, as an image holds
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// What the head is made of.
    pub architecture: Architecture,
    /// The flat parameters ([`Architecture::param_count`] of them).
    pub params: Vec<f32>,
    /// Each layer's BatchNorm `num_batches_tracked`, projector first (0 without one).
    pub batches_tracked: [u64; MAX_LAYERS],
    /// Each encoder layer's BatchNorm `num_batches_tracked` (0 for other kinds and
    /// without an encoder).
    pub encoder_batches_tracked: [u64; MAX_ENCODER_LAYERS],
}

/// The prefix before every key: the given one, or `module.` when any key has it.
fn import_prefix(checkpoint: &Checkpoint, names: &KeyNames) -> String {
    match &names.prefix {
        Some(prefix) => prefix.clone(),
        None if checkpoint.keys().any(|key| key.starts_with("module.")) => "module.".into(),
        None => String::new(),
    }
}

impl Head {
    /// The `preset` head in `checkpoint`: dimensions from the weights' shapes, then every
    /// tensor checked against the architecture (shape, dtype `F32`, finite) and copied
    /// bit for bit; each BatchNorm's `num_batches_tracked` (`I64`, 0-d; 0 when absent).
    /// Keys outside the head (backbone, other modules) are ignored.
    ///
    /// # Errors
    /// [`ConvertError::MissingKey`], [`ConvertError::Shape`], [`ConvertError::Dtype`],
    /// [`ConvertError::NonFinite`], [`ConvertError::NegativeCount`], each naming the key;
    /// [`ConvertError::Simsiam`] for dimensions the crate rejects (zero widths).
    pub fn from_checkpoint(
        checkpoint: &Checkpoint,
        preset: Preset,
        names: &KeyNames,
    ) -> Result<Self> {
        Self::from_checkpoint_with(checkpoint, preset, names, InputShape::default())
    }

    /// [`from_checkpoint`](Self::from_checkpoint) for a network whose input is `input`
    /// (`har-dense`, `har-conv`: the checkpoint holds no input shape; the other presets
    /// ignore it). Every width, channel count and kernel length comes from the
    /// checkpoint's shapes; `har-conv`'s pools are `MaxPool1d(2)`.
    ///
    /// # Errors
    /// As [`from_checkpoint`](Self::from_checkpoint); [`ConvertError::Shape`] naming the
    /// first weight when it does not take `input` (`har-dense`: `C·T` columns;
    /// `har-conv`: `C` input channels); [`ConvertError::Simsiam`] for a window too short
    /// for the convolutions and pools.
    pub fn from_checkpoint_with(
        checkpoint: &Checkpoint,
        preset: Preset,
        names: &KeyNames,
        input: InputShape,
    ) -> Result<Self> {
        let prefix = import_prefix(checkpoint, names);
        let architecture = preset.architecture_from(checkpoint, names, &prefix, input)?;
        let param_count = architecture
            .param_count()
            .map_err(simsiam_error("the checkpoint's dimensions"))?;
        let mut params = vec![0.0_f32; param_count];
        let (slots, counters) = slots(&architecture, preset, names, &prefix);
        for slot in &slots {
            let values = checkpoint.f32_tensor(&slot.key, &slot.shape)?;
            if let Some(target) = params.get_mut(slot.start..slot.start + slot.len) {
                target.copy_from_slice(&values);
            }
        }
        let mut batches_tracked = [0; MAX_LAYERS];
        let mut encoder_batches_tracked = [0; MAX_ENCODER_LAYERS];
        for (counter, key) in counters {
            let slot = match counter {
                Counter::Head(layer) => batches_tracked.get_mut(layer),
                Counter::Encoder(layer) => encoder_batches_tracked.get_mut(layer),
            };
            if let (Some(count), Some(slot)) = (checkpoint.count(&key)?, slot) {
                *slot = count;
            }
        }
        Ok(Self {
            architecture,
            params,
            batches_tracked,
            encoder_batches_tracked,
        })
    }

    /// The head a parameter image holds.
    ///
    /// # Errors
    /// [`ConvertError::Simsiam`] for a malformed image ([`Image::parse`]).
    pub fn from_image(bytes: &[u8]) -> Result<Self> {
        let image = Image::parse(bytes).map_err(simsiam_error("reading the image"))?;
        let mut params = vec![0.0_f32; image.param_count()];
        image
            .copy_params(&mut params)
            .map_err(simsiam_error("reading the image"))?;
        Ok(Self {
            architecture: *image.architecture(),
            params,
            batches_tracked: *image.batches_tracked(),
            encoder_batches_tracked: *image.encoder_batches_tracked(),
        })
    }

    /// The parameter image of the network (`simsiam::image` format): version 1 for a head
    /// alone ([`write_image`]), version 2 with every BatchNorm counter for a network with
    /// an encoder ([`write_image_with`]; the input contract is the encoder's input shape,
    /// channel-major, without a standardisation).
    ///
    /// # Errors
    /// [`ConvertError::Simsiam`] ([`write_image`]'s and [`write_image_with`]'s errors).
    pub fn to_image(&self) -> Result<Vec<u8>> {
        let context = simsiam_error("writing the image");
        if self.architecture.encoder.is_none() {
            // A head alone: version 1, as before (the committed images stay the same).
            let len = image_len(&self.architecture).map_err(context)?;
            let mut bytes = vec![0_u8; len];
            write_image(
                &self.architecture,
                &self.params,
                &self.batches_tracked,
                &mut bytes,
            )
            .map_err(simsiam_error("writing the image"))?;
            return Ok(bytes);
        }
        let extras = ImageExtras {
            batches_tracked: &self.batches_tracked,
            encoder_batches_tracked: &self.encoder_batches_tracked,
            ..ImageExtras::default()
        };
        let len = image_len_with(&self.architecture, &extras).map_err(context)?;
        let mut bytes = vec![0_u8; len];
        write_image_with(&self.architecture, &self.params, &extras, &mut bytes)
            .map_err(simsiam_error("writing the image"))?;
        Ok(bytes)
    }

    /// Checks that the head is `preset`'s shape (same layers, BatchNorm `eps` 1e-5, same
    /// normalisation), for its own dimensions.
    ///
    /// # Errors
    /// [`ConvertError::NotPreset`] naming the first difference.
    pub fn check_preset(&self, preset: Preset) -> Result<()> {
        let not = |reason: String| ConvertError::NotPreset { preset, reason };
        let expected = preset
            .like(&self.architecture)
            .map_err(|error| not(error.to_string()))?;
        if expected == self.architecture {
            return Ok(());
        }
        let (ours, theirs) = (&self.architecture, &expected);
        if ours.encoder != theirs.encoder {
            return Err(not(match (&ours.encoder, &theirs.encoder) {
                (Some(_), None) => "it has an encoder; the preset has none".into(),
                (None, Some(_)) => "it has no encoder; the preset has one".into(),
                (a, b) => format!("its encoder is {a:?}; the preset's is {b:?}"),
            }));
        }
        for (name, a, b) in [
            ("projector", &ours.projector, &theirs.projector),
            ("predictor", &ours.predictor, &theirs.predictor),
        ] {
            if a.layers().len() != b.layers().len() {
                return Err(not(format!(
                    "its {name} has {} layers, the preset's {}",
                    a.layers().len(),
                    b.layers().len()
                )));
            }
        }
        for (index, (a, b)) in ours.layers().zip(theirs.layers()).enumerate() {
            if a != b {
                return Err(not(format!(
                    "layer {index} is {}; the preset's is {}",
                    describe_layer(a),
                    describe_layer(b)
                )));
            }
        }
        Err(not(format!(
            "it L2-normalises projection {} / prediction {}; the preset {} / {}",
            ours.normalize_projection,
            ours.normalize_prediction,
            theirs.normalize_projection,
            theirs.normalize_prediction
        )))
    }

    /// Every tensor of the head under `preset`'s PyTorch names: weights, biases and
    /// BatchNorm parameters and statistics as `F32` (bit for bit), each BatchNorm's
    /// `num_batches_tracked` as a 0-d `I64`. `names.prefix` `None` means `module.` for
    /// [`Preset::Official`], nothing for the others.
    ///
    /// # Errors
    /// [`ConvertError::NotPreset`]; [`ConvertError::CountOverflow`].
    pub fn tensors(&self, preset: Preset, names: &KeyNames) -> Result<Vec<(String, ExportTensor)>> {
        self.check_preset(preset)?;
        let prefix = match (&names.prefix, preset) {
            (Some(prefix), _) => prefix.as_str(),
            (None, Preset::Official) => "module.",
            (None, _) => "",
        };
        let (slots, counters) = slots(&self.architecture, preset, names, prefix);
        let mut tensors = Vec::with_capacity(slots.len() + counters.len());
        for slot in slots {
            let values = self
                .params
                .get(slot.start..slot.start + slot.len)
                .unwrap_or_default();
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.push((
                slot.key,
                ExportTensor {
                    dtype: safetensors::Dtype::F32,
                    shape: slot.shape,
                    data,
                },
            ));
        }
        for (counter, key) in counters {
            let count = match counter {
                Counter::Head(layer) => self.batches_tracked.get(layer),
                Counter::Encoder(layer) => self.encoder_batches_tracked.get(layer),
            };
            let count = count.copied().unwrap_or(0);
            let value = i64::try_from(count).map_err(|_| match counter {
                Counter::Head(layer) => ConvertError::CountOverflow {
                    layer,
                    value: count,
                },
                Counter::Encoder(_) => ConvertError::KeyCountOverflow {
                    key: key.clone(),
                    value: count,
                },
            })?;
            tensors.push((
                key,
                ExportTensor {
                    dtype: safetensors::Dtype::I64,
                    shape: Vec::new(),
                    data: value.to_le_bytes().to_vec(),
                },
            ));
        }
        Ok(tensors)
    }

    /// The head as a `.safetensors` file under `preset`'s key names ([`tensors`](Self::tensors)),
    /// which PyTorch's strict `load_state_dict` of the head accepts.
    ///
    /// # Errors
    /// As [`tensors`](Self::tensors); [`ConvertError::Safetensors`] if serialisation fails.
    pub fn to_safetensors(&self, preset: Preset, names: &KeyNames) -> Result<Vec<u8>> {
        let tensors = self.tensors(preset, names)?;
        safetensors::serialize(tensors, None).map_err(|error| ConvertError::Safetensors {
            path: PathBuf::from("<output>"),
            message: error.to_string(),
        })
    }
}

/// A tensor to write: little-endian bytes, for [`safetensors::serialize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTensor {
    /// `F32` or `I64`.
    pub dtype: safetensors::Dtype,
    /// Its shape (`[]` for a 0-d tensor).
    pub shape: Vec<usize>,
    /// Its elements, little-endian.
    pub data: Vec<u8>,
}

impl safetensors::View for ExportTensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// A network's eval outputs on a batch of `n` inputs, each row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutputs {
    /// How many inputs.
    pub n: usize,
    /// The encoder's outputs, `n × d_encoder`; `None` for a head alone (its input is the
    /// encoder output already).
    pub encoder: Option<Vec<f32>>,
    /// The projections, `n × d_out`.
    pub projection: Vec<f32>,
    /// The predictions of the projections, `n × d_out`.
    pub prediction: Vec<f32>,
}

impl RunOutputs {
    /// The outputs as `F32` tensors `encoder` (when present), `projection` and
    /// `prediction`, shaped `[n, width]`.
    #[must_use]
    pub fn tensors(&self) -> Vec<(String, ExportTensor)> {
        let tensor = |values: &[f32]| ExportTensor {
            dtype: safetensors::Dtype::F32,
            shape: vec![self.n, values.len().checked_div(self.n).unwrap_or(0)],
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        let mut out = Vec::new();
        if let Some(encoder) = &self.encoder {
            out.push(("encoder".to_owned(), tensor(encoder)));
        }
        out.push(("projection".to_owned(), tensor(&self.projection)));
        out.push(("prediction".to_owned(), tensor(&self.prediction)));
        out
    }
}

impl Head {
    /// The network in eval mode (BatchNorm with its running statistics) on `x`, `n`
    /// inputs of [`Architecture::d_input`] floats row-major (a sample `[C, T]`
    /// channel-major, as PyTorch's `x.view(N, C, T)`): the encoder's output (with an
    /// encoder), the projection (`project` of the input) and the prediction of the
    /// projection, as `simsiam::SimSiam` computes them.
    ///
    /// # Errors
    /// [`ConvertError::Simsiam`]: `DimensionMismatch` when `x` is not a whole number of
    /// inputs, `NonFinite` for an output that overflowed.
    pub fn run(&self, x: &[f32]) -> Result<RunOutputs> {
        let context = "running the network";
        let model = simsiam::SimSiam::from_params(self.architecture, self.params.clone())
            .map_err(simsiam_error(context))?;
        let d_input = self.architecture.d_input();
        let n = x.len().checked_div(d_input).unwrap_or(0);
        if n == 0 || n * d_input != x.len() {
            return Err(ConvertError::Simsiam {
                context,
                source: SslError::DimensionMismatch {
                    expected: n.max(1) * d_input,
                    got: x.len(),
                },
            });
        }
        let encoder = match self.architecture.encoder {
            Some(_) => Some(model.encode_batch(x).map_err(simsiam_error(context))?),
            None => None,
        };
        let projection = model.project_batch(x).map_err(simsiam_error(context))?;
        let prediction = model
            .predict_batch(&projection)
            .map_err(simsiam_error(context))?;
        Ok(RunOutputs {
            n,
            encoder,
            projection,
            prediction,
        })
    }
}

/// The input tensor `x` of `input` (a `.safetensors` file), checked against
/// `architecture`: `F32`, finite, `[N, D]` with `D` = [`Architecture::d_input`], or
/// `[N, C, T]` with `C·T = D` (and `[C, T]` the encoder's input shape when there is an
/// encoder), `N ≥ 1`. Returns the values, row-major.
///
/// # Errors
/// [`Checkpoint::read`]'s errors; [`ConvertError::MissingKey`] without `x`;
/// [`ConvertError::Shape`], [`ConvertError::Dtype`], [`ConvertError::NonFinite`] naming
/// `x`.
pub fn read_input(input: impl AsRef<Path>, architecture: &Architecture) -> Result<Vec<f32>> {
    let file = Checkpoint::read(input)?;
    let key = "x";
    let shape = file
        .info(key)
        .map(|(_, shape)| shape.to_vec())
        .ok_or_else(|| ConvertError::MissingKey { key: key.into() })?;
    let d_input = architecture.d_input();
    let sample = architecture
        .encoder
        .map(|encoder| encoder.input())
        .filter(|input| input.len > 1);
    let fits = match shape.as_slice() {
        [n, d] => *n > 0 && *d == d_input,
        [n, c, t] => {
            *n > 0
                && c.checked_mul(*t) == Some(d_input)
                && sample.is_none_or(|s| (s.channels, s.len) == (*c, *t))
        }
        _ => false,
    };
    if !fits {
        let expected = match sample {
            Some(s) => format!("[N, {d_input}] or [N, {}, {}], N ≥ 1", s.channels, s.len),
            None => format!("[N, {d_input}] or [N, C, T] with C·T = {d_input}, N ≥ 1"),
        };
        return Err(ConvertError::Shape {
            key: key.into(),
            expected,
            got: shape,
        });
    }
    file.f32_tensor(key, &shape)
}

/// `simsiam-convert run`: the image's network in eval mode on the input file's `x`
/// ([`read_input`], [`Head::run`]), as a `.safetensors` file of `encoder` (omitted for
/// a head alone), `projection` and `prediction`.
///
/// # Errors
/// [`Head::from_image`]'s, [`read_input`]'s and [`Head::run`]'s errors;
/// [`ConvertError::Safetensors`] if serialisation fails.
pub fn run(image: &[u8], input: impl AsRef<Path>) -> Result<Vec<u8>> {
    let head = Head::from_image(image)?;
    let x = read_input(input, &head.architecture)?;
    let outputs = head.run(&x)?;
    safetensors::serialize(outputs.tensors(), None).map_err(|error| ConvertError::Safetensors {
        path: PathBuf::from("<output>"),
        message: error.to_string(),
    })
}

/// Reads `checkpoint` and returns the image of its `preset` head.
///
/// # Errors
/// [`Checkpoint::read`]'s, [`Head::from_checkpoint`]'s and [`Head::to_image`]'s errors.
pub fn import(checkpoint: impl AsRef<Path>, preset: Preset, names: &KeyNames) -> Result<Vec<u8>> {
    let checkpoint = Checkpoint::read(checkpoint)?;
    Head::from_checkpoint(&checkpoint, preset, names)?.to_image()
}

/// The `.safetensors` bytes of the image's head under `preset`'s key names.
///
/// # Errors
/// [`Head::from_image`]'s and [`Head::to_safetensors`]'s errors.
pub fn export(image: &[u8], preset: Preset, names: &KeyNames) -> Result<Vec<u8>> {
    Head::from_image(image)?.to_safetensors(preset, names)
}

/// One line describing a layer: `48 → 32, bias (frozen), BatchNorm(affine=false, eps=1e-5), ReLU`.
#[must_use]
pub fn describe_layer(layer: &Layer) -> String {
    let mut text = format!("{} → {}", layer.d_in, layer.d_out);
    text.push_str(match (layer.bias, layer.bias_frozen) {
        (true, true) => ", bias (frozen)",
        (true, false) => ", bias",
        (false, _) => ", no bias",
    });
    if let Some(BatchNorm { affine, eps, .. }) = layer.batch_norm {
        let _ = write!(text, ", BatchNorm(affine={affine}, eps={eps:e})");
    }
    if layer.relu {
        text.push_str(", ReLU");
    }
    text
}

/// The preset whose shape the architecture has, if any, with its dimensions.
fn preset_of(architecture: &Architecture) -> Option<String> {
    let hidden = |layers: &[Layer]| layers.first().map_or(0, |layer| layer.d_out);
    let (p, q) = (
        hidden(architecture.projector.layers()),
        hidden(architecture.predictor.layers()),
    );
    let (d_in, d_out) = (architecture.d_encoder(), architecture.d_out());
    let input = architecture.encoder.map_or(String::new(), |e| {
        format!("{}×{}", e.input().channels, e.input().len)
    });
    [
        Preset::Official,
        Preset::Lightly,
        Preset::Seed,
        Preset::HarDense,
        Preset::HarConv,
    ]
    .into_iter()
        .find(|preset| preset.like(architecture).ok().as_ref() == Some(architecture))
        .map(|preset| match preset {
            Preset::Official => {
                format!("official (prev_dim {d_in}, dim {d_out}, pred_dim {q})")
            }
            Preset::Lightly => {
                format!("lightly (input {d_in}, hidden {p}, output {d_out}, prediction hidden {q})")
            }
            Preset::Seed => {
                format!("seed (d_encoder {d_in}, d_projector {p}, d_out {d_out}, d_predictor {q})")
            }
            Preset::HarDense | Preset::HarConv => format!(
                "{preset} (input {input}, feature {d_in}, projector hidden {p}, projection {d_out}, predictor hidden {q})"
            ),
        })
}

/// A human-readable description of an image: the architecture (each layer's shape,
/// bias, BatchNorm, ReLU; the normalisation flags), the preset it matches, the parameter
/// count, data and image bytes, header overhead, BatchNorm counters and the CRC-32.
///
/// # Errors
/// [`ConvertError::Simsiam`] for a malformed image.
pub fn inspect(bytes: &[u8]) -> Result<String> {
    let image = Image::parse(bytes).map_err(simsiam_error("reading the image"))?;
    let architecture = image.architecture();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "simsiam parameter image, format version {}",
        image.version()
    );
    let _ = writeln!(
        out,
        "preset: {}",
        preset_of(architecture).unwrap_or_else(|| "none (custom head)".into())
    );
    if let Some(contract) = image.input_contract() {
        let _ = writeln!(
            out,
            "input: {} channels × {} samples, channel-major, standardisation {}",
            contract.shape.channels,
            contract.shape.len,
            if contract.standardization.is_some() {
                "recorded"
            } else {
                "not recorded"
            }
        );
    }
    if let Some(encoder) = &architecture.encoder {
        let _ = writeln!(
            out,
            "encoder: {} → {}, {} layers",
            encoder.d_input(),
            encoder.d_out(),
            encoder.layers().len()
        );
        let tracked = image.encoder_batches_tracked();
        for (index, kind) in encoder.layers().iter().enumerate() {
            let counter = match kind {
                LayerKind::BatchNorm1d(_) => format!(
                    ", num_batches_tracked {}",
                    tracked.get(index).copied().unwrap_or(0)
                ),
                _ => String::new(),
            };
            let params = kind.param_count().unwrap_or(0);
            let _ = writeln!(
                out,
                "  layer {index}: {kind:?}{counter} ({params} parameters)"
            );
        }
    }
    if image.training().is_some() {
        let _ = writeln!(out, "training section: present (momentum, schedule, RNG)");
    }
    let mut index = 0;
    for (name, stack, normalized) in [
        (
            "projector",
            &architecture.projector,
            architecture.normalize_projection,
        ),
        (
            "predictor",
            &architecture.predictor,
            architecture.normalize_prediction,
        ),
    ] {
        let _ = writeln!(
            out,
            "{name}: {} → {}, {} layers, output L2-normalised: {}",
            stack.d_in(),
            stack.d_out(),
            stack.layers().len(),
            if normalized { "yes" } else { "no" }
        );
        for layer in stack.layers() {
            let tracked = image.batches_tracked().get(index).copied().unwrap_or(0);
            let counter = if layer.batch_norm.is_some() {
                format!(", num_batches_tracked {tracked}")
            } else {
                String::new()
            };
            let params = layer.param_count().unwrap_or(0);
            let _ = writeln!(
                out,
                "  layer {index}: {}{counter} ({params} parameters)",
                describe_layer(layer)
            );
            index += 1;
        }
    }
    let params = image.param_count();
    let data = params * 4;
    // A training section adds the momentum buffer after the parameters.
    let momentum = if image.training().is_some() { data } else { 0 };
    let header = bytes.len().saturating_sub(data + momentum);
    let _ = writeln!(out, "parameters: {params}");
    let _ = writeln!(out, "data bytes: {data}");
    if momentum > 0 {
        let _ = writeln!(out, "momentum bytes: {momentum}");
    }
    let _ = writeln!(
        out,
        "image bytes: {} (header and layer table {header} bytes, {:.2}% overhead)",
        bytes.len(),
        100.0 * header as f64 / bytes.len() as f64
    );
    let crc = bytes
        .get(12..16)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_le_bytes(*b));
    let _ = writeln!(out, "CRC-32: {crc:#010x} (verified)");
    Ok(out)
}

/// The language [`emit`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// `_Alignas(64) static const unsigned char NAME[] = {...};` (C11).
    #[value(help = "_Alignas(64) static const unsigned char NAME[] (C11)")]
    C,
    /// `static NAME: simsiam::image::AlignedImage<[u8; N]> = ...;`.
    #[value(help = "static NAME: simsiam::image::AlignedImage<[u8; N]>")]
    Rust,
}

impl Lang {
    /// The default array name: `simsiam_image` (C) or `SIMSIAM_IMAGE` (Rust).
    #[must_use]
    pub fn default_name(self) -> &'static str {
        match self {
            Self::C => "simsiam_image",
            Self::Rust => "SIMSIAM_IMAGE",
        }
    }
}

/// Source code embedding the image's bytes, aligned to 64 bytes
/// ([`IMAGE_ALIGN`]) so the head can view its parameters in place: for C
/// `_Alignas(64) static const unsigned char NAME[] = {...};`, for Rust
/// `static NAME: simsiam::image::AlignedImage<[u8; N]> = simsiam::image::AlignedImage([...]);`.
///
/// # Errors
/// [`ConvertError::InvalidName`] for a name that is not an identifier;
/// [`ConvertError::Simsiam`] for a malformed image (it is validated first).
pub fn emit(bytes: &[u8], lang: Lang, name: Option<&str>) -> Result<String> {
    let image = Image::parse(bytes).map_err(simsiam_error("reading the image"))?;
    let name = name.unwrap_or(lang.default_name());
    let mut chars = name.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(ConvertError::InvalidName(name.to_owned()));
    }
    let what = format!(
        "{}: {} parameters, {} bytes",
        preset_of(image.architecture()).unwrap_or_else(|| "custom head".into()),
        image.param_count(),
        bytes.len()
    );
    let mut body = String::new();
    for line in bytes.chunks(16) {
        body.push_str("    ");
        let cells: Vec<String> = line.iter().map(|b| format!("0x{b:02x},")).collect();
        body.push_str(&cells.join(" "));
        body.push('\n');
    }
    let len = bytes.len();
    Ok(match lang {
        Lang::C => format!(
            "/* simsiam parameter image ({what}); generated by simsiam-convert. */\n\
             _Alignas({IMAGE_ALIGN}) static const unsigned char {name}[] = {{\n{body}}};\n"
        ),
        Lang::Rust => format!(
            "// simsiam parameter image ({what}); generated by simsiam-convert.\n\
             #[rustfmt::skip]\n\
             static {name}: simsiam::image::AlignedImage<[u8; {len}]> = simsiam::image::AlignedImage([\n{body}]);\n"
        ),
    })
}
