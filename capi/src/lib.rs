//! C ABI for the `simsiam` head: a `#![no_std]` static library and the header
//! `include/simsiam.h` that cbindgen generates from this file.
//!
//! Every function returns a `SimsiamStatus` (`int32_t`, `SIMSIAM_STATUS_OK == 0`) and
//! writes its results into buffers the caller owns: nothing allocates, nothing panics.
//! Pointers are checked for NULL, alignment and overlap, lengths are passed beside every
//! pointer and checked against the head, so every bad input is a status code.
//!
//! A `SimsiamModel` is a small struct the caller owns (on its stack, in a `static`) that
//! borrows, never copies, either the reference head's flat parameters
//! (`simsiam_model_init`: a `SimsiamConfig` and a float pointer) or a whole parameter
//! image (`simsiam_model_init_image`: any architecture the image format describes, e.g.
//! the official head with BatchNorm and a 3-layer projector). Both may sit in flash. The
//! init function validates once; each call rebuilds the head from the model in
//! O(layers).
//!
//! ABI versioning: `SimsiamModel` starts with `struct_size`, which the caller sets to
//! `sizeof(SimsiamModel)` before an init function; every function checks it and refuses
//! a size it does not know with `SIMSIAM_STATUS_UNSUPPORTED_VERSION` (before reading any
//! other field). `SimsiamConfig`, passed by value, is frozen: a by-value struct cannot
//! carry its own version (the callee reads what its own declaration says), so a change
//! to it would be a new type and new functions. `simsiam_abi_version()` returns
//! `SIMSIAM_ABI_VERSION` of the library, to compare with the header's.
//!
//! This crate is the only place in the project with `unsafe`: turning the caller's
//! pointers into slices. The kernel crate keeps `#![forbid(unsafe_code)]`.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

// On a hosted target the static library gets its panic handler (never reached) from std;
// on bare metal it brings its own, which `--gc-sections` drops when nothing can panic.
#[cfg(not(target_os = "none"))]
extern crate std;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

mod ssl;
pub use ssl::*;

use core::ffi::c_char;
use core::mem::size_of;

use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::model::Architecture;
use simsiam::{ImageError, LcgRng, SimSiamConfig, SimSiamHead, SslError, init_params};

/// The version of the C ABI: the layout of `SimsiamModel`, the status codes and the
/// functions' signatures. The header's value is what the program was compiled against;
/// `simsiam_abi_version()` gives the library's. Version 2 added `struct_size`, the model
/// kinds (parameter images), the `_ws` calls and two statuses.
pub const SIMSIAM_ABI_VERSION: u32 = 2;

/// What a call did: `SIMSIAM_STATUS_OK` (0) or why it refused.
///
/// The first five error codes are the `simsiam::SslError` variants; the others are the
/// C boundary's own checks and the parameter image's errors. `simsiam_status_message`
/// gives a static description.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimsiamStatus {
    /// Success.
    Ok = 0,
    /// A buffer length does not match the head (`SslError::DimensionMismatch`), or a
    /// length is too large for any buffer (above `PTRDIFF_MAX` bytes).
    DimensionMismatch = 1,
    /// A dimension is zero, the parameter count overflows, or the identity predictor
    /// does not fit `d_predictor` (`SslError::InvalidParameter`).
    InvalidParameter = 2,
    /// An input, a parameter or an output is NaN or infinite (`SslError::NonFinite`).
    NonFinite = 3,
    /// A workspace is too small (`SslError::CapacityTooSmall`).
    CapacityTooSmall = 4,
    /// An allocation failed (`SslError::OutOfMemory`; this API never allocates).
    OutOfMemory = 5,
    /// A required pointer is NULL.
    NullPointer = 6,
    /// A pointer is not aligned for its type (`float` needs 4 bytes, a parameter image
    /// too: its parameters are viewed in place).
    Misaligned = 7,
    /// An output buffer overlaps an input buffer, the parameters or the image.
    Overlap = 8,
    /// `SimsiamModel::backend` is neither `SIMSIAM_BACKEND_SIMD` nor `SIMSIAM_BACKEND_SCALAR`.
    InvalidBackend = 9,
    /// An error this version of the C API does not know (a newer `SslError` variant).
    Unknown = 10,
    /// `SimsiamModel::struct_size` is not `sizeof(SimsiamModel)` of this library, its
    /// `kind` is none this library knows (or the model was never initialised), or a
    /// parameter image has a format version this library cannot read.
    UnsupportedVersion = 11,
    /// The bytes are not a valid parameter image: truncated, bad magic, checksum
    /// mismatch, an impossible layer table, a header that disagrees with it
    /// (`SslError::Image`).
    BadImage = 12,
}

/// Which kernel twin a `SimsiamModel` runs on (the value of `SimsiamModel::backend`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimsiamBackend {
    /// The `wide` SIMD lanes (the default set by the init functions).
    Simd = 0,
    /// The scalar twin: the reference crate's loops, summing left to right.
    Scalar = 1,
}

/// What a `SimsiamModel` borrows (the value of `SimsiamModel::kind`, set by its init
/// function). 0 is no kind: a zeroed model is refused with `UNSUPPORTED_VERSION`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimsiamModelKind {
    /// The reference head of `config` over the flat `params` (`simsiam_model_init`).
    Reference = 1,
    /// The head a parameter image describes (`simsiam_model_init_image`).
    Image = 2,
}

/// The reference head's dimensions (`simsiam::SimSiamConfig`).
///
/// Frozen: passed by value, it cannot carry a version, so it never changes (other heads
/// are described by parameter images).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimsiamConfig {
    /// Backbone output dimension (input of the projector).
    pub d_encoder: usize,
    /// Projector hidden dimension.
    pub d_projector: usize,
    /// Predictor hidden dimension.
    pub d_predictor: usize,
    /// Projector output dimension = predictor input and output dimension.
    pub d_out: usize,
}

impl From<SimsiamConfig> for SimSiamConfig {
    fn from(c: SimsiamConfig) -> Self {
        Self {
            d_encoder: c.d_encoder,
            d_projector: c.d_projector,
            d_predictor: c.d_predictor,
            d_out: c.d_out,
        }
    }
}

/// The all-zero config an image model records (it has no reference config).
const NO_CONFIG: SimsiamConfig = SimsiamConfig {
    d_encoder: 0,
    d_projector: 0,
    d_predictor: 0,
    d_out: 0,
};

/// A head over memory the caller owns, owned by the caller: plain data, copying the
/// struct is fine.
///
/// Set `struct_size = sizeof(SimsiamModel)`, then fill the rest with an init function:
/// `simsiam_model_init` (the reference head: `config` and the flat `params`) or
/// `simsiam_model_init_image` (a parameter image: `image`). The init function writes
/// every field (`struct_size` unchanged) and sets `backend` to `SIMSIAM_BACKEND_SIMD`;
/// `backend` is the one field to change afterwards. Every function first checks
/// `struct_size` (and refuses any other value with `UNSUPPORTED_VERSION`, reading no
/// other field), so a program built against another version of this header fails
/// cleanly instead of misreading the struct. A model's memory (parameters or image) is
/// borrowed, not copied: it must stay valid and unchanged while the model is used.
///
/// The init function validates once (every parameter finite; an image's checksum and
/// layer table); later calls check only the shapes, in O(layers), so after changing the
/// memory call the init function again (a change is never unsafe: it gives a status or
/// a meaningless value).
///
/// Which fields the calls read: `struct_size`, `kind`, `backend`, and for
/// `SIMSIAM_MODEL_KIND_REFERENCE` `config`, `params`, `params_len`; for
/// `SIMSIAM_MODEL_KIND_IMAGE` `image`, `image_len` (there `config` is all zero and
/// `params`/`params_len` show where the image's parameters are, for information).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SimsiamModel {
    /// `sizeof(SimsiamModel)`: set by the caller before the init function.
    pub struct_size: usize,
    /// A `SimsiamModelKind` value, set by the init function.
    pub kind: u32,
    /// A `SimsiamBackend` value; the init functions set `SIMSIAM_BACKEND_SIMD`.
    pub backend: u32,
    /// The reference head's dimensions (all zero for an image model).
    pub config: SimsiamConfig,
    /// The flat parameters: the caller's floats (reference model; `simsiam_param_count`
    /// of them), or the image's, inside `image` (image model).
    pub params: *const f32,
    /// The number of floats at `params`.
    pub params_len: usize,
    /// The caller's parameter image (image model), else NULL.
    pub image: *const u8,
    /// The image's length in bytes (image model), else 0.
    pub image_len: usize,
}

fn status_of(error: SslError) -> SimsiamStatus {
    match error {
        SslError::DimensionMismatch { .. } => SimsiamStatus::DimensionMismatch,
        SslError::InvalidParameter { .. } => SimsiamStatus::InvalidParameter,
        SslError::NonFinite { .. } => SimsiamStatus::NonFinite,
        SslError::CapacityTooSmall { .. } => SimsiamStatus::CapacityTooSmall,
        SslError::OutOfMemory { .. } => SimsiamStatus::OutOfMemory,
        SslError::Image(ImageError::UnsupportedVersion { .. }) => SimsiamStatus::UnsupportedVersion,
        SslError::Image(ImageError::Misaligned) => SimsiamStatus::Misaligned,
        SslError::Image(_) => SimsiamStatus::BadImage,
        _ => SimsiamStatus::Unknown,
    }
}

fn status(result: Result<(), SimsiamStatus>) -> SimsiamStatus {
    match result {
        Ok(()) => SimsiamStatus::Ok,
        Err(status) => status,
    }
}

impl From<SslError> for SimsiamStatus {
    fn from(error: SslError) -> Self {
        status_of(error)
    }
}

/// Largest `len` for which `len` floats fit in `isize::MAX` bytes (`from_raw_parts`'s rule).
const MAX_FLOATS: usize = isize::MAX as usize / size_of::<f32>();

/// Checks a pointer/length pair before it becomes a slice.
fn check_raw(ptr: *const f32, len: usize) -> Result<(), SimsiamStatus> {
    if ptr.is_null() {
        Err(SimsiamStatus::NullPointer)
    } else if !ptr.is_aligned() {
        Err(SimsiamStatus::Misaligned)
    } else if len > MAX_FLOATS {
        Err(SimsiamStatus::DimensionMismatch)
    } else {
        Ok(())
    }
}

/// Checks an image pointer/length pair: non-NULL, 4-byte aligned (the parameters, at a
/// multiple of 64 bytes from the start, are viewed in place as floats), at most
/// `isize::MAX` bytes.
fn check_image(ptr: *const u8, len: usize) -> Result<(), SimsiamStatus> {
    if ptr.is_null() {
        Err(SimsiamStatus::NullPointer)
    } else if !ptr.cast::<f32>().is_aligned() {
        Err(SimsiamStatus::Misaligned)
    } else if len > isize::MAX as usize {
        Err(SimsiamStatus::DimensionMismatch)
    } else {
        Ok(())
    }
}

/// `len` floats at `ptr` as a slice.
///
/// # Safety
/// `ptr` must be valid for reads of `len` floats for `'a`, and not written meanwhile.
unsafe fn input<'a>(ptr: *const f32, len: usize) -> Result<&'a [f32], SimsiamStatus> {
    check_raw(ptr, len)?;
    // SAFETY: non-NULL, aligned and at most isize::MAX bytes (checked above); valid and
    // unaliased by writes for 'a (the caller's contract).
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// `len` bytes of a parameter image at `ptr` as a slice.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes for `'a`, and not written meanwhile.
unsafe fn image_bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], SimsiamStatus> {
    check_image(ptr, len)?;
    // SAFETY: non-NULL and at most isize::MAX bytes (checked above); valid and unaliased
    // by writes for 'a (the caller's contract).
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// `len` floats at `ptr` as a mutable slice.
///
/// # Safety
/// `ptr` must be valid for reads and writes of `len` floats for `'a` and not accessed
/// through any other pointer meanwhile (overlap with this call's inputs is checked by the
/// callers of this function, not here).
unsafe fn output<'a>(ptr: *mut f32, len: usize) -> Result<&'a mut [f32], SimsiamStatus> {
    check_raw(ptr, len)?;
    // SAFETY: as in `input`, plus exclusive access for 'a (the caller's contract and the
    // overlap checks of the calling function).
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Checks the workspace of a `_ws` call: NULL is allowed with length 0.
fn check_workspace(ptr: *const f32, len: usize) -> Result<(), SimsiamStatus> {
    if ptr.is_null() && len == 0 {
        Ok(())
    } else {
        check_raw(ptr, len)
    }
}

/// The workspace of a `_ws` call as a mutable slice (empty for NULL with length 0).
///
/// # Safety
/// As `output`, unless `ptr` is NULL and `len` is 0.
unsafe fn workspace<'a>(ptr: *mut f32, len: usize) -> Result<&'a mut [f32], SimsiamStatus> {
    if ptr.is_null() && len == 0 {
        Ok(&mut [])
    } else {
        // SAFETY: forwarded from this function's contract.
        unsafe { output(ptr, len) }
    }
}

/// A byte range of the caller's memory, for the overlap checks (lengths already checked
/// to fit in `isize`).
#[derive(Clone, Copy)]
struct Region {
    start: usize,
    len: usize,
}

impl Region {
    fn floats(ptr: *const f32, len: usize) -> Self {
        Self {
            start: ptr as usize,
            len: len.saturating_mul(size_of::<f32>()),
        }
    }

    /// Whether the two ranges intersect (an empty range meets nothing).
    fn meets(self, other: Self) -> bool {
        let end = self.start.saturating_add(self.len);
        let other_end = other.start.saturating_add(other.len);
        self.len != 0 && other.len != 0 && self.start < other_end && other.start < end
    }
}

/// `Err(Overlap)` when the output range meets any of the inputs.
fn check_disjoint(out: Region, inputs: &[Region]) -> Result<(), SimsiamStatus> {
    if inputs.iter().any(|&input| out.meets(input)) {
        Err(SimsiamStatus::Overlap)
    } else {
        Ok(())
    }
}

/// Writes `value` through `out` after a NULL/alignment check.
///
/// # Safety
/// `out` must be NULL or valid for a write of one `T`.
unsafe fn write_out<T>(out: *mut T, value: T) -> Result<(), SimsiamStatus> {
    if out.is_null() {
        return Err(SimsiamStatus::NullPointer);
    }
    if !out.is_aligned() {
        return Err(SimsiamStatus::Misaligned);
    }
    // SAFETY: non-NULL and aligned (checked), valid for writes (the caller's contract).
    unsafe { out.write(value) };
    Ok(())
}

/// Checks that `model` is non-NULL, aligned and that its `struct_size` is this
/// library's `sizeof(SimsiamModel)`, reading only that first field.
///
/// # Safety
/// `model` must be NULL or point to at least a readable, initialised `size_t` (the
/// `struct_size` of a model of any version).
unsafe fn check_model(model: *const SimsiamModel) -> Result<(), SimsiamStatus> {
    if model.is_null() {
        return Err(SimsiamStatus::NullPointer);
    }
    if !model.is_aligned() {
        return Err(SimsiamStatus::Misaligned);
    }
    // SAFETY: non-NULL and aligned for `SimsiamModel`, so for its first field, a `usize`
    // at offset 0 (`repr(C)`); readable (the caller's contract).
    let size = unsafe { model.cast::<usize>().read() };
    if size == size_of::<SimsiamModel>() {
        Ok(())
    } else {
        Err(SimsiamStatus::UnsupportedVersion)
    }
}

/// Reads the model behind `model` after a NULL/alignment/`struct_size` check.
///
/// # Safety
/// `model` must be NULL or point to a readable `struct_size`, and to a readable
/// `SimsiamModel` when that is `sizeof(SimsiamModel)`.
unsafe fn read_model(model: *const SimsiamModel) -> Result<SimsiamModel, SimsiamStatus> {
    // SAFETY: forwarded from this function's contract.
    unsafe { check_model(model) }?;
    // SAFETY: non-NULL, aligned, of this library's size (checked), readable (the
    // caller's contract). Every bit pattern is a valid `SimsiamModel` (integers and raw
    // pointers).
    Ok(unsafe { model.read() })
}

/// The kind a model's raw `kind` field names.
fn kind_of(raw: u32) -> Result<SimsiamModelKind, SimsiamStatus> {
    if raw == SimsiamModelKind::Reference as u32 {
        Ok(SimsiamModelKind::Reference)
    } else if raw == SimsiamModelKind::Image as u32 {
        Ok(SimsiamModelKind::Image)
    } else {
        Err(SimsiamStatus::UnsupportedVersion)
    }
}

/// The memory the model borrows (its parameters or its image), after checking its
/// pointer and length.
fn held(model: &SimsiamModel) -> Result<Region, SimsiamStatus> {
    match kind_of(model.kind)? {
        SimsiamModelKind::Reference => {
            check_raw(model.params, model.params_len)?;
            Ok(Region::floats(model.params, model.params_len))
        }
        SimsiamModelKind::Image => {
            check_image(model.image, model.image_len)?;
            Ok(Region {
                start: model.image as usize,
                len: model.image_len,
            })
        }
    }
}

/// The model as a head. Shapes are checked (O(layers)); finiteness (and an image's
/// checksum) was checked once by the init function.
///
/// # Safety
/// The model's parameters (`params`/`params_len`) or image (`image`/`image_len`) must
/// be valid for reads and not written for `'a`.
unsafe fn head<'a>(model: &SimsiamModel) -> Result<SimSiamHead<&'a [f32]>, SimsiamStatus> {
    match kind_of(model.kind)? {
        SimsiamModelKind::Reference => {
            // SAFETY: forwarded from this function's contract.
            let params = unsafe { input(model.params, model.params_len) }?;
            let architecture = Architecture::reference(model.config.into())?;
            Ok(SimSiamHead::from_checked_params(architecture, params)?)
        }
        // SAFETY: forwarded from this function's contract.
        SimsiamModelKind::Image => unsafe { image_head(model.image, model.image_len) },
    }
}

/// The head of an image model. Out of line, so that its frame (the parser's) is not
/// part of the reference model's calls.
///
/// # Safety
/// As `image_bytes`.
#[inline(never)]
unsafe fn image_head<'a>(
    image: *const u8,
    image_len: usize,
) -> Result<SimSiamHead<&'a [f32]>, SimsiamStatus> {
    // SAFETY: forwarded from this function's contract.
    let bytes = unsafe { image_bytes(image, image_len) }?;
    // `simsiam_model_init_image` validated the whole image (checksum, finiteness); per
    // call only the header and layer table are read again, O(layers). Changed bytes are
    // never unsafe: a broken header is an error, changed parameters give other values.
    Ok(SimSiamHead::from_checked_image(bytes)?)
}

/// The backend a model's raw `backend` field names.
fn backend_of(raw: u32) -> Result<SimsiamBackend, SimsiamStatus> {
    if raw == SimsiamBackend::Simd as u32 {
        Ok(SimsiamBackend::Simd)
    } else if raw == SimsiamBackend::Scalar as u32 {
        Ok(SimsiamBackend::Scalar)
    } else {
        Err(SimsiamStatus::InvalidBackend)
    }
}

/// `SIMSIAM_ABI_VERSION` of the library (compare it with the header's).
#[unsafe(no_mangle)]
pub extern "C" fn simsiam_abi_version() -> u32 {
    SIMSIAM_ABI_VERSION
}

/// The reference's default configuration, `{ 64, 128, 64, 32 }`.
#[unsafe(no_mangle)]
pub extern "C" fn simsiam_config_default() -> SimsiamConfig {
    let c = SimSiamConfig::DEFAULT;
    SimsiamConfig {
        d_encoder: c.d_encoder,
        d_projector: c.d_projector,
        d_predictor: c.d_predictor,
        d_out: c.d_out,
    }
}

/// Writes to `*count` how many floats the parameters of `config` hold (16 640 for the
/// default), laid out `proj_w1, proj_b1, proj_w2, proj_b2, pred_w1, pred_b1, pred_w2,
/// pred_b2`, each weight matrix row-major `[out × in]`.
///
/// Errors: `INVALID_PARAMETER` for a zero dimension or an overflowing count,
/// `NULL_POINTER` / `MISALIGNED` for `count`.
///
/// # Safety
/// `count` must be NULL or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_param_count(
    config: SimsiamConfig,
    count: *mut usize,
) -> SimsiamStatus {
    status(
        SimSiamConfig::from(config)
            .param_count()
            .map_err(SimsiamStatus::from)
            .and_then(
                // SAFETY: forwarded from this function's contract.
                |n| unsafe { write_out(count, n) },
            ),
    )
}

/// Writes to `*len` how many floats the `workspace` of `simsiam_loss` needs for the
/// reference head of `config`: `4 * d_out` (for any model: `simsiam_workspace_len`).
///
/// Errors: as `simsiam_param_count`.
///
/// # Safety
/// `len` must be NULL or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_loss_workspace_len(
    config: SimsiamConfig,
    len: *mut usize,
) -> SimsiamStatus {
    status(
        SimSiamConfig::from(config)
            .loss_workspace_len()
            .map_err(SimsiamStatus::from)
            .and_then(
                // SAFETY: forwarded from this function's contract.
                |n| unsafe { write_out(len, n) },
            ),
    )
}

/// Writes to `*len` how many floats the `workspace` of `simsiam_loss_batch` needs for
/// `n` pairs on the reference head of `config`: exactly `4 * d_out * min(n, 8)` (both
/// projections and both predictions of the up to 8 pairs that go through the weights
/// together) plus, for `n >= 2`, the lane blocks of a group:
/// `16 * (pack + hidden + rows) + 15` with `pack = min(max(d_encoder, d_out), P)`,
/// `hidden = min(max(d_projector, d_predictor), P)`, `rows = min(d_out, 64)`, `P = 128`
/// when both maxima are at most 128, else 512 (3 599 floats, 14 KiB, for the default
/// config). 0 for `n == 0`, the same as `simsiam_loss_workspace_len` for `n == 1`.
/// For any model: `simsiam_workspace_len`.
///
/// Errors: as `simsiam_param_count` (`INVALID_PARAMETER` also when the length overflows).
///
/// # Safety
/// `len` must be NULL or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_batch_loss_workspace_len(
    config: SimsiamConfig,
    n: usize,
    len: *mut usize,
) -> SimsiamStatus {
    status(
        SimSiamConfig::from(config)
            .batch_loss_workspace_len(n)
            .map_err(SimsiamStatus::from)
            .and_then(
                // SAFETY: forwarded from this function's contract.
                |count| unsafe { write_out(len, count) },
            ),
    )
}

/// Writes to `*len` how many floats of `workspace` suffice for every call on `model`
/// with up to `n` inputs or pairs (`n = 1` for `simsiam_loss`, `simsiam_project_ws`,
/// `simsiam_predict_ws`; the row or pair count for the batch calls):
/// `min(n, 8) * (4 * d_out + 2 * m)`, where `m` is the widest vector a stack keeps
/// between its layers (0 for stacks of up to two layers, as the reference head's: then
/// this is `simsiam_batch_loss_workspace_len`; the first hidden width for three layers,
/// as the official head's projector), plus for `n >= 2` the lane blocks of the batch
/// calls (`Architecture::lanes_len`: at most `16 * 4352 + 15` floats, 272 KiB, for wide
/// heads such as the paper's). 0 for `n == 0`.
///
/// Errors: `INVALID_PARAMETER` when the length overflows; the model's errors (as
/// `simsiam_project`); `NULL_POINTER` / `MISALIGNED` for `len` (then nothing is
/// written).
///
/// # Safety
/// `model` as in `simsiam_project`; `len` must be NULL or valid for writing one
/// `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_workspace_len(
    model: *const SimsiamModel,
    n: usize,
    len: *mut usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let model = unsafe { read_model(model) }?;
        held(&model)?;
        let head = unsafe { head(&model) }?;
        let count = head.architecture().workspace_len(n)?;
        unsafe { write_out(len, count) }
    })())
}

/// Writes the model's input width (the encoder output, `z_len` of `simsiam_project`)
/// to `*d_encoder` and its projection width (`out_len` of `simsiam_project`, `p_len`
/// and `out_len` of `simsiam_predict`) to `*d_out`: the image's for an image model.
///
/// Errors: the model's errors (as `simsiam_project`); `NULL_POINTER` / `MISALIGNED`
/// for `d_encoder` or `d_out` (then nothing is written).
///
/// # Safety
/// `model` as in `simsiam_project`; `d_encoder` and `d_out` must be NULL or valid for
/// writing one `size_t` each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_model_dims(
    model: *const SimsiamModel,
    d_encoder: *mut usize,
    d_out: *mut usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let model = unsafe { read_model(model) }?;
        held(&model)?;
        let head = unsafe { head(&model) }?;
        for out in [d_encoder, d_out] {
            if out.is_null() {
                return Err(SimsiamStatus::NullPointer);
            }
            if !out.is_aligned() {
                return Err(SimsiamStatus::Misaligned);
            }
        }
        unsafe { write_out(d_encoder, head.d_encoder()) }?;
        unsafe { write_out(d_out, head.d_out()) }
    })())
}

/// Fills `params` with the Kaiming-normal weights and zero biases of `config` drawn from
/// the generator seeded with `seed`: the same floats as `simsiam::init_params` (and as
/// `oxicuda-ssl`'s `SimSiam::new`) with that seed.
///
/// Errors: `INVALID_PARAMETER` for a bad config, `DIMENSION_MISMATCH` unless
/// `params_len` is the parameter count, `NULL_POINTER` / `MISALIGNED` for `params`.
///
/// # Safety
/// `params` must be NULL or valid for writing `params_len` floats, and not accessed
/// otherwise during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_init_params(
    config: SimsiamConfig,
    seed: u64,
    params: *mut f32,
    params_len: usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY: forwarded from this function's contract.
        let params = unsafe { output(params, params_len) }?;
        Ok(init_params(&config.into(), &mut LcgRng::new(seed), params)?)
    })())
}

/// Fills `*model` with the reference head of `config` over the caller's `params` (not
/// copied) on the SIMD backend, after checking the config, the length and that every
/// parameter is finite. `model->struct_size` must be `sizeof(SimsiamModel)` (set it
/// first). On error `*model` is left untouched.
///
/// Errors: `UNSUPPORTED_VERSION` (`struct_size`), `INVALID_PARAMETER`,
/// `DIMENSION_MISMATCH` (length), `NON_FINITE` (a NaN or infinite parameter),
/// `NULL_POINTER` / `MISALIGNED` for `model` or `params`.
///
/// # Safety
/// `model` must be NULL or valid for reading its `struct_size` (initialised) and, when
/// that is `sizeof(SimsiamModel)`, for writing a `SimsiamModel`; `params` must be NULL or
/// valid for reading `params_len` floats, and stay valid and unchanged for as long as the
/// model is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_model_init(
    model: *mut SimsiamModel,
    config: SimsiamConfig,
    params: *const f32,
    params_len: usize,
) -> SimsiamStatus {
    let new = SimsiamModel {
        struct_size: size_of::<SimsiamModel>(),
        kind: SimsiamModelKind::Reference as u32,
        backend: SimsiamBackend::Simd as u32,
        config,
        params,
        params_len,
        image: core::ptr::null(),
        image_len: 0,
    };
    status((|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        unsafe { check_model(model) }?;
        let params = unsafe { input(params, params_len) }?;
        SimSiamHead::from_params(config.into(), params)?;
        unsafe { write_out(model, new) }
    })())
}

/// Fills `*model` with the head the parameter image `image` describes (any
/// architecture the format holds: the reference head, the official head with BatchNorm
/// and a 3-layer projector, lightly's) on the SIMD backend. The image is validated
/// (magic, version, layer table, lengths, CRC-32, every parameter finite: one pass over
/// it) and borrowed, not copied: its parameters are used in place, so it must stay valid
/// and unchanged for as long as the model is used (e.g. a `const` array in flash).
/// `model->struct_size` must be `sizeof(SimsiamModel)` (set it first). On error `*model`
/// is left untouched.
///
/// `image` must be 4-byte aligned (the parameters are `float`s at a multiple of 64 bytes
/// from its start; `__attribute__((aligned(64)))` keeps SIMD loads on whole lines).
/// Heads with a 3-layer stack need a workspace for `simsiam_project_ws` /
/// `simsiam_predict_ws` (`simsiam_workspace_len`); `simsiam_model_dims` gives the
/// widths.
///
/// Errors: `UNSUPPORTED_VERSION` (`struct_size`, or an image format version this
/// library cannot read), `BAD_IMAGE` (any other malformed image: truncated, bad magic,
/// checksum mismatch, bad layer table, trailing bytes), `NON_FINITE` (a NaN or infinite
/// parameter under a valid checksum), `NULL_POINTER` / `MISALIGNED` for `model` or
/// `image`, `DIMENSION_MISMATCH` for an `image_len` above `PTRDIFF_MAX`.
///
/// # Safety
/// `model` as in `simsiam_model_init`; `image` must be NULL or valid for reading
/// `image_len` bytes, and stay valid and unchanged for as long as the model is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_model_init_image(
    model: *mut SimsiamModel,
    image: *const u8,
    image_len: usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        unsafe { check_model(model) }?;
        let bytes = unsafe { image_bytes(image, image_len) }?;
        let head = SimSiamHead::from_image(bytes)?;
        let params = head.params();
        let new = SimsiamModel {
            struct_size: size_of::<SimsiamModel>(),
            kind: SimsiamModelKind::Image as u32,
            backend: SimsiamBackend::Simd as u32,
            config: NO_CONFIG,
            params: params.as_ptr(),
            params_len: params.len(),
            image,
            image_len,
        };
        unsafe { write_out(model, new) }
    })())
}

/// Projects an encoder output: `out` = the projector's output (for the reference head
/// `L2(W2 · ReLU(W1 · z + b1) + b2)`).
///
/// Needs no workspace, so it runs heads whose stacks have at most two layers (the
/// reference head, from its parameters or an image); for others (the official head)
/// it gives `CAPACITY_TOO_SMALL`: use `simsiam_project_ws`.
///
/// Memory: no heap. Stack: one block of 256 hidden units (1 KiB; the hidden layer is
/// made 256 units at a time, whatever `d_projector`) plus the call frames: on a
/// Cortex-M4F (`thumbv7em`, `opt-level = "s"`, default config) under 6 KiB in all
/// (CI measures it on QEMU: about 3.7 KiB on either backend).
///
/// Errors: `DIMENSION_MISMATCH` unless `z_len == d_encoder` and `out_len == d_out`;
/// `NON_FINITE` for a NaN/infinite input or an overflowing result; `NULL_POINTER`,
/// `MISALIGNED`, `OVERLAP` (`out` meets `z` or the parameters or image),
/// `INVALID_BACKEND`, `UNSUPPORTED_VERSION` (`struct_size`, `kind`), and the model's
/// own errors if it was changed after its init function (e.g. `BAD_IMAGE`). On error
/// `out` is untouched, except for `NON_FINITE` from an overflowing result.
///
/// # Safety
/// `model` must be NULL or point to a readable `struct_size` and, when that is
/// `sizeof(SimsiamModel)`, to a readable `SimsiamModel` whose parameters or image are
/// valid for reads and unchanged during the call; `z` must be NULL or valid for reading
/// `z_len` floats; `out` must be NULL or valid for writing `out_len` floats, and not
/// accessed otherwise during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_project(
    model: *const SimsiamModel,
    z: *const f32,
    z_len: usize,
    out: *mut f32,
    out_len: usize,
) -> SimsiamStatus {
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, z, z_len, out, out_len, NO_WORKSPACE, Mlp::Projector) })
}

/// `simsiam_project` with a workspace, for any head: `workspace` holds the projector's
/// intermediate vector (the first hidden width for a 3-layer projector, as the official
/// head's); `simsiam_workspace_len(model, 1)` floats always suffice. It may be NULL
/// when `workspace_len` is 0 (enough for the reference head). Its contents after the
/// call are unspecified.
///
/// Errors: as `simsiam_project`, and `CAPACITY_TOO_SMALL` for a short workspace,
/// `OVERLAP` when the workspace meets `z`, `out` or the parameters or image.
///
/// # Safety
/// As `simsiam_project`; `workspace` must be NULL or valid for writing `workspace_len`
/// floats, and not accessed otherwise during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_project_ws(
    model: *const SimsiamModel,
    z: *const f32,
    z_len: usize,
    out: *mut f32,
    out_len: usize,
    workspace: *mut f32,
    workspace_len: usize,
) -> SimsiamStatus {
    let workspace = (workspace, workspace_len);
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, z, z_len, out, out_len, workspace, Mlp::Projector) })
}

/// Applies the predictor to a projection: `out` = the predictor's output (for the
/// reference head `L2(W2 · ReLU(W1 · p + b1) + b2)`). Like `simsiam_project`, runs heads
/// whose predictor has at most two layers (the official head's has two); otherwise
/// `CAPACITY_TOO_SMALL`: use `simsiam_predict_ws`.
///
/// Memory: as `simsiam_project`: one block of 256 hidden units (1 KiB) plus the call
/// frames, under 6 KiB in all on a Cortex-M4F (default config).
///
/// Errors: as `simsiam_project`, with `p_len == d_out` required.
///
/// # Safety
/// As `simsiam_project`, with `p`/`p_len` in place of `z`/`z_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_predict(
    model: *const SimsiamModel,
    p: *const f32,
    p_len: usize,
    out: *mut f32,
    out_len: usize,
) -> SimsiamStatus {
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, p, p_len, out, out_len, NO_WORKSPACE, Mlp::Predictor) })
}

/// `simsiam_predict` with a workspace, for any head: as `simsiam_project_ws`, for the
/// predictor.
///
/// Errors: as `simsiam_project_ws`, with `p_len == d_out` required.
///
/// # Safety
/// As `simsiam_project_ws`, with `p`/`p_len` in place of `z`/`z_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_predict_ws(
    model: *const SimsiamModel,
    p: *const f32,
    p_len: usize,
    out: *mut f32,
    out_len: usize,
    workspace: *mut f32,
    workspace_len: usize,
) -> SimsiamStatus {
    let workspace = (workspace, workspace_len);
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, p, p_len, out, out_len, workspace, Mlp::Predictor) })
}

#[derive(Clone, Copy)]
enum Mlp {
    Projector,
    Predictor,
    ProjectorBatch,
    PredictorBatch,
    /// `ProjectorBatch` without a workspace: two rows per call (no lane blocks).
    ProjectorPairs,
    /// `PredictorBatch` without a workspace: two rows per call (no lane blocks).
    PredictorPairs,
}

/// `call` on two rows of `x` (`d_in` wide) and of `out` (`d_out` wide) at a time, after
/// the batch calls' length checks (same errors, same order): a batch through the pair
/// path, which needs no lane blocks (so no workspace for heads of two-layer stacks).
fn in_pairs(
    x: &[f32],
    out: &mut [f32],
    [d_in, d_out]: [usize; 2],
    mut call: impl FnMut(&[f32], &mut [f32]) -> Result<(), SslError>,
) -> Result<(), SslError> {
    let n = x.len().checked_div(d_in).unwrap_or(0);
    let mismatch = |expected, got| SslError::DimensionMismatch { expected, got };
    let whole = n.saturating_mul(d_in);
    if whole != x.len() {
        return Err(mismatch(whole, x.len()));
    }
    let expected = n
        .checked_mul(d_out)
        .ok_or(mismatch(usize::MAX, out.len()))?;
    if expected != out.len() {
        return Err(mismatch(expected, out.len()));
    }
    let (x_step, out_step) = (d_in.saturating_mul(2), d_out.saturating_mul(2));
    // Split off by hand, not `chunks`: no chunk-size assertion to prove away.
    let (mut x, mut out) = (x, out);
    while !x.is_empty() {
        let (xs, x_rest) = x.split_at_checked(x_step.min(x.len())).unwrap_or((x, &[]));
        let out_all = core::mem::take(&mut out);
        let out_at = out_step.min(out_all.len());
        let (outs, out_rest) = out_all.split_at_mut_checked(out_at).unwrap_or_default();
        call(xs, outs)?;
        (x, out) = (x_rest, out_rest);
    }
    Ok(())
}

/// The workspace of the calls without one: none (NULL, 0).
const NO_WORKSPACE: (*mut f32, usize) = (core::ptr::null_mut(), 0);

/// The body of `simsiam_project`, `simsiam_predict`, their batch forms and their `_ws`
/// forms.
///
/// # Safety
/// As `simsiam_project_ws`.
unsafe fn run_mlp(
    model: *const SimsiamModel,
    x: *const f32,
    x_len: usize,
    out: *mut f32,
    out_len: usize,
    (workspace_ptr, workspace_len): (*mut f32, usize),
    which: Mlp,
) -> Result<(), SimsiamStatus> {
    // SAFETY: forwarded from the caller's contract.
    let model = unsafe { read_model(model) }?;
    // SAFETY: forwarded from the caller's contract.
    let x = unsafe { input(x, x_len) }?;
    check_raw(out, out_len)?;
    check_workspace(workspace_ptr, workspace_len)?;
    let held = held(&model)?;
    let x_region = Region::floats(x.as_ptr(), x.len());
    let out_region = Region::floats(out, out_len);
    check_disjoint(out_region, &[x_region, held])?;
    check_disjoint(
        Region::floats(workspace_ptr, workspace_len),
        &[x_region, held, out_region],
    )?;
    // SAFETY: forwarded from the caller's contract; disjoint from `x`, the workspace
    // and the model's memory (checked above).
    let out = unsafe { output(out, out_len) }?;
    // SAFETY: as `out`.
    let workspace = unsafe { workspace(workspace_ptr, workspace_len) }?;
    // SAFETY: forwarded from the caller's contract.
    let head = unsafe { head(&model) }?;
    fn run<K: Kernels>(
        head: SimSiamHead<&[f32], K>,
        which: Mlp,
        x: &[f32],
        out: &mut [f32],
        workspace: &mut [f32],
    ) -> Result<(), SslError> {
        let (d_encoder, d_out) = (head.d_encoder(), head.d_out());
        match which {
            Mlp::Projector => head.project_into(x, out, workspace),
            Mlp::Predictor => head.predict_into(x, out, workspace),
            Mlp::ProjectorBatch => head.project_batch_into(x, out, workspace),
            Mlp::PredictorBatch => head.predict_batch_into(x, out, workspace),
            Mlp::ProjectorPairs => in_pairs(x, out, [d_encoder, d_out], |x, out| {
                head.project_batch_into(x, out, workspace)
            }),
            Mlp::PredictorPairs => in_pairs(x, out, [d_out, d_out], |x, out| {
                head.predict_batch_into(x, out, workspace)
            }),
        }
    }
    Ok(match backend_of(model.backend)? {
        SimsiamBackend::Simd => run(head.with_kernels::<Simd>(), which, x, out, workspace),
        SimsiamBackend::Scalar => run(head.with_kernels::<Scalar>(), which, x, out, workspace),
    }?)
}

/// The symmetric SimSiam loss of two views, `-(cos(p1, z2') + cos(p2, z1')) / 2`, with
/// `zi' = project(zi)`, `pi = predict(zi')` (for the reference head, whose outputs are
/// unit vectors, `(D(p1, z2') + D(p2, z1')) / 2` with `D(a, b) = -a·b`); written to
/// `*loss`, in `[-1, 1]` up to rounding.
///
/// `workspace` receives `z1'`, `z2'`, `p1`, `p2` (in that order, `d_out` floats each,
/// unit vectors) and then the stacks' intermediate vectors; it must hold at least
/// `simsiam_workspace_len(model, 1)` floats: `4 * d_out` for the reference head
/// (`simsiam_loss_workspace_len`), `4 * d_out + 2 * prev_dim` for the official one.
///
/// Memory: no heap. Stack: one block of hidden units per view, both views going through
/// each weight matrix together: 2 KiB (two blocks of 256 units), or 8 KiB (two of 1024)
/// when `d_projector` or `d_predictor` is above 256; plus the call frames: on a
/// Cortex-M4F (`thumbv7em`, `opt-level = "s"`, default config) under 6.5 KiB in all
/// (CI measures it on QEMU: about 5.4 KiB on either backend).
///
/// Errors: `DIMENSION_MISMATCH` unless `z1_len == z2_len == d_encoder`;
/// `CAPACITY_TOO_SMALL` for a short workspace; `NON_FINITE`; `NULL_POINTER`,
/// `MISALIGNED`, `OVERLAP` (`workspace` meets `z1`, `z2` or the parameters or image),
/// `INVALID_BACKEND`, `UNSUPPORTED_VERSION`. `*loss` is written only on success; the
/// workspace only once every check has passed (a `NON_FINITE` result leaves partial
/// values in it).
///
/// # Safety
/// `model` as in `simsiam_project`; `z1`, `z2` must be NULL or valid for reading
/// `z1_len`, `z2_len` floats; `workspace` must be NULL or valid for writing
/// `workspace_len` floats and not accessed otherwise during the call; `loss` must be NULL
/// or valid for writing one float outside all those buffers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_loss(
    model: *const SimsiamModel,
    z1: *const f32,
    z1_len: usize,
    z2: *const f32,
    z2_len: usize,
    workspace: *mut f32,
    workspace_len: usize,
    loss: *mut f32,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let model = unsafe { read_model(model) }?;
        let z1 = unsafe { input(z1, z1_len) }?;
        let z2 = unsafe { input(z2, z2_len) }?;
        if loss.is_null() {
            return Err(SimsiamStatus::NullPointer);
        }
        if !loss.is_aligned() {
            return Err(SimsiamStatus::Misaligned);
        }
        check_raw(workspace, workspace_len)?;
        let inputs = [
            Region::floats(z1.as_ptr(), z1.len()),
            Region::floats(z2.as_ptr(), z2.len()),
            held(&model)?,
        ];
        let workspace_region = Region::floats(workspace, workspace_len);
        let loss_region = Region::floats(loss, 1);
        check_disjoint(workspace_region, &inputs)?;
        check_disjoint(loss_region, &inputs)?;
        check_disjoint(loss_region, &[workspace_region])?;
        // Disjoint from the inputs (checked above).
        let workspace = unsafe { output(workspace, workspace_len) }?;
        let head = unsafe { head(&model) }?;
        let value = match backend_of(model.backend)? {
            SimsiamBackend::Simd => head.with_kernels::<Simd>().loss(z1, z2, workspace),
            SimsiamBackend::Scalar => head.with_kernels::<Scalar>().loss(z1, z2, workspace),
        }?;
        unsafe { write_out(loss, value) }
    })())
}

/// Projects `n` encoder outputs at once: `zs` is `n × d_encoder` row-major
/// (`zs_len = n * d_encoder`), row `j` of `out` (`n × d_out`) is `simsiam_project` of
/// row `j` of `zs`, up to summation order (bit for bit on the scalar backend). Like
/// `simsiam_project`, for heads whose projector has at most two layers (else
/// `CAPACITY_TOO_SMALL`: use `simsiam_project_batch_ws`).
///
/// Without a workspace there is no room for the lane blocks of the 16-input groups, so
/// this call takes the inputs two at a time (the pair path of `simsiam_loss`: each weight
/// is read once per 2 inputs); `simsiam_project_batch_ws` with
/// `simsiam_workspace_len(model, n)` floats reads them once per 16, several times faster.
///
/// Memory: no heap. Stack, whatever `n`: the pair path's hidden blocks, 2 KiB (8 KiB
/// when `d_projector` is above 256), plus bookkeeping and call frames, a few KiB on a
/// Cortex-M4F (see `simsiam_loss_batch`).
///
/// Errors: `DIMENSION_MISMATCH` unless `zs_len` is a multiple of `d_encoder` and
/// `out_len == n * d_out`; otherwise as `simsiam_project`. On error `out` may be partly
/// written (only once every pointer and length check has passed).
///
/// # Safety
/// As `simsiam_project`, with `zs`/`zs_len` in place of `z`/`z_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_project_batch(
    model: *const SimsiamModel,
    zs: *const f32,
    zs_len: usize,
    out: *mut f32,
    out_len: usize,
) -> SimsiamStatus {
    let which = Mlp::ProjectorPairs;
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, zs, zs_len, out, out_len, NO_WORKSPACE, which) })
}

/// `simsiam_project_batch` with a workspace, for any head, 16 inputs per group: it holds
/// the intermediate vectors of a group of up to 16 inputs (`min(n, 16)` times the first
/// hidden width for a 3-layer projector) and, for `n > 2`, the lane blocks of the group
/// (`Architecture::lanes_len` floats: 3 599 for the default config, at most
/// `16 * 4352 + 15`); `simsiam_workspace_len(model, n)` floats always suffice. It may be
/// NULL when `workspace_len` is 0 (enough for `n <= 2` on the reference head). Stack: a
/// few KiB, as `simsiam_loss_batch`.
///
/// Errors: as `simsiam_project_batch` and `simsiam_project_ws`.
///
/// # Safety
/// As `simsiam_project_ws`, with `zs`/`zs_len` in place of `z`/`z_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_project_batch_ws(
    model: *const SimsiamModel,
    zs: *const f32,
    zs_len: usize,
    out: *mut f32,
    out_len: usize,
    workspace: *mut f32,
    workspace_len: usize,
) -> SimsiamStatus {
    let (workspace, which) = ((workspace, workspace_len), Mlp::ProjectorBatch);
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, zs, zs_len, out, out_len, workspace, which) })
}

/// Applies the predictor to `n` projections at once: `ps` and `out` are `n × d_out`
/// row-major (`ps_len = out_len = n * d_out`). Like `simsiam_predict`, for heads whose
/// predictor has at most two layers (else `CAPACITY_TOO_SMALL`: use
/// `simsiam_predict_batch_ws`).
///
/// Like `simsiam_project_batch`, two inputs at a time (use `simsiam_predict_batch_ws`
/// for groups of 16).
///
/// Memory: as `simsiam_project_batch`, with `d_predictor` in place of `d_projector`
/// (the pair path's 2 KiB, 8 KiB when `d_predictor` is above 256), plus bookkeeping
/// and frames.
///
/// Errors: as `simsiam_project_batch`, with `ps_len` a multiple of `d_out`.
///
/// # Safety
/// As `simsiam_project`, with `ps`/`ps_len` in place of `z`/`z_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_predict_batch(
    model: *const SimsiamModel,
    ps: *const f32,
    ps_len: usize,
    out: *mut f32,
    out_len: usize,
) -> SimsiamStatus {
    let which = Mlp::PredictorPairs;
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, ps, ps_len, out, out_len, NO_WORKSPACE, which) })
}

/// `simsiam_predict_batch` with a workspace, for any head: as
/// `simsiam_project_batch_ws`, for the predictor.
///
/// Errors: as `simsiam_predict_batch` and `simsiam_project_ws`.
///
/// # Safety
/// As `simsiam_project_ws`, with `ps`/`ps_len` in place of `z`/`z_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_predict_batch_ws(
    model: *const SimsiamModel,
    ps: *const f32,
    ps_len: usize,
    out: *mut f32,
    out_len: usize,
    workspace: *mut f32,
    workspace_len: usize,
) -> SimsiamStatus {
    let (workspace, which) = ((workspace, workspace_len), Mlp::PredictorBatch);
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, ps, ps_len, out, out_len, workspace, which) })
}

/// The SimSiam loss of `n` pairs of views at once: `losses[j]` (`n` floats) is
/// `simsiam_loss` of row `j` of `z1s` and of `z2s` (both `n × d_encoder` row-major,
/// `z1s_len = z2s_len = n * d_encoder`), up to summation order (bit for bit on the scalar
/// backend). Pairs are taken 8 at a time (16 inputs, one per SIMD lane). `workspace` must
/// hold `simsiam_workspace_len(model, n)` floats: for the reference head
/// `simsiam_batch_loss_workspace_len(n)` = `4 * d_out * min(n, 8)`, plus the lane blocks
/// of a group for `n >= 2` (3 599 floats for the default config).
///
/// Memory: no heap. A group of 2 to 8 pairs is packed with its hidden blocks into the
/// workspace's lane blocks; a group of 1 pair (`n` = 1, or a last group when `n % 8`
/// is 1) takes the path of `simsiam_loss`, with 2 KiB of stack (8 KiB when
/// `d_projector` or `d_predictor` is above 256). Stack, whatever `n`: that, bookkeeping
/// and call frames, a few KiB (CI measures it on a Cortex-M4F under QEMU: about 5.3 KiB
/// for 3 pairs of the default config, under 6 KiB).
///
/// Errors: `DIMENSION_MISMATCH` unless `z1s_len == z2s_len == n * d_encoder`;
/// `CAPACITY_TOO_SMALL` for a short workspace; `NON_FINITE`; `NULL_POINTER`,
/// `MISALIGNED`, `OVERLAP` (`losses` or `workspace` meets an input, the parameters or
/// image, or each other), `INVALID_BACKEND`, `UNSUPPORTED_VERSION`. On error `losses`
/// and `workspace` may be partly written (only once every pointer and length check has
/// passed).
///
/// # Safety
/// `model` as in `simsiam_project`; `z1s`, `z2s` must be NULL or valid for reading
/// `z1s_len`, `z2s_len` floats; `losses` and `workspace` must be NULL or valid for
/// writing `n` and `workspace_len` floats, and not accessed otherwise during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_loss_batch(
    model: *const SimsiamModel,
    z1s: *const f32,
    z1s_len: usize,
    z2s: *const f32,
    z2s_len: usize,
    losses: *mut f32,
    n: usize,
    workspace: *mut f32,
    workspace_len: usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let model = unsafe { read_model(model) }?;
        let z1s = unsafe { input(z1s, z1s_len) }?;
        let z2s = unsafe { input(z2s, z2s_len) }?;
        check_raw(losses, n)?;
        check_raw(workspace, workspace_len)?;
        let inputs = [
            Region::floats(z1s.as_ptr(), z1s.len()),
            Region::floats(z2s.as_ptr(), z2s.len()),
            held(&model)?,
        ];
        let workspace_region = Region::floats(workspace, workspace_len);
        let losses_region = Region::floats(losses, n);
        check_disjoint(workspace_region, &inputs)?;
        check_disjoint(losses_region, &inputs)?;
        check_disjoint(losses_region, &[workspace_region])?;
        // Disjoint from the inputs and from each other (checked above).
        let losses = unsafe { output(losses, n) }?;
        let workspace = unsafe { output(workspace, workspace_len) }?;
        let head = unsafe { head(&model) }?;
        Ok(match backend_of(model.backend)? {
            SimsiamBackend::Simd => {
                (head.with_kernels::<Simd>()).loss_batch_into(z1s, z2s, losses, workspace)
            }
            SimsiamBackend::Scalar => {
                (head.with_kernels::<Scalar>()).loss_batch_into(z1s, z2s, losses, workspace)
            }
        }?)
    })())
}

/// Replaces the predictor part of the caller's `params` with an exact identity
/// (`pred_w1` row `i` = `+e_i`, row `d_out + i` = `-e_i`; `pred_w2` row `i` = `+1` at
/// column `i`, `-1` at column `d_out + i`; biases zero), so that
/// `predict(project(z)) == project(z)` and `loss(z, z) == -1` up to rounding.
/// The projector part is left as it is. A model over `params` sees the change.
///
/// Errors: `INVALID_PARAMETER` unless `d_predictor == 2 * d_out` (or for a bad config),
/// `DIMENSION_MISMATCH` unless `params_len` is the parameter count, `NON_FINITE` when a
/// parameter is NaN or infinite (nothing is written then), `NULL_POINTER` / `MISALIGNED`.
///
/// # Safety
/// `params` must be NULL or valid for reading and writing `params_len` floats, and not
/// accessed otherwise during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_set_identity_predictor(
    config: SimsiamConfig,
    params: *mut f32,
    params_len: usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY: forwarded from this function's contract.
        let params = unsafe { output(params, params_len) }?;
        Ok(SimSiamHead::from_params(config.into(), params)?.set_identity_predictor()?)
    })())
}

/// A static, NUL-terminated English description of a status code (any `int32_t`; an
/// unknown code gives `"unknown status code"`). Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn simsiam_status_message(status: i32) -> *const c_char {
    const MESSAGES: [(SimsiamStatus, &core::ffi::CStr); 13] = [
        (SimsiamStatus::Ok, c"ok"),
        (SimsiamStatus::DimensionMismatch, c"dimension mismatch: a buffer length does not match the head"),
        (SimsiamStatus::InvalidParameter, c"invalid parameter: a dimension is zero, a count overflows, or d_predictor != 2 * d_out for the identity predictor"),
        (SimsiamStatus::NonFinite, c"non-finite value: an input, a parameter or an output is NaN or infinite"),
        (SimsiamStatus::CapacityTooSmall, c"capacity too small: the workspace is shorter than required"),
        (SimsiamStatus::OutOfMemory, c"out of memory"),
        (SimsiamStatus::NullPointer, c"a required pointer is NULL"),
        (SimsiamStatus::Misaligned, c"a pointer is not aligned for its type"),
        (SimsiamStatus::Overlap, c"an output buffer overlaps an input buffer, the parameters or the image"),
        (SimsiamStatus::InvalidBackend, c"the model's backend is neither SIMSIAM_BACKEND_SIMD nor SIMSIAM_BACKEND_SCALAR"),
        (SimsiamStatus::Unknown, c"an error this version of the C API does not know"),
        (SimsiamStatus::UnsupportedVersion, c"unsupported version: the model's struct_size or kind, or the image's format version, is not one this library knows"),
        (SimsiamStatus::BadImage, c"bad parameter image: truncated, bad magic, checksum mismatch or an inconsistent header or layer table"),
    ];
    MESSAGES
        .iter()
        .find(|(code, _)| *code as i32 == status)
        .map_or(c"unknown status code", |(_, message)| message)
        .as_ptr()
}
