//! The parameter image: one self-describing, checksummed byte string that holds a head's
//! architecture and every parameter, made to be used in place (from flash, with no copy).
//!
//! # Format, version 1
//! All integers little-endian. An image is a 64-byte header, a table of 32-byte layer
//! records (projector first), zero padding up to `header_len` (a multiple of
//! [`IMAGE_ALIGN`] = 64), then the parameters as `f32` little-endian, nothing after.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic [`IMAGE_MAGIC`] = `"SIMSIAM\0"` |
//! | 8 | 4 | format version = [`IMAGE_VERSION`] (1) |
//! | 12 | 4 | CRC-32 (IEEE, as zlib's `crc32`) of the whole image with these 4 bytes as zero |
//! | 16 | 4 | `header_len`: bytes before the parameters, `round_up(64 + 32·layers, 64)` |
//! | 20 | 4 | element type: 1 = `f32` little-endian (the only one for now) |
//! | 24 | 4 | flags: bit 0 projection L2-normalised, bit 1 prediction L2-normalised |
//! | 28 | 2 | projector layers (1 to 4) |
//! | 30 | 2 | predictor layers (1 to 4) |
//! | 32 | 8 | parameter count (elements) |
//! | 40 | 8 | parameter bytes = 4 × count |
//! | 48 | 16 | reserved, zero |
//!
//! Each layer record (32 bytes):
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
//! The parameters are the flat layout of [`Architecture::param_count`]: per layer `W`
//! (`[d_out × d_in]` row-major), then, as present, the bias, the BatchNorm's `γ`, `β`,
//! `running_mean`, `running_var`. Unknown flag bits, non-zero reserved bytes, a header
//! field that disagrees with the layer table, a wrong length and a non-finite parameter
//! are all errors: a reader accepts exactly one encoding of each head.
//!
//! # Validation cost
//! [`Image::parse`] reads the header and the table (O(layers)) and then makes one pass
//! over the data, which computes the checksum and checks every parameter is finite. It
//! allocates nothing. The parameters can then be viewed in place
//! ([`Image::params`], when they are 4-byte aligned on a little-endian target) or copied
//! ([`Image::copy_params`], any alignment and endianness).
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

use crate::error::{ImageError, SslError, SslResult};
use crate::model::{Architecture, BatchNorm, Layer, MAX_STACK_LAYERS, Stack};

/// The first eight bytes of every image.
pub const IMAGE_MAGIC: [u8; 8] = *b"SIMSIAM\0";
/// The format version this build writes and reads.
pub const IMAGE_VERSION: u32 = 1;
/// The alignment of the parameters within the image (and what [`AlignedImage`] gives the
/// image itself), enough for any SIMD load.
pub const IMAGE_ALIGN: usize = 64;
/// Most layer records an image holds: two stacks of [`MAX_STACK_LAYERS`].
pub const MAX_IMAGE_LAYERS: usize = 2 * MAX_STACK_LAYERS;

/// The element type code of `f32` little-endian.
const ELEMENT_F32_LE: u32 = 1;
const HEADER_LEN: usize = 64;
const RECORD_LEN: usize = 32;
const CHECKSUM_AT: usize = 12;

const FLAG_NORMALIZE_PROJECTION: u32 = 1;
const FLAG_NORMALIZE_PREDICTION: u32 = 1 << 1;
const HEADER_FLAGS: u32 = FLAG_NORMALIZE_PROJECTION | FLAG_NORMALIZE_PREDICTION;

const LAYER_BIAS: u32 = 1;
const LAYER_BIAS_FROZEN: u32 = 1 << 1;
const LAYER_BATCH_NORM: u32 = 1 << 2;
const LAYER_BATCH_NORM_AFFINE: u32 = 1 << 3;
const LAYER_RELU: u32 = 1 << 4;
const LAYER_FLAGS: u32 =
    LAYER_BIAS | LAYER_BIAS_FROZEN | LAYER_BATCH_NORM | LAYER_BATCH_NORM_AFFINE | LAYER_RELU;

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

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`) table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0_u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// A running CRC-32; start from `!0`, finish with `!`.
fn crc_update(crc: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(crc, |crc, byte| {
        let index = (crc ^ u32::from(*byte)) & 0xFF;
        // `index < 256`: the table lookup cannot fail.
        CRC_TABLE.get(index as usize).copied().unwrap_or(0) ^ (crc >> 8)
    })
}

/// The CRC-32 of the header and table (`head`, with the checksum field read as zero),
/// then of `data`; also whether every `f32` of `data` is finite. One pass over the data.
fn checksum_and_finite(head: &[u8], data: &[u8]) -> (u32, bool) {
    let (before, rest) = head.split_at_checked(CHECKSUM_AT).unwrap_or((head, &[]));
    let after = rest.get(4..).unwrap_or_default();
    let mut crc = crc_update(!0, before);
    crc = crc_update(crc, &[0; 4]);
    crc = crc_update(crc, after);
    let mut finite = true;
    let (words, _) = data.as_chunks::<4>();
    for word in words {
        crc = crc_update(crc, word);
        finite &= f32::from_le_bytes(*word).is_finite();
    }
    (!crc, finite)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    match bytes.get(at..).and_then(|b| b.first_chunk::<2>()) {
        Some(b) => u16::from_le_bytes(*b),
        None => 0,
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..).and_then(|b| b.first_chunk::<4>()) {
        Some(b) => u32::from_le_bytes(*b),
        None => 0,
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..).and_then(|b| b.first_chunk::<8>()) {
        Some(b) => u64::from_le_bytes(*b),
        None => 0,
    }
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    // Element by element: `copy_from_slice` keeps a length-mismatch panic path the
    // optimiser cannot remove where `at + len` may saturate.
    let slot = bytes.get_mut(at..).unwrap_or_default();
    slot.iter_mut().zip(value).for_each(|(d, s)| *d = *s);
}

/// `round_up(64 + 32·layers, 64)`: the bytes before the data.
fn header_len_for(layers: usize) -> usize {
    let table_end = HEADER_LEN + RECORD_LEN * layers.min(MAX_IMAGE_LAYERS);
    table_end.div_ceil(IMAGE_ALIGN) * IMAGE_ALIGN
}

const fn inconsistent(field: &'static str) -> SslError {
    SslError::Image(ImageError::Inconsistent { field })
}

/// How many bytes the image of `architecture` takes: the header and table, padded to
/// [`IMAGE_ALIGN`], plus 4 bytes per parameter.
///
/// # Errors
/// The architecture's errors ([`Architecture::validate`]); `InvalidParameter` when the
/// size overflows `usize`, and `InvalidParameter { name: "encoder" }` for a network with
/// an encoder (version 1 of the image holds none; version 2 is to come).
pub fn image_len(architecture: &Architecture) -> SslResult<usize> {
    architecture.validate()?;
    if architecture.encoder.is_some() {
        return Err(SslError::InvalidParameter {
            name: "encoder",
            reason: "the parameter image (version 1) holds no encoder",
        });
    }
    let layers = architecture.layers().count();
    architecture
        .param_count()?
        .checked_mul(4)
        .and_then(|data| data.checked_add(header_len_for(layers)))
        .ok_or(SslError::InvalidParameter {
            name: "config",
            reason: "image length overflows usize",
        })
}

/// Writes the image of `architecture` with `params` (its flat layout) into the start of
/// `out`, and returns its length ([`image_len`]). `batches_tracked[i]` is layer `i`'s
/// BatchNorm `num_batches_tracked` (ignored for layers without one; missing entries
/// count as 0).
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
    let len = image_len(architecture)?;
    crate::error::check_len(architecture.param_count()?, params.len())?;
    crate::error::check_finite(params, "params")?;
    let capacity = out.len();
    let out = out.get_mut(..len).ok_or(SslError::CapacityTooSmall {
        needed: len,
        capacity,
    })?;
    out.fill(0);
    let layer_count = architecture.layers().count();
    let header_len = header_len_for(layer_count);
    let too_wide = SslError::InvalidParameter {
        name: "layers",
        reason: "a width above u32::MAX cannot be stored",
    };
    let to_u32 = |value: usize| u32::try_from(value).map_err(|_| too_wide);
    let mut flags = 0;
    if architecture.normalize_projection {
        flags |= FLAG_NORMALIZE_PROJECTION;
    }
    if architecture.normalize_prediction {
        flags |= FLAG_NORMALIZE_PREDICTION;
    }
    put(out, 0, &IMAGE_MAGIC);
    put(out, 8, &IMAGE_VERSION.to_le_bytes());
    put(out, 16, &to_u32(header_len)?.to_le_bytes());
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
    let mut offset = 0_u64;
    let mut tracked = batches_tracked.iter().copied().chain(core::iter::repeat(0));
    // Saturating arithmetic and a running record position (at most 8 records, so none
    // saturates): no overflow panic path in builds with overflow checks.
    let mut at = HEADER_LEN;
    for layer in architecture.layers() {
        let mut layer_flags = 0;
        if layer.bias {
            layer_flags |= LAYER_BIAS;
        }
        if layer.bias_frozen {
            layer_flags |= LAYER_BIAS_FROZEN;
        }
        let count = tracked.next().unwrap_or(0);
        let (eps, count) = match layer.batch_norm {
            Some(batch_norm) => {
                layer_flags |= LAYER_BATCH_NORM;
                if batch_norm.affine {
                    layer_flags |= LAYER_BATCH_NORM_AFFINE;
                }
                (batch_norm.eps, count)
            }
            None => (0.0, 0),
        };
        if layer.relu {
            layer_flags |= LAYER_RELU;
        }
        let field = |offset: usize| at.saturating_add(offset);
        put(out, at, &to_u32(layer.d_in)?.to_le_bytes());
        put(out, field(4), &to_u32(layer.d_out)?.to_le_bytes());
        put(out, field(8), &layer_flags.to_le_bytes());
        put(out, field(12), &eps.to_le_bytes());
        put(out, field(16), &count.to_le_bytes());
        put(out, field(24), &offset.to_le_bytes());
        at = at.saturating_add(RECORD_LEN);
        // `validate` proved every count fits in `usize`, so in `u64` too.
        offset = offset.saturating_add(layer.param_count().unwrap_or(0) as u64);
    }
    let (head, data) = out.split_at_mut_checked(header_len).unwrap_or_default();
    let (words, _) = data.as_chunks_mut::<4>();
    for (word, value) in words.iter_mut().zip(params) {
        *word = value.to_le_bytes();
    }
    let (crc, _) = checksum_and_finite(head, data);
    put(head, CHECKSUM_AT, &crc.to_le_bytes());
    Ok(len)
}

/// A validated parameter image: its architecture, BatchNorm counters and parameter
/// bytes, borrowed from the image.
#[derive(Clone, Copy, PartialEq)]
pub struct Image<'a> {
    architecture: Architecture,
    batches_tracked: [u64; MAX_IMAGE_LAYERS],
    data: &'a [u8],
}

impl core::fmt::Debug for Image<'_> {
    /// The architecture and sizes, not the parameters.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Image")
            .field("architecture", &self.architecture)
            .field("param_count", &self.param_count())
            .finish_non_exhaustive()
    }
}

/// Decodes one layer record.
fn read_layer(record: &[u8], index: usize) -> SslResult<(Layer, u64, u64)> {
    let bad = |reason| SslError::Image(ImageError::BadLayer { index, reason });
    let d_in = u32_at(record, 0) as usize;
    let d_out = u32_at(record, 4) as usize;
    let flags = u32_at(record, 8);
    let eps = f32::from_le_bytes(u32_at(record, 12).to_le_bytes());
    let tracked = u64_at(record, 16);
    let offset = u64_at(record, 24);
    if flags & !LAYER_FLAGS != 0 {
        return Err(bad("unknown layer flags"));
    }
    let has = |bit: u32| flags & bit != 0;
    if has(LAYER_BIAS_FROZEN) && !has(LAYER_BIAS) {
        return Err(bad("a frozen bias without a bias"));
    }
    let mut layer = Layer::linear(d_in, d_out);
    if has(LAYER_BIAS_FROZEN) {
        layer = layer.with_frozen_bias();
    } else if has(LAYER_BIAS) {
        layer = layer.with_bias();
    }
    if has(LAYER_BATCH_NORM) {
        let batch_norm = if has(LAYER_BATCH_NORM_AFFINE) {
            BatchNorm::AFFINE
        } else {
            BatchNorm::PLAIN
        };
        layer = layer.with_batch_norm(batch_norm.with_eps(eps));
    } else if has(LAYER_BATCH_NORM_AFFINE) || eps.to_bits() != 0 || tracked != 0 {
        return Err(bad("BatchNorm fields on a layer without BatchNorm"));
    }
    if has(LAYER_RELU) {
        layer = layer.with_relu();
    }
    Ok((layer, tracked, offset))
}

impl<'a> Image<'a> {
    /// Validates `bytes` as an image: header, layer table, lengths, checksum, and that
    /// every parameter is finite. O(layers) plus one pass over the data; no allocation.
    ///
    /// # Errors
    /// [`SslError::Image`] with [`ImageError::Truncated`], `BadMagic`,
    /// `UnsupportedVersion`, `UnsupportedElementType`, `BadLayer`, `Inconsistent` or
    /// `ChecksumMismatch` (checked in about that order); `NonFinite { location:
    /// "params" }` for a NaN or infinite parameter.
    pub fn parse(bytes: &'a [u8]) -> SslResult<Self> {
        Self::parse_with(bytes, true)
    }

    /// [`parse`](Self::parse) without its pass over the data: the header, the layer table
    /// and the lengths are checked as `parse` checks them (O(layers)), the checksum and
    /// the parameters' finiteness are not. For bytes `parse` accepted before and that
    /// have not changed since (the C API validates an image once, at
    /// `simsiam_model_init_image`, then rebuilds the head at every call). Changed bytes
    /// are never unsafe: a malformed header or table is still an error, changed
    /// parameters give unspecified values or a `NonFinite` output error.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), except `ChecksumMismatch` and `NonFinite`.
    pub fn parse_unverified(bytes: &'a [u8]) -> SslResult<Self> {
        Self::parse_with(bytes, false)
    }

    fn parse_with(bytes: &'a [u8], verify: bool) -> SslResult<Self> {
        let truncated = |needed| {
            SslError::Image(ImageError::Truncated {
                needed,
                got: bytes.len(),
            })
        };
        let header = bytes.get(..HEADER_LEN).ok_or(truncated(HEADER_LEN))?;
        if header.first_chunk::<8>() != Some(&IMAGE_MAGIC) {
            return Err(ImageError::BadMagic.into());
        }
        let version = u32_at(header, 8);
        if version != IMAGE_VERSION {
            return Err(ImageError::UnsupportedVersion { version }.into());
        }
        let element = u32_at(header, 20);
        if element != ELEMENT_F32_LE {
            return Err(ImageError::UnsupportedElementType { code: element }.into());
        }
        let flags = u32_at(header, 24);
        if flags & !HEADER_FLAGS != 0 {
            return Err(inconsistent("flags"));
        }
        if header.get(48..).is_some_and(|r| r.iter().any(|b| *b != 0)) {
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
        let header_len = header_len_for(layer_count);
        if u32_at(header, 16) as usize != header_len {
            return Err(inconsistent("header_len"));
        }
        let head = bytes.get(..header_len).ok_or(truncated(header_len))?;
        let table = head.get(HEADER_LEN..).unwrap_or_default();
        if table
            .get(RECORD_LEN.saturating_mul(layer_count)..)
            .is_some_and(|padding| padding.iter().any(|b| *b != 0))
        {
            return Err(inconsistent("padding"));
        }

        let mut layers = [Layer::linear(0, 0); MAX_IMAGE_LAYERS];
        let mut batches_tracked = [0_u64; MAX_IMAGE_LAYERS];
        let mut offsets = [0_u64; MAX_IMAGE_LAYERS];
        let records = table.as_chunks::<RECORD_LEN>().0.iter().take(layer_count);
        let slots = layers
            .iter_mut()
            .zip(batches_tracked.iter_mut())
            .zip(offsets.iter_mut());
        // A counter rather than `enumerate`, whose `+= 1` keeps an overflow panic path
        // in builds with overflow checks.
        let mut index = 0_usize;
        for (record, ((layer, tracked), stored_offset)) in records.zip(slots) {
            let (decoded, count, offset) = read_layer(record, index)?;
            (*layer, *tracked, *stored_offset) = (decoded, count, offset);
            index = index.saturating_add(1);
        }
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
            let reason = match error {
                SslError::InvalidParameter { reason, .. } => reason,
                _ => "invalid layer",
            };
            return Err(ImageError::BadLayer { index, reason }.into());
        }
        // Each layer starts where the ones before it end (all sizes fit: validated).
        let mut expected_offset = 0_u64;
        for (layer, offset) in architecture.layers().zip(offsets) {
            if offset != expected_offset {
                return Err(inconsistent("layer offset"));
            }
            expected_offset =
                expected_offset.saturating_add(layer.param_count().unwrap_or(0) as u64);
        }

        let param_count = architecture.param_count()?;
        if u64_at(header, 32) != param_count as u64 {
            return Err(inconsistent("parameter count"));
        }
        let data_len = param_count
            .checked_mul(4)
            .ok_or(inconsistent("parameter bytes"))?;
        if u64_at(header, 40) != data_len as u64 {
            return Err(inconsistent("parameter bytes"));
        }
        let total = header_len
            .checked_add(data_len)
            .ok_or(inconsistent("parameter bytes"))?;
        let data = bytes.get(header_len..total).ok_or(truncated(total))?;
        if bytes.len() != total {
            return Err(inconsistent("length (trailing bytes)"));
        }
        if verify {
            let (computed, finite) = checksum_and_finite(head, data);
            let stored = u32_at(header, CHECKSUM_AT);
            if stored != computed {
                return Err(ImageError::ChecksumMismatch { stored, computed }.into());
            }
            if !finite {
                return Err(SslError::NonFinite { location: "params" });
            }
        }
        Ok(Self {
            architecture,
            batches_tracked,
            data,
        })
    }

    /// The head the image describes.
    #[must_use]
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// Layer `i`'s BatchNorm `num_batches_tracked` (0 for layers without one), projector
    /// first.
    #[must_use]
    pub fn batches_tracked(&self) -> &[u64; MAX_IMAGE_LAYERS] {
        &self.batches_tracked
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
        if cfg!(target_endian = "big") {
            return Err(ImageError::Misaligned.into());
        }
        bytemuck::try_cast_slice(self.data).map_err(|_| ImageError::Misaligned.into())
    }

    /// Copies the parameters into `out` (any alignment, any endianness).
    ///
    /// # Errors
    /// `DimensionMismatch` unless `out.len()` is [`param_count`](Self::param_count).
    pub fn copy_params(&self, out: &mut [f32]) -> SslResult<()> {
        crate::error::check_len(self.param_count(), out.len())?;
        let (words, _) = self.data.as_chunks::<4>();
        for (value, word) in out.iter_mut().zip(words) {
            *value = f32::from_le_bytes(*word);
        }
        Ok(())
    }
}
