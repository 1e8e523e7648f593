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
use simsiam::image::{IMAGE_ALIGN, Image, image_len, write_image};
use simsiam::model::{Architecture, BatchNorm, Layer, MAX_LAYERS};

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
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Official => "official",
            Self::Lightly => "lightly",
            Self::Seed => "seed",
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

/// The PyTorch module names of one layer: its `Linear` and its `BatchNorm1d`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LayerKeys {
    linear: String,
    batch_norm: Option<String>,
}

impl Preset {
    /// The module names of every layer, projector first, `prefix` included.
    fn layer_keys(self, names: &KeyNames, prefix: &str) -> Vec<LayerKeys> {
        let layer = |linear: String, batch_norm: Option<String>| LayerKeys {
            linear: format!("{prefix}{linear}"),
            batch_norm: batch_norm.map(|bn| format!("{prefix}{bn}")),
        };
        match self {
            Self::Official => vec![
                layer("encoder.fc.0".into(), Some("encoder.fc.1".into())),
                layer("encoder.fc.3".into(), Some("encoder.fc.4".into())),
                layer("encoder.fc.6".into(), Some("encoder.fc.7".into())),
                layer("predictor.0".into(), Some("predictor.1".into())),
                layer("predictor.3".into(), None),
            ],
            Self::Lightly => {
                let (p, q) = (&names.projector_prefix, &names.predictor_prefix);
                vec![
                    layer(format!("{p}layers.0"), Some(format!("{p}layers.1"))),
                    layer(format!("{p}layers.3"), Some(format!("{p}layers.4"))),
                    layer(format!("{p}layers.6"), Some(format!("{p}layers.7"))),
                    layer(format!("{q}layers.0"), Some(format!("{q}layers.1"))),
                    layer(format!("{q}layers.3"), None),
                ]
            }
            Self::Seed => vec![
                layer("projector.0".into(), None),
                layer("projector.2".into(), None),
                layer("predictor.0".into(), None),
                layer("predictor.2".into(), None),
            ],
        }
    }

    /// The preset's architecture for the dimensions of `architecture` (which may be any
    /// head): what `architecture` must equal to be this preset's.
    fn like(self, architecture: &Architecture) -> Result<Architecture, SslError> {
        let hidden = |layers: &[Layer]| layers.first().map_or(0, |layer| layer.d_out);
        let projector_hidden = hidden(architecture.projector.layers());
        let predictor_hidden = hidden(architecture.predictor.layers());
        let (d_in, d_out) = (architecture.d_encoder(), architecture.d_out());
        match self {
            Self::Official => Architecture::official(d_in, d_out, predictor_hidden),
            Self::Lightly => Architecture::lightly(d_in, projector_hidden, d_out, predictor_hidden),
            Self::Seed => Architecture::reference(SimSiamConfig {
                d_encoder: d_in,
                d_projector: projector_hidden,
                d_predictor: predictor_hidden,
                d_out,
            }),
        }
    }

    /// The architecture of the preset, its dimensions read off the weights' shapes.
    fn architecture_from(
        self,
        checkpoint: &Checkpoint,
        keys: &[LayerKeys],
    ) -> Result<Architecture> {
        let shape = |layer: usize| -> Result<(usize, usize)> {
            let key = keys.get(layer).map_or("", |keys| keys.linear.as_str());
            checkpoint.matrix_shape(&format!("{key}.weight"))
        };
        let architecture = match self {
            Self::Official => {
                let (_, prev_dim) = shape(0)?;
                let (dim, _) = shape(2)?;
                let (pred_dim, _) = shape(3)?;
                Architecture::official(prev_dim, dim, pred_dim)
            }
            Self::Lightly => {
                let (hidden, input) = shape(0)?;
                let (output, _) = shape(2)?;
                let (pred_hidden, _) = shape(3)?;
                Architecture::lightly(input, hidden, output, pred_hidden)
            }
            Self::Seed => {
                let (d_projector, d_encoder) = shape(0)?;
                let (d_out, _) = shape(1)?;
                let (d_predictor, _) = shape(2)?;
                Architecture::reference(SimSiamConfig {
                    d_encoder,
                    d_projector,
                    d_predictor,
                    d_out,
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

/// What one parameter vector or matrix of the flat layout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Weight,
    Bias,
    Gamma,
    Beta,
    RunningMean,
    RunningVar,
}

/// One tensor of the flat layout: its key, shape and position.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    key: String,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// The flat layout of `architecture` under the PyTorch names of `keys` (layer by layer:
/// `W`, bias, `γ`, `β`, `running_mean`, `running_var`, as present), and each BatchNorm's
/// `num_batches_tracked` key by layer index.
fn slots(architecture: &Architecture, keys: &[LayerKeys]) -> (Vec<Slot>, Vec<(usize, String)>) {
    let mut slots = Vec::new();
    let mut counters = Vec::new();
    let mut at = 0;
    for (index, (layer, keys)) in architecture.layers().zip(keys).enumerate() {
        let affine = layer.batch_norm.is_some_and(|bn| bn.affine);
        let has_bn = layer.batch_norm.is_some();
        let parts = [
            (Part::Weight, true),
            (Part::Bias, layer.bias),
            (Part::Gamma, affine),
            (Part::Beta, affine),
            (Part::RunningMean, has_bn),
            (Part::RunningVar, has_bn),
        ];
        let bn = keys.batch_norm.as_deref().unwrap_or("");
        for (part, present) in parts {
            if !present {
                continue;
            }
            let (key, shape) = match part {
                Part::Weight => (
                    format!("{}.weight", keys.linear),
                    vec![layer.d_out, layer.d_in],
                ),
                Part::Bias => (format!("{}.bias", keys.linear), vec![layer.d_out]),
                Part::Gamma => (format!("{bn}.weight"), vec![layer.d_out]),
                Part::Beta => (format!("{bn}.bias"), vec![layer.d_out]),
                Part::RunningMean => (format!("{bn}.running_mean"), vec![layer.d_out]),
                Part::RunningVar => (format!("{bn}.running_var"), vec![layer.d_out]),
            };
            let len = shape.iter().product();
            slots.push(Slot {
                key,
                shape,
                start: at,
                len,
            });
            at += len;
        }
        if has_bn {
            counters.push((index, format!("{bn}.num_batches_tracked")));
        }
    }
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
        let prefix = import_prefix(checkpoint, names);
        let keys = preset.layer_keys(names, &prefix);
        let architecture = preset.architecture_from(checkpoint, &keys)?;
        let param_count = architecture
            .param_count()
            .map_err(simsiam_error("the checkpoint's dimensions"))?;
        let mut params = vec![0.0_f32; param_count];
        let (slots, counters) = slots(&architecture, &keys);
        for slot in &slots {
            let values = checkpoint.f32_tensor(&slot.key, &slot.shape)?;
            if let Some(target) = params.get_mut(slot.start..slot.start + slot.len) {
                target.copy_from_slice(&values);
            }
        }
        let mut batches_tracked = [0; MAX_LAYERS];
        for (layer, key) in counters {
            if let (Some(count), Some(slot)) =
                (checkpoint.count(&key)?, batches_tracked.get_mut(layer))
            {
                *slot = count;
            }
        }
        Ok(Self {
            architecture,
            params,
            batches_tracked,
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
        })
    }

    /// The parameter image of the head (`simsiam::image` format).
    ///
    /// # Errors
    /// [`ConvertError::Simsiam`] ([`write_image`]'s errors).
    pub fn to_image(&self) -> Result<Vec<u8>> {
        let len = image_len(&self.architecture).map_err(simsiam_error("writing the image"))?;
        let mut bytes = vec![0_u8; len];
        write_image(
            &self.architecture,
            &self.params,
            &self.batches_tracked,
            &mut bytes,
        )
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
        let keys = preset.layer_keys(names, prefix);
        let (slots, counters) = slots(&self.architecture, &keys);
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
        for (layer, key) in counters {
            let count = self.batches_tracked.get(layer).copied().unwrap_or(0);
            let value = i64::try_from(count).map_err(|_| ConvertError::CountOverflow {
                layer,
                value: count,
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
    [Preset::Official, Preset::Lightly, Preset::Seed]
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
    let _ = writeln!(out, "simsiam parameter image, format version 1");
    let _ = writeln!(
        out,
        "preset: {}",
        preset_of(architecture).unwrap_or_else(|| "none (custom head)".into())
    );
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
    let header = bytes.len() - data;
    let _ = writeln!(out, "parameters: {params}");
    let _ = writeln!(out, "data bytes: {data}");
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
