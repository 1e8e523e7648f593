//! The on-device SimSiam run of issue 22, shared word for word by the firmware
//! (`examples/firmware-ssl`, `#![no_std]`) and its host replay
//! (`hapt/examples/mcu_replay.rs`, which includes this file): the same code on the same
//! data gives the same bits, which CI checks line by line.
//!
//! 1. The network `HarDense::MCU` initialised from [`SEED`] (`LcgRng`, PyTorch's rule).
//! 2. Few-shot accuracy before: the labelled windows (5 per class) standardised and
//!    encoded (eval mode) into a `NearestClassMean`; each test window classified.
//! 3. [`STEPS`] SimSiam steps at [`BATCH`] pairs: each epoch a Fisher–Yates shuffle of
//!    the training slice (one `Xoshiro128PlusPlus` from [`SEED`]), each batch's two views
//!    window by window (`Augmenter::two_views`, the HAPT recipe), `Sgd::step` at the
//!    cosine learning rate from [`LR`] to 0 over the run, the predictor on the schedule,
//!    momentum 0.9, weight decay 1e-4.
//! 4. Few-shot accuracy after, as in 2.
//!
//! Lines (each built in a [`Line`] and handed to `print`): every step's loss as bits,
//! the parameters' FNV-1a hash before and after training, every test window's prediction
//! before and after, and the accuracy line of the issue.

use simsiam::augment::{Augmenter, ViewRecipe, Xoshiro128PlusPlus, standardize};
use simsiam::fewshot::NearestClassMean;
use simsiam::kernels::Kernels;
use simsiam::model::{Architecture, HarDense, SimSiamHead};
use simsiam::train::{Sgd, TrainConfig, cosine_lr};
use simsiam::{LcgRng, SslError, SslResult};

/// The recipe's name in the summary line.
pub const RECIPE: &str = "hapt-mcu";
/// Seed of the initialisation, the shuffle and the augmentations.
pub const SEED: u64 = 22;
/// Training steps on the device.
pub const STEPS: usize = 500;
/// Pairs per step.
pub const BATCH: usize = 32;
/// The initial learning rate (cosine to 0 over [`STEPS`]).
pub const LR: f32 = 0.05;
/// Activity classes (HAPT's 1–6, stored as 0–5).
pub const CLASSES: usize = 6;
/// Channels of a window.
pub const CHANNELS: usize = 6;
/// Samples of a window (HAPT's 128 averaged over runs of 4).
pub const SAMPLES: usize = 32;
/// Floats of a window.
pub const WINDOW: usize = CHANNELS * SAMPLES;
/// The encoder's output width.
pub const FEATURE: usize = 32;
/// Parameters of `HarDense::MCU`.
pub const PARAMS: usize = 10_784;
/// Floats of `scratch_len(HarDense::MCU, BATCH)` (checked at run time).
pub const SCRATCH: usize = 55_488;
/// Floats of `workspace_len(1)`, the eval encoder's workspace for one window (checked).
pub const WORKSPACE: usize = 576;
/// Floats of the classifier's storage.
pub const CLASSIFIER: usize = (CLASSES + 2) * FEATURE + CLASSES + 1;

/// The data the run reads (in flash on the device): raw windows (`[C, T]` each,
/// channel-major, averaged down to [`SAMPLES`]), labels 0–5, the training set's
/// per-channel statistics.
pub struct Data<'a> {
    /// Unlabelled training windows from a few training subjects.
    pub train: &'a [f32],
    /// 5 labelled windows per class.
    pub labelled: &'a [f32],
    /// Their classes.
    pub labelled_classes: &'a [u8],
    /// Test windows from the test subjects.
    pub test: &'a [f32],
    /// Their classes.
    pub test_classes: &'a [u8],
    /// Per-channel mean of the host's training windows.
    pub mean: &'a [f32; CHANNELS],
    /// Per-channel standard deviation of the host's training windows.
    pub std: &'a [f32; CHANNELS],
}

/// Every buffer of the run (statics on the device).
pub struct Buffers<'a> {
    /// The parameters, [`PARAMS`].
    pub params: &'a mut [f32],
    /// SGD's momentum, [`PARAMS`].
    pub momentum: &'a mut [f32],
    /// The step's scratch (the parameter gradients included), [`SCRATCH`].
    pub scratch: &'a mut [f32],
    /// Both views of a batch, `BATCH × WINDOW` each.
    pub views: [&'a mut [f32]; 2],
    /// The shuffle of the training windows (`train.len() / WINDOW`).
    pub order: &'a mut [u16],
    /// One standardised window, [`WINDOW`].
    pub window: &'a mut [f32],
    /// One feature, [`FEATURE`].
    pub feature: &'a mut [f32],
    /// The eval encoder's workspace, [`WORKSPACE`].
    pub workspace: &'a mut [f32],
    /// The classifier's storage, [`CLASSIFIER`].
    pub classifier: &'a mut [f32],
    /// Predictions of the test windows.
    pub predictions: &'a mut [u8],
}

/// Where the run is, for the firmware's instruction counts (the host ignores them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A batch's views are about to be made.
    BatchStart,
    /// The views are made; the step is about to start.
    ViewsDone,
    /// The step is done.
    StepDone,
}

/// One output line, built without `core::fmt` (the same bytes on both sides).
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
        }
    }
}

impl Line {
    /// Appends bytes (dropped past 512).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        self
    }

    /// Appends a string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends 8 lower-case hex digits.
    pub fn hex32(&mut self, value: u32) -> &mut Self {
        for shift in (0..8).rev() {
            let nibble = ((value >> (shift * 4)) & 0xf) as u8;
            let digit = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            self.bytes(&[digit]);
        }
        self
    }

    /// Appends 16 hex digits.
    pub fn hex64(&mut self, value: u64) -> &mut Self {
        self.hex32((value >> 32) as u32).hex32(value as u32)
    }

    /// Appends a decimal.
    pub fn dec(&mut self, value: u32) -> &mut Self {
        let mut digits = [0_u8; 10];
        let mut n = value;
        let mut start = digits.len();
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
            start -= 1;
            if n == 0 {
                break;
            }
        }
        let tail = digits.get(start..).unwrap_or_default();
        self.bytes(tail)
    }

    /// Appends `part / whole` in percent with one decimal, rounded half up.
    pub fn percent(&mut self, part: u32, whole: u32) -> &mut Self {
        let tenths = (part * 2000 + whole.max(1)) / (2 * whole.max(1));
        self.dec(tenths / 10).str(".").dec(tenths % 10)
    }

    /// The line so far, and empties it.
    pub fn take(&mut self) -> &[u8] {
        let len = core::mem::take(&mut self.len);
        self.buf.get(..len).unwrap_or_default()
    }
}

/// FNV-1a 64 of the floats' bits, little-endian.
pub fn fnv1a(values: &[f32]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for value in values {
        for byte in value.to_bits().to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// A uniform index below `n` (Lemire's multiply-and-reject, as the host recipe's).
fn below(rng: &mut Xoshiro128PlusPlus, n: usize) -> usize {
    let n = n as u64;
    loop {
        let m = u64::from(rng.next_u32()) * n;
        if (m as u32 as u64) >= (1u64 << 32) % n.max(1) {
            return (m >> 32) as usize;
        }
    }
}

/// What the run measured: accuracies (correct counts) and the sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Correct test predictions before training.
    pub correct_before: u32,
    /// Correct test predictions after training.
    pub correct_after: u32,
    /// Test windows.
    pub tests: u32,
}

const SHORT: SslError = SslError::InvalidParameter {
    name: "data",
    reason: "a buffer or data slice is not the size the run needs",
};

/// The network.
pub fn architecture() -> SslResult<Architecture> {
    Architecture::har_dense(&HarDense::MCU)
}

/// Standardises the raw window `raw` into `window` and encodes it (eval mode) into
/// `feature`.
fn encode<K: Kernels>(
    head: &SimSiamHead<&mut [f32], K>,
    data: &Data<'_>,
    raw: &[f32],
    [window, feature, workspace]: [&mut [f32]; 3],
) -> SslResult<()> {
    if raw.len() != window.len() {
        return Err(SHORT);
    }
    for (w, &r) in window.iter_mut().zip(raw) {
        *w = r;
    }
    standardize(window, CHANNELS, SAMPLES, data.mean, data.std)?;
    head.encode_into(window, feature, workspace)
}

/// Few-shot accuracy of the network as it is: the labelled windows into the classifier,
/// the test windows classified into `buffers.predictions`; returns the correct count.
fn few_shot<K: Kernels>(
    head: &SimSiamHead<&mut [f32], K>,
    data: &Data<'_>,
    buffers: &mut Buffers<'_>,
) -> SslResult<u32> {
    let Buffers {
        window,
        feature,
        workspace,
        classifier,
        predictions,
        ..
    } = buffers;
    let mut classifier = NearestClassMean::new(FEATURE, CLASSES, &mut **classifier)?;
    for (raw, &class) in data
        .labelled
        .chunks_exact(WINDOW)
        .zip(data.labelled_classes)
    {
        encode(head, data, raw, [window, feature, workspace])?;
        classifier.add(feature, usize::from(class))?;
    }
    let mut correct = 0;
    for ((raw, &truth), prediction) in data
        .test
        .chunks_exact(WINDOW)
        .zip(data.test_classes)
        .zip(predictions.iter_mut())
    {
        encode(head, data, raw, [window, feature, workspace])?;
        *prediction = classifier.predict(feature)? as u8;
        if *prediction == truth {
            correct += 1;
        }
    }
    Ok(correct)
}

/// Prints the predictions of the test windows as one digit each.
fn print_predictions(when: &str, predictions: &[u8], print: &mut dyn FnMut(&[u8])) {
    let mut line = Line::default();
    line.str("# predictions ").str(when).str(" ");
    for &p in predictions {
        line.bytes(&[b'0' + p]);
    }
    print(line.take());
}

/// The whole run on kernels `K`; `print` gets every line, `mark` the step's phases.
///
/// # Errors
/// Any call's error; `InvalidParameter { name: "data" }` for buffers of the wrong size.
pub fn run<K: Kernels>(
    data: &Data<'_>,
    buffers: &mut Buffers<'_>,
    print: &mut dyn FnMut(&[u8]),
    mark: &mut dyn FnMut(Mark),
) -> SslResult<Summary> {
    let architecture = architecture()?;
    let tests = data.test.len() / WINDOW;
    let windows = data.train.len() / WINDOW;
    if architecture.param_count()? != PARAMS
        || simsiam::train::scratch_len(&architecture, BATCH)? != SCRATCH
        || architecture.workspace_len(1)? > WORKSPACE
        || buffers.order.len() != windows
        || buffers.predictions.len() != tests
        || windows < BATCH
    {
        return Err(SHORT);
    }
    architecture.init_params(&mut LcgRng::new(SEED), buffers.params)?;
    let mut line = Line::default();
    line.str("# params init fnv ").hex64(fnv1a(buffers.params));
    print(line.take());

    let params = core::mem::take(&mut buffers.params);
    let mut head = SimSiamHead::new(architecture, params)?.with_kernels::<K>();
    let correct_before = few_shot(&head, data, buffers)?;
    print_predictions("before", buffers.predictions, print);

    let config = TrainConfig {
        lr: LR,
        fix_predictor_lr: false,
        ..TrainConfig::default()
    };
    let momentum = core::mem::take(&mut buffers.momentum);
    let mut sgd = Sgd::new(&architecture, config, momentum)?;
    let augmenter = Augmenter::new(ViewRecipe::HAPT, CHANNELS, SAMPLES, data.mean, data.std)?;
    let mut rng = Xoshiro128PlusPlus::from_seed(SEED);
    for (slot, i) in buffers.order.iter_mut().zip(0_u16..) {
        *slot = i;
    }
    let mut next = windows; // start with a shuffle
    for step in 0..STEPS {
        if next + BATCH > windows {
            for i in (1..windows).rev() {
                let j = below(&mut rng, i + 1);
                let order = &mut *buffers.order;
                if let (Some(&a), Some(&b)) = (order.get(i), order.get(j)) {
                    if let Some(slot) = order.get_mut(i) {
                        *slot = b;
                    }
                    if let Some(slot) = order.get_mut(j) {
                        *slot = a;
                    }
                }
            }
            next = 0;
        }
        mark(Mark::BatchStart);
        let [views1, views2] = &mut buffers.views;
        let batch = buffers.order.get(next..next + BATCH).ok_or(SHORT)?;
        for ((&i, view1), view2) in batch
            .iter()
            .zip(views1.chunks_exact_mut(WINDOW))
            .zip(views2.chunks_exact_mut(WINDOW))
        {
            let start = usize::from(i) * WINDOW;
            let raw = data.train.get(start..start + WINDOW).ok_or(SHORT)?;
            augmenter.two_views(raw, &mut rng, view1, view2)?;
        }
        next += BATCH;
        mark(Mark::ViewsDone);
        sgd.set_lr(cosine_lr(LR, step as u64, STEPS as u64));
        let loss = sgd.step(
            &mut head,
            &views1[..],
            &views2[..],
            buffers.scratch,
            [&mut [], &mut []],
        )?;
        mark(Mark::StepDone);
        line.str("# loss ")
            .dec(step as u32)
            .str(" ")
            .hex32(loss.to_bits());
        print(line.take());
    }
    line.str("# params trained fnv ")
        .hex64(fnv1a(head.params()));
    print(line.take());
    let correct_after = few_shot(&head, data, buffers)?;
    print_predictions("after", buffers.predictions, print);
    let tests = tests as u32;
    line.str("mcu-ssl: few-shot accuracy before ")
        .percent(correct_before, tests)
        .str(" % after ")
        .percent(correct_after, tests)
        .str(" % on ")
        .dec(tests)
        .str(" test windows");
    print(line.take());
    Ok(Summary {
        correct_before,
        correct_after,
        tests,
    })
}
