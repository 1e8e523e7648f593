//! Self-supervised learning on the device from C (issue 22): the `har_dense` network
//! (encoder in front of the head) over the caller's parameters, its training step over
//! the caller's momentum and scratch, the seeded augmentations, and the few-shot
//! nearest-class-mean classifier over the caller's storage. The same calls as
//! `examples/firmware-ssl/src/run.rs` makes in Rust, so a C program gets the same bits.

use core::mem::size_of;

use simsiam::LcgRng;
use simsiam::augment::{Augmenter, ViewRecipe, Xoshiro128PlusPlus, standardize};
use simsiam::fewshot::NearestClassMean;
use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::model::{Architecture, HarDense, SimSiamHead};
use simsiam::train::{Sgd, TrainConfig, cosine_lr, scratch_len};

use super::{
    Region, SimsiamBackend, SimsiamStatus, check_disjoint, input, output, status, workspace,
    write_out,
};

/// The sizes of a `har_dense` network (`simsiam::model::HarDense`): the input
/// `[channels, window]` flattened channel-major, encoder `channels·window → hidden →
/// feature` (Linear without bias, BatchNorm, ReLU, twice), projector `feature →
/// projector_hidden → projection`, predictor `projection → predictor_hidden →
/// projection`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimsiamHarDense {
    /// Input channels.
    pub channels: usize,
    /// Input samples per channel.
    pub window: usize,
    /// The encoder's first width.
    pub hidden: usize,
    /// The encoder's output width (the feature).
    pub feature: usize,
    /// The projector's hidden width.
    pub projector_hidden: usize,
    /// The projection width.
    pub projection: usize,
    /// The predictor's hidden width.
    pub predictor_hidden: usize,
}

/// What the buffers of a `har_dense` network hold, in floats (`simsiam_har_dense_sizes`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimsiamNetworkSizes {
    /// Parameters (and the momentum buffer's length).
    pub param_count: usize,
    /// Floats of one input window (`channels·window`).
    pub d_input: usize,
    /// Floats of one feature.
    pub d_feature: usize,
    /// The workspace of `simsiam_har_dense_encode` on `batch` windows.
    pub encode_workspace_len: usize,
    /// The scratch of `simsiam_har_dense_train_step` on `batch` pairs.
    pub train_scratch_len: usize,
}

/// The augmentations' settings (`simsiam::augment::ViewRecipe`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimsiamViewRecipe {
    /// Non-zero: rotate the channel triads by one random rotation per view.
    pub rotate: u32,
    /// Standard deviation of the per-channel scale around 1.
    pub scale_sigma: f32,
    /// Standard deviation of the per-element jitter.
    pub jitter_sigma: f32,
}

impl From<SimsiamHarDense> for HarDense {
    fn from(s: SimsiamHarDense) -> Self {
        Self {
            channels: s.channels,
            window: s.window,
            hidden: s.hidden,
            feature: s.feature,
            projector_hidden: s.projector_hidden,
            projection: s.projection,
            predictor_hidden: s.predictor_hidden,
        }
    }
}

/// `hapt-mcu`'s sizes (`HarDense::MCU`): 6 × 32 inputs, encoder 192→32→32, projector
/// 32→32→32, predictor 32→16→32; 10 784 parameters.
#[unsafe(no_mangle)]
pub extern "C" fn simsiam_har_dense_mcu() -> SimsiamHarDense {
    let s = HarDense::MCU;
    SimsiamHarDense {
        channels: s.channels,
        window: s.window,
        hidden: s.hidden,
        feature: s.feature,
        projector_hidden: s.projector_hidden,
        projection: s.projection,
        predictor_hidden: s.predictor_hidden,
    }
}

/// The HAPT recipe's augmentations: rotation, scale N(1, 0.1²), jitter N(0, 0.1²).
#[unsafe(no_mangle)]
pub extern "C" fn simsiam_view_recipe_hapt() -> SimsiamViewRecipe {
    let r = ViewRecipe::HAPT;
    SimsiamViewRecipe {
        rotate: u32::from(r.rotate),
        scale_sigma: r.scale_sigma,
        jitter_sigma: r.jitter_sigma,
    }
}

/// Reads the caller's sizes.
///
/// # Safety
/// `sizes` must be NULL or valid for reading one `SimsiamHarDense`.
unsafe fn architecture(sizes: *const SimsiamHarDense) -> Result<Architecture, SimsiamStatus> {
    if sizes.is_null() {
        return Err(SimsiamStatus::NullPointer);
    }
    if !sizes.is_aligned() {
        return Err(SimsiamStatus::Misaligned);
    }
    // SAFETY: non-NULL, aligned (checked), readable (the caller's contract).
    let sizes = unsafe { sizes.read() };
    Ok(Architecture::har_dense(&sizes.into())?)
}

/// Writes the buffer lengths of the network of `sizes` for a batch of `batch` windows
/// (encode) or pairs (training; 2 at least: BatchNorm needs two rows).
///
/// Errors: `INVALID_PARAMETER` for a zero size or an overflow, `NULL_POINTER` /
/// `MISALIGNED` for `sizes` or `out`.
///
/// # Safety
/// `sizes` must be NULL or readable; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_har_dense_sizes(
    sizes: *const SimsiamHarDense,
    batch: usize,
    out: *mut SimsiamNetworkSizes,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (both): forwarded from this function's contract.
        let architecture = unsafe { architecture(sizes) }?;
        let value = SimsiamNetworkSizes {
            param_count: architecture.param_count()?,
            d_input: architecture.d_input(),
            d_feature: architecture.d_encoder(),
            encode_workspace_len: architecture.workspace_len(batch)?,
            train_scratch_len: scratch_len(&architecture, batch)?,
        };
        unsafe { write_out(out, value) }
    })())
}

/// PyTorch's default initialisation of the network of `sizes` from `seed`
/// (`Architecture::init_params` with `LcgRng::new(seed)`).
///
/// Errors: `INVALID_PARAMETER` (sizes), `DIMENSION_MISMATCH` (`params_len`),
/// `NULL_POINTER` / `MISALIGNED`.
///
/// # Safety
/// `sizes` must be NULL or readable; `params` NULL or valid for writing `params_len`
/// floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_har_dense_init(
    sizes: *const SimsiamHarDense,
    seed: u64,
    params: *mut f32,
    params_len: usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (both): forwarded from this function's contract.
        let architecture = unsafe { architecture(sizes) }?;
        let params = unsafe { output(params, params_len) }?;
        Ok(architecture.init_params(&mut LcgRng::new(seed), params)?)
    })())
}

fn backend(value: u32) -> Result<SimsiamBackend, SimsiamStatus> {
    match value {
        0 => Ok(SimsiamBackend::Simd),
        1 => Ok(SimsiamBackend::Scalar),
        _ => Err(SimsiamStatus::InvalidParameter),
    }
}

fn encode_on<K: Kernels>(
    architecture: Architecture,
    params: &[f32],
    xs: &[f32],
    features: &mut [f32],
    work: &mut [f32],
) -> Result<(), SimsiamStatus> {
    let head = SimSiamHead::new(architecture, params)?.with_kernels::<K>();
    Ok(head.encode_batch_into(xs, features, work)?)
}

/// The encoder's features (eval mode: BatchNorm's running statistics) of the windows
/// `xs` (`n × d_input`, `n = xs_len / d_input`) into `features` (`n × d_feature`), on
/// the kernel twin `backend` (a `SimsiamBackend` value; on thumbv7em both run the same
/// scalar kernels). `workspace`: `encode_workspace_len` of `simsiam_har_dense_sizes`.
///
/// Errors: `DIMENSION_MISMATCH` (lengths), `CAPACITY_TOO_SMALL` (workspace),
/// `NON_FINITE`, `INVALID_PARAMETER` (sizes, backend), `OVERLAP` (an output meets an
/// input), `NULL_POINTER` / `MISALIGNED`.
///
/// # Safety
/// Every pointer NULL or valid for its length (reads for `const`, reads and writes
/// otherwise); `features` and `workspace` not accessed otherwise during the call.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn simsiam_har_dense_encode(
    sizes: *const SimsiamHarDense,
    backend_value: u32,
    params: *const f32,
    params_len: usize,
    xs: *const f32,
    xs_len: usize,
    features: *mut f32,
    features_len: usize,
    work: *mut f32,
    work_len: usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let architecture = unsafe { architecture(sizes) }?;
        let twin = backend(backend_value)?;
        let inputs = [
            Region::floats(params, params_len),
            Region::floats(xs, xs_len),
        ];
        check_disjoint(Region::floats(features, features_len), &inputs)?;
        check_disjoint(Region::floats(work, work_len), &inputs)?;
        check_disjoint(
            Region::floats(work, work_len),
            &[Region::floats(features, features_len)],
        )?;
        let params = unsafe { input(params, params_len) }?;
        let xs = unsafe { input(xs, xs_len) }?;
        let features = unsafe { output(features, features_len) }?;
        let work = unsafe { workspace(work, work_len) }?;
        match twin {
            SimsiamBackend::Simd => encode_on::<Simd>(architecture, params, xs, features, work),
            SimsiamBackend::Scalar => encode_on::<Scalar>(architecture, params, xs, features, work),
        }
    })())
}

/// One SimSiam training step (`Sgd::step`) of the whole network on the pairs `x1s`,
/// `x2s` (`n × d_input` each, `n = xs_len / d_input`), at learning rate `lr` for every
/// parameter, momentum 0.9, weight decay 1e-4, stop-gradient, BatchNorm momentum 0.1 (the
/// HAPT recipe); `momentum` is the SGD buffer the caller keeps between steps and
/// `steps_taken` the steps already taken with it (0 the first time: the buffer is then
/// zeroed first, as `Sgd::new` does). Updates `params` (and the BatchNorm running statistics in it) and
/// `momentum`; writes the loss before the update to `*loss`. `scratch`:
/// `train_scratch_len` of `simsiam_har_dense_sizes` for `n`.
///
/// Errors: as `simsiam_har_dense_encode`; `INVALID_PARAMETER` for `n` below 2 or a bad
/// `lr`; `NON_FINITE` for a non-finite input, loss or update (then nothing changed).
///
/// # Safety
/// Every pointer NULL or valid for its length (reads for `const`, reads and writes
/// otherwise); the writable buffers not accessed otherwise during the call.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn simsiam_har_dense_train_step(
    sizes: *const SimsiamHarDense,
    backend_value: u32,
    params: *mut f32,
    params_len: usize,
    momentum: *mut f32,
    momentum_len: usize,
    steps_taken: u64,
    lr: f32,
    x1s: *const f32,
    x2s: *const f32,
    xs_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
    loss: *mut f32,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let architecture = unsafe { architecture(sizes) }?;
        let twin = backend(backend_value)?;
        let writable = [
            Region::floats(params, params_len),
            Region::floats(momentum, momentum_len),
            Region::floats(scratch, scratch_len),
            Region {
                start: loss as usize,
                len: size_of::<f32>(),
            },
        ];
        let inputs = [Region::floats(x1s, xs_len), Region::floats(x2s, xs_len)];
        for (i, &out) in writable.iter().enumerate() {
            check_disjoint(out, &inputs)?;
            check_disjoint(out, writable.get(i + 1..).unwrap_or_default())?;
        }
        let params = unsafe { output(params, params_len) }?;
        let momentum = unsafe { output(momentum, momentum_len) }?;
        let x1s = unsafe { input(x1s, xs_len) }?;
        let x2s = unsafe { input(x2s, xs_len) }?;
        let scratch = unsafe { output(scratch, scratch_len) }?;
        let config = TrainConfig {
            lr,
            fix_predictor_lr: false,
            ..TrainConfig::default()
        };
        let mut sgd = if steps_taken == 0 {
            Sgd::new(&architecture, config, momentum)?
        } else {
            Sgd::resume(&architecture, config, momentum, steps_taken, lr)?
        };
        sgd.set_lr(lr);
        let head = SimSiamHead::new(architecture, params)?;
        let value = match twin {
            SimsiamBackend::Simd => sgd.step(
                &mut head.with_kernels::<Simd>(),
                x1s,
                x2s,
                scratch,
                [&mut [], &mut []],
            ),
            SimsiamBackend::Scalar => sgd.step(
                &mut head.with_kernels::<Scalar>(),
                x1s,
                x2s,
                scratch,
                [&mut [], &mut []],
            ),
        }?;
        unsafe { write_out(loss, value) }
    })())
}

/// `len` words at `ptr` (a generator state), checked.
///
/// # Safety
/// `ptr` NULL or valid for reads and writes of 4 `uint32_t`.
unsafe fn rng_state<'a>(ptr: *mut u32) -> Result<&'a mut [u32; 4], SimsiamStatus> {
    if ptr.is_null() {
        return Err(SimsiamStatus::NullPointer);
    }
    if !ptr.is_aligned() {
        return Err(SimsiamStatus::Misaligned);
    }
    // SAFETY: non-NULL, aligned, valid for 4 words (the caller's contract).
    Ok(unsafe { &mut *ptr.cast::<[u32; 4]>() })
}

/// Writes into `state` (4 words) the state of `Xoshiro128PlusPlus::from_seed(seed)`, the
/// generator of the augmentations.
///
/// Errors: `NULL_POINTER` / `MISALIGNED`.
///
/// # Safety
/// `state` NULL or valid for writing 4 `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_rng_seed(seed: u64, state: *mut u32) -> SimsiamStatus {
    status((|| {
        // SAFETY: forwarded from this function's contract.
        let state = unsafe { rng_state(state) }?;
        *state = Xoshiro128PlusPlus::from_seed(seed).state();
        Ok(())
    })())
}

/// The generator's next `u32` into `*out`, advancing `state`.
///
/// Errors: `INVALID_PARAMETER` for the all-zero state, `NULL_POINTER` / `MISALIGNED`.
///
/// # Safety
/// `state` NULL or valid for 4 `uint32_t`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_rng_next_u32(state: *mut u32, out: *mut u32) -> SimsiamStatus {
    status((|| {
        // SAFETY (both): forwarded from this function's contract.
        let state = unsafe { rng_state(state) }?;
        let mut rng = Xoshiro128PlusPlus::from_state(*state)?;
        let value = rng.next_u32();
        unsafe { write_out(out, value) }?;
        *state = rng.state();
        Ok(())
    })())
}

/// The learning rate of step `step` of `total` on the cosine schedule from `lr` to 0
/// (`simsiam::train::cosine_lr`).
#[unsafe(no_mangle)]
pub extern "C" fn simsiam_cosine_lr(lr: f32, step: u64, total: u64) -> f32 {
    cosine_lr(lr, step, total)
}

/// `window` (`channels × len`, channel-major) standardised in place:
/// `(v − mean[c]) / std[c]`.
///
/// Errors: `INVALID_PARAMETER`, `DIMENSION_MISMATCH`, `NON_FINITE`, `NULL_POINTER` /
/// `MISALIGNED`, `OVERLAP`.
///
/// # Safety
/// `window` NULL or valid for `channels·len` floats; `mean`, `std` NULL or readable
/// for `channels` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_standardize(
    window: *mut f32,
    channels: usize,
    len: usize,
    mean: *const f32,
    std: *const f32,
) -> SimsiamStatus {
    status((|| {
        let total = channels
            .checked_mul(len)
            .ok_or(SimsiamStatus::InvalidParameter)?;
        check_disjoint(
            Region::floats(window, total),
            &[
                Region::floats(mean, channels),
                Region::floats(std, channels),
            ],
        )?;
        // SAFETY (all): forwarded from this function's contract.
        let mean = unsafe { input(mean, channels) }?;
        let std = unsafe { input(std, channels) }?;
        let window = unsafe { output(window, total) }?;
        Ok(standardize(window, channels, len, mean, std)?)
    })())
}

/// Two augmented views of the raw window `raw` (`channels × len`) into `view1`,
/// `view2`, drawing from the generator `state` (advanced): `Augmenter::two_views` of
/// the HAPT recipe's order (rotation, standardisation with `mean`/`std`, scale, jitter).
///
/// Errors: `INVALID_PARAMETER` (shape, sigmas, state), `NON_FINITE`, `NULL_POINTER` /
/// `MISALIGNED`, `OVERLAP`.
///
/// # Safety
/// `raw`, `view1`, `view2` NULL or valid for `channels·len` floats; `mean`, `std` for
/// `channels`; `state` for 4 `uint32_t`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn simsiam_two_views(
    raw: *const f32,
    channels: usize,
    len: usize,
    mean: *const f32,
    std: *const f32,
    recipe: SimsiamViewRecipe,
    state: *mut u32,
    view1: *mut f32,
    view2: *mut f32,
) -> SimsiamStatus {
    status((|| {
        let total = channels
            .checked_mul(len)
            .ok_or(SimsiamStatus::InvalidParameter)?;
        let inputs = [
            Region::floats(raw, total),
            Region::floats(mean, channels),
            Region::floats(std, channels),
            Region {
                start: state as usize,
                len: 4 * size_of::<u32>(),
            },
        ];
        check_disjoint(Region::floats(view1, total), &inputs)?;
        check_disjoint(Region::floats(view2, total), &inputs)?;
        check_disjoint(
            Region::floats(view1, total),
            &[Region::floats(view2, total)],
        )?;
        // SAFETY (all): forwarded from this function's contract.
        let raw = unsafe { input(raw, total) }?;
        let mean = unsafe { input(mean, channels) }?;
        let std = unsafe { input(std, channels) }?;
        let state = unsafe { rng_state(state) }?;
        let view1 = unsafe { output(view1, total) }?;
        let view2 = unsafe { output(view2, total) }?;
        let recipe = ViewRecipe {
            rotate: recipe.rotate != 0,
            scale_sigma: recipe.scale_sigma,
            jitter_sigma: recipe.jitter_sigma,
        };
        let augmenter = Augmenter::new(recipe, channels, len, mean, std)?;
        let mut rng = Xoshiro128PlusPlus::from_state(*state)?;
        augmenter.two_views(raw, &mut rng, view1, view2)?;
        *state = rng.state();
        Ok(())
    })())
}

/// Floats of the few-shot classifier's storage for `classes` classes of `dim`-float
/// features (`NearestClassMean::storage_len`) into `*out`.
///
/// Errors: `INVALID_PARAMETER`, `NULL_POINTER` / `MISALIGNED`.
///
/// # Safety
/// `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_fewshot_storage_len(
    dim: usize,
    classes: usize,
    out: *mut usize,
) -> SimsiamStatus {
    status((|| {
        let len = NearestClassMean::<&mut [f32]>::storage_len(dim, classes)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { write_out(out, len) }
    })())
}

/// An empty few-shot classifier in `storage` (zeroed).
///
/// Errors: `INVALID_PARAMETER`, `DIMENSION_MISMATCH`, `NULL_POINTER` / `MISALIGNED`.
///
/// # Safety
/// `storage` NULL or valid for `storage_len` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_fewshot_init(
    dim: usize,
    classes: usize,
    storage: *mut f32,
    storage_len: usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY: forwarded from this function's contract.
        let storage = unsafe { output(storage, storage_len) }?;
        NearestClassMean::new(dim, classes, storage)?;
        Ok(())
    })())
}

/// Adds one labelled feature (`dim` floats) of class `class_index` to the classifier in
/// `storage` (`NearestClassMean::add`).
///
/// Errors: `INVALID_PARAMETER` (class, storage), `DIMENSION_MISMATCH`, `NON_FINITE`,
/// `NULL_POINTER` / `MISALIGNED`, `OVERLAP`.
///
/// # Safety
/// `storage` NULL or valid for `storage_len` floats; `feature` for `dim` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_fewshot_add(
    dim: usize,
    classes: usize,
    storage: *mut f32,
    storage_len: usize,
    feature: *const f32,
    class_index: usize,
) -> SimsiamStatus {
    status((|| {
        check_disjoint(
            Region::floats(storage, storage_len),
            &[Region::floats(feature, dim)],
        )?;
        // SAFETY (both): forwarded from this function's contract.
        let feature = unsafe { input(feature, dim) }?;
        let storage = unsafe { output(storage, storage_len) }?;
        let mut classifier = NearestClassMean::from_storage(dim, classes, storage)?;
        Ok(classifier.add(feature, class_index)?)
    })())
}

/// The class of `feature` (`NearestClassMean::predict`) into `*class_out`.
///
/// Errors: `INVALID_PARAMETER` (storage, no window added yet), `DIMENSION_MISMATCH`,
/// `NON_FINITE`, `NULL_POINTER` / `MISALIGNED`.
///
/// # Safety
/// `storage` NULL or valid for reading `storage_len` floats; `feature` `dim` floats;
/// `class_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simsiam_fewshot_predict(
    dim: usize,
    classes: usize,
    storage: *const f32,
    storage_len: usize,
    feature: *const f32,
    class_out: *mut usize,
) -> SimsiamStatus {
    status((|| {
        // SAFETY (all): forwarded from this function's contract.
        let storage = unsafe { input(storage, storage_len) }?;
        let feature = unsafe { input(feature, dim) }?;
        let classifier = NearestClassMean::from_storage(dim, classes, StorageRef(storage))?;
        let class = classifier.predict(feature)?;
        unsafe { write_out(class_out, class) }
    })())
}

/// Read-only storage for `NearestClassMean::predict` (which never writes; the type's
/// bound asks for `AsMut`, which this refuses by handing out an empty slice).
struct StorageRef<'a>(&'a [f32]);

impl AsRef<[f32]> for StorageRef<'_> {
    fn as_ref(&self) -> &[f32] {
        self.0
    }
}

impl AsMut<[f32]> for StorageRef<'_> {
    fn as_mut(&mut self) -> &mut [f32] {
        &mut []
    }
}
