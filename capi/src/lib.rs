//! C ABI for the `simsiam` head: a `#![no_std]` static library and the header
//! `include/simsiam.h` that cbindgen generates from this file.
//!
//! Every function returns a `SimsiamStatus` (`int32_t`, `SIMSIAM_STATUS_OK == 0`) and
//! writes its results into buffers the caller owns: nothing allocates, nothing panics.
//! Pointers are checked for NULL, alignment and overlap, lengths are passed beside every
//! pointer and checked against the configuration, so every bad input is a status code.
//!
//! A `SimsiamModel` is a small struct the caller owns (on its stack, in a `static`):
//! the configuration and a pointer/length pair to the caller's parameters, which may
//! sit in flash. `simsiam_model_init` validates the parameters once; the model
//! borrows them, never copies them.
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

use core::ffi::c_char;
use core::mem::size_of;

use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::model::Architecture;
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, SslError, init_params};

/// What a call did: `SIMSIAM_STATUS_OK` (0) or why it refused.
///
/// The first five error codes are the `simsiam::SslError` variants; the others are the
/// C boundary's own checks. `simsiam_status_message` gives a static description.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimsiamStatus {
    /// Success.
    Ok = 0,
    /// A buffer length does not match the configuration (`SslError::DimensionMismatch`).
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
    /// A pointer is not aligned for its type (`float` needs 4 bytes).
    Misaligned = 7,
    /// An output buffer overlaps an input buffer or the parameters.
    Overlap = 8,
    /// `SimsiamModel::backend` is neither `SIMSIAM_BACKEND_SIMD` nor `SIMSIAM_BACKEND_SCALAR`.
    InvalidBackend = 9,
    /// An error this version of the C API does not know (a newer `SslError` variant).
    Unknown = 10,
}

/// Which kernel twin a `SimsiamModel` runs on (the value of `SimsiamModel::backend`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimsiamBackend {
    /// The `wide` SIMD lanes (the default set by `simsiam_model_init`).
    Simd = 0,
    /// The scalar twin: the reference crate's loops, summing left to right.
    Scalar = 1,
}

/// The head's dimensions (`simsiam::SimSiamConfig`).
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

/// A head over the caller's parameters, owned by the caller. Fill it with
/// `simsiam_model_init`; the parameters are borrowed, not copied, and must stay valid
/// and unchanged while the model is used. Plain data: copying the struct is fine.
///
/// `simsiam_model_init` checks that every parameter is finite; later calls check only
/// the shapes (O(1)), so after changing the parameters call `simsiam_model_init` again
/// (a NaN slipped in later is never unsafe: it gives `NON_FINITE` or a meaningless value).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SimsiamModel {
    /// The dimensions.
    pub config: SimsiamConfig,
    /// The caller's flat parameters (`simsiam_param_count` floats), e.g. in flash.
    pub params: *const f32,
    /// The number of floats at `params`.
    pub params_len: usize,
    /// A `SimsiamBackend` value; `simsiam_model_init` sets `SIMSIAM_BACKEND_SIMD`.
    pub backend: u32,
}

fn status_of(error: SslError) -> SimsiamStatus {
    match error {
        SslError::DimensionMismatch { .. } => SimsiamStatus::DimensionMismatch,
        SslError::InvalidParameter { .. } => SimsiamStatus::InvalidParameter,
        SslError::NonFinite { .. } => SimsiamStatus::NonFinite,
        SslError::CapacityTooSmall { .. } => SimsiamStatus::CapacityTooSmall,
        SslError::OutOfMemory { .. } => SimsiamStatus::OutOfMemory,
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

/// Whether the byte ranges of two float buffers intersect (lengths already checked to
/// fit in `isize`).
fn overlaps(a: *const f32, a_len: usize, b: *const f32, b_len: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    let a_end = a.saturating_add(a_len.saturating_mul(size_of::<f32>()));
    let b_end = b.saturating_add(b_len.saturating_mul(size_of::<f32>()));
    a_len != 0 && b_len != 0 && a < b_end && b < a_end
}

/// `Err(Overlap)` when the output range meets any of the inputs.
fn check_disjoint(
    out: (*const f32, usize),
    inputs: &[(*const f32, usize)],
) -> Result<(), SimsiamStatus> {
    if inputs
        .iter()
        .any(|&(ptr, len)| overlaps(out.0, out.1, ptr, len))
    {
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

/// Reads the model behind `model` after a NULL/alignment check.
///
/// # Safety
/// `model` must be NULL or point to a readable `SimsiamModel`.
unsafe fn read_model(model: *const SimsiamModel) -> Result<SimsiamModel, SimsiamStatus> {
    if model.is_null() {
        return Err(SimsiamStatus::NullPointer);
    }
    if !model.is_aligned() {
        return Err(SimsiamStatus::Misaligned);
    }
    // SAFETY: non-NULL, aligned (checked), readable (the caller's contract). Every bit
    // pattern is a valid `SimsiamModel` (integers and a raw pointer).
    Ok(unsafe { model.read() })
}

/// The model's parameters as a head. Shapes are checked (O(1)); finiteness was checked
/// once by `simsiam_model_init` and is not scanned again per call.
///
/// # Safety
/// `model.params` must be valid for reads of `model.params_len` floats and not written
/// for `'a`.
unsafe fn head<'a>(model: &SimsiamModel) -> Result<SimSiamHead<&'a [f32]>, SimsiamStatus> {
    // SAFETY: forwarded from this function's contract.
    let params = unsafe { input(model.params, model.params_len) }?;
    let architecture = Architecture::reference(model.config.into())?;
    Ok(SimSiamHead::from_checked_params(architecture, params)?)
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

/// Writes to `*len` how many floats the `workspace` of `simsiam_loss` needs:
/// `4 * d_out`.
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
/// `n` pairs: exactly `4 * d_out * min(n, 8)` (both projections and both predictions of
/// the up to 8 pairs that go through the weights together); 0 for `n == 0`, the same as
/// `simsiam_loss_workspace_len` for `n == 1`.
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

/// Fills `*model` with a head over the caller's `params` (not copied) on the SIMD
/// backend, after checking the config, the length and that every parameter is finite.
/// On error `*model` is left untouched.
///
/// Errors: `INVALID_PARAMETER`, `DIMENSION_MISMATCH` (length), `NON_FINITE` (a NaN or
/// infinite parameter), `NULL_POINTER` / `MISALIGNED` for `model` or `params`.
///
/// # Safety
/// `model` must be NULL or valid for writing a `SimsiamModel`; `params` must be NULL or
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
        config,
        params,
        params_len,
        backend: SimsiamBackend::Simd as u32,
    };
    status((|| {
        if model.is_null() {
            return Err(SimsiamStatus::NullPointer);
        }
        // SAFETY: forwarded from this function's contract.
        let params = unsafe { input(params, params_len) }?;
        SimSiamHead::from_params(config.into(), params)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { write_out(model, new) }
    })())
}

/// Projects an encoder output: `out = L2(W2 · ReLU(W1 · z + b1) + b2)`.
///
/// Memory: no heap. Stack: one block of 256 hidden units (1 KiB; the hidden layer is
/// made 256 units at a time, whatever `d_projector`) plus the call frames: on a
/// Cortex-M4F (`thumbv7em`, `opt-level = "s"`, default config) under 6 KiB in all
/// (CI measures it on QEMU: about 5.5 KiB on either backend; the layer views of the
/// general layer-stack model take most of it).
///
/// Errors: `DIMENSION_MISMATCH` unless `z_len == d_encoder` and `out_len == d_out`;
/// `NON_FINITE` for a NaN/infinite input or an overflowing result; `NULL_POINTER`,
/// `MISALIGNED`, `OVERLAP` (`out` meets `z` or the parameters), `INVALID_BACKEND`,
/// and the model's own errors if it was changed after `simsiam_model_init`. On error
/// `out` is untouched, except for `NON_FINITE` from an overflowing result.
///
/// # Safety
/// `model` must be NULL or point to a `SimsiamModel` whose `params`/`params_len` are
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
    status(unsafe { run_mlp(model, z, z_len, out, out_len, Mlp::Projector) })
}

/// Applies the predictor to a projection: `out = L2(W2 · ReLU(W1 · p + b1) + b2)`.
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
    status(unsafe { run_mlp(model, p, p_len, out, out_len, Mlp::Predictor) })
}

#[derive(Clone, Copy)]
enum Mlp {
    Projector,
    Predictor,
    ProjectorBatch,
    PredictorBatch,
}

/// The body of `simsiam_project`, `simsiam_predict` and their batch forms.
///
/// # Safety
/// As `simsiam_project`.
unsafe fn run_mlp(
    model: *const SimsiamModel,
    x: *const f32,
    x_len: usize,
    out: *mut f32,
    out_len: usize,
    which: Mlp,
) -> Result<(), SimsiamStatus> {
    // SAFETY: forwarded from the caller's contract.
    let model = unsafe { read_model(model) }?;
    // SAFETY: forwarded from the caller's contract.
    let x = unsafe { input(x, x_len) }?;
    check_raw(out, out_len)?;
    check_raw(model.params, model.params_len)?;
    check_disjoint(
        (out, out_len),
        &[(x.as_ptr(), x.len()), (model.params, model.params_len)],
    )?;
    // SAFETY: forwarded from the caller's contract; disjoint from `x` and the
    // parameters (checked above).
    let out = unsafe { output(out, out_len) }?;
    // SAFETY: forwarded from the caller's contract.
    let head = unsafe { head(&model) }?;
    // The reference's two-layer stacks keep no intermediate vector: no workspace.
    fn run<K: Kernels>(
        head: SimSiamHead<&[f32], K>,
        which: Mlp,
        x: &[f32],
        out: &mut [f32],
    ) -> Result<(), SslError> {
        match which {
            Mlp::Projector => head.project_into(x, out, &mut []),
            Mlp::Predictor => head.predict_into(x, out, &mut []),
            Mlp::ProjectorBatch => head.project_batch_into(x, out, &mut []),
            Mlp::PredictorBatch => head.predict_batch_into(x, out, &mut []),
        }
    }
    Ok(match backend_of(model.backend)? {
        SimsiamBackend::Simd => run(head.with_kernels::<Simd>(), which, x, out),
        SimsiamBackend::Scalar => run(head.with_kernels::<Scalar>(), which, x, out),
    }?)
}

/// The symmetric SimSiam loss of two views, `(D(p1, z2') + D(p2, z1')) / 2` with
/// `D(a, b) = -a·b`, `zi' = project(zi)`, `pi = predict(zi')`; written to `*loss`, in
/// `[-1, 1]` up to rounding.
///
/// `workspace` receives `z1'`, `z2'`, `p1`, `p2` (in that order, `d_out` floats each);
/// it must hold at least `4 * d_out` floats (`simsiam_loss_workspace_len`).
///
/// Memory: no heap. Stack: one block of hidden units per view, both views going through
/// each weight matrix together: 2 KiB (two blocks of 256 units), or 8 KiB (two of 1024)
/// when `d_projector` or `d_predictor` is above 256; plus the call frames: on a
/// Cortex-M4F (`thumbv7em`, `opt-level = "s"`, default config) under 6.5 KiB in all
/// (CI measures it on QEMU: about 6.1 KiB on the SIMD backend, 5.9 KiB scalar).
///
/// Errors: `DIMENSION_MISMATCH` unless `z1_len == z2_len == d_encoder`;
/// `CAPACITY_TOO_SMALL` for a short workspace; `NON_FINITE`; `NULL_POINTER`,
/// `MISALIGNED`, `OVERLAP` (`workspace` meets `z1`, `z2` or the parameters),
/// `INVALID_BACKEND`. `*loss` is written only on success; the workspace only once
/// every check has passed (a `NON_FINITE` result leaves partial values in it).
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
        check_raw(model.params, model.params_len)?;
        let inputs = [
            (z1.as_ptr(), z1.len()),
            (z2.as_ptr(), z2.len()),
            (model.params, model.params_len),
        ];
        check_disjoint((workspace, workspace_len), &inputs)?;
        check_disjoint((loss, 1), &inputs)?;
        check_disjoint((loss, 1), &[(workspace, workspace_len)])?;
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
/// row `j` of `zs`, up to summation order (bit for bit on the scalar backend). Inputs go
/// through the weights in groups of 16 (one per SIMD lane), so each weight is read once
/// per 16 inputs.
///
/// Memory: no heap. Stack, whatever `n`: a group of 3 to 16 inputs is packed on the stack
/// with its hidden blocks, 20 KiB when `d_encoder` and `d_projector` are both at most 128
/// (the default config), 68 KiB otherwise; a group of 1 or 2 inputs (`n` = 1 or 2, or a
/// last group when `n % 16` is 1 or 2) takes the pair path of `simsiam_loss` instead,
/// 2 KiB (8 KiB when `d_projector` is above 256). Plus bookkeeping and call frames,
/// about 2 KiB on a Cortex-M4F (see `simsiam_loss_batch`). Mind it on a small stack.
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
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, zs, zs_len, out, out_len, Mlp::ProjectorBatch) })
}

/// Applies the predictor to `n` projections at once: `ps` and `out` are `n × d_out`
/// row-major (`ps_len = out_len = n * d_out`).
///
/// Memory: as `simsiam_project_batch`, with `d_out` and `d_predictor` in place of
/// `d_encoder` and `d_projector` (20 KiB when both are at most 128, else 68 KiB; the pair
/// path 2 KiB, 8 KiB when `d_predictor` is above 256), plus bookkeeping and frames.
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
    // SAFETY: forwarded from this function's contract.
    status(unsafe { run_mlp(model, ps, ps_len, out, out_len, Mlp::PredictorBatch) })
}

/// The SimSiam loss of `n` pairs of views at once: `losses[j]` (`n` floats) is
/// `simsiam_loss` of row `j` of `z1s` and of `z2s` (both `n × d_encoder` row-major,
/// `z1s_len = z2s_len = n * d_encoder`), up to summation order (bit for bit on the scalar
/// backend). Pairs are taken 8 at a time (16 inputs, one per SIMD lane). `workspace` must
/// hold `simsiam_batch_loss_workspace_len(n)` = `4 * d_out * min(n, 8)` floats.
///
/// Memory: no heap. Stack, whatever `n`: a group of 2 to 8 pairs is packed on the stack
/// with its hidden blocks, 20 KiB when every layer is at most 128 wide (`d_encoder`,
/// `d_projector`, `d_out`, `d_predictor`; the default config), 68 KiB otherwise; a group
/// of 1 pair (`n` = 1, or a last group when `n % 8` is 1) takes the path of
/// `simsiam_loss`, 2 KiB (8 KiB when `d_projector` or `d_predictor` is above 256). Plus
/// bookkeeping and call frames: on a Cortex-M4F (`thumbv7em`, `opt-level = "s"`, default
/// config) under 26 KiB in all (CI measures it on QEMU: about 24.8 KiB SIMD, 24.1 KiB
/// scalar). Mind it on a small stack.
///
/// Errors: `DIMENSION_MISMATCH` unless `z1s_len == z2s_len == n * d_encoder`;
/// `CAPACITY_TOO_SMALL` for a short workspace; `NON_FINITE`; `NULL_POINTER`,
/// `MISALIGNED`, `OVERLAP` (`losses` or `workspace` meets an input, the parameters or each
/// other), `INVALID_BACKEND`. On error `losses` and `workspace` may be partly written
/// (only once every pointer and length check has passed).
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
        check_raw(model.params, model.params_len)?;
        let inputs = [
            (z1s.as_ptr(), z1s.len()),
            (z2s.as_ptr(), z2s.len()),
            (model.params, model.params_len),
        ];
        check_disjoint((workspace, workspace_len), &inputs)?;
        check_disjoint((losses, n), &inputs)?;
        check_disjoint((losses, n), &[(workspace, workspace_len)])?;
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
    const MESSAGES: [(SimsiamStatus, &core::ffi::CStr); 11] = [
        (SimsiamStatus::Ok, c"ok"),
        (SimsiamStatus::DimensionMismatch, c"dimension mismatch: a buffer length does not match the configuration"),
        (SimsiamStatus::InvalidParameter, c"invalid parameter: a dimension is zero, a count overflows, or d_predictor != 2 * d_out for the identity predictor"),
        (SimsiamStatus::NonFinite, c"non-finite value: an input, a parameter or an output is NaN or infinite"),
        (SimsiamStatus::CapacityTooSmall, c"capacity too small: the workspace is shorter than required"),
        (SimsiamStatus::OutOfMemory, c"out of memory"),
        (SimsiamStatus::NullPointer, c"a required pointer is NULL"),
        (SimsiamStatus::Misaligned, c"a pointer is not aligned for its type"),
        (SimsiamStatus::Overlap, c"an output buffer overlaps an input buffer or the parameters"),
        (SimsiamStatus::InvalidBackend, c"the model's backend is neither SIMSIAM_BACKEND_SIMD nor SIMSIAM_BACKEND_SCALAR"),
        (SimsiamStatus::Unknown, c"an error this version of the C API does not know"),
    ];
    MESSAGES
        .iter()
        .find(|(code, _)| *code as i32 == status)
        .map_or(c"unknown status code", |(_, message)| message)
        .as_ptr()
}
