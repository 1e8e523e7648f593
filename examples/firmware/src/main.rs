//! The simsiam head on a Cortex-M4F (QEMU `mps2-an386`), parameters in flash.
//!
//! Runs project / predict / loss of the shared scenario (see
//! `capi/examples/reference.rs`) on one kernel twin, chosen at compile time (feature
//! `scalar`), and prints `params.fnv` (a hash of the flash parameters) and the results as
//! `key hex-bits...` lines over semihosting, which `reference compare FILE simd` (or
//! `scalar`) checks bit for bit against the host; then the instructions each call
//! executed (SysTick under `-icount shift=0`) and the stack one `loss` used (stack
//! painting). Exits through semihosting: 0 on success.
//!
//! Then the same for a trained head: the official SimSiam head (BatchNorm, 3-layer
//! projector) that `simsiam-convert import` made from the PyTorch fixture
//! `tests/data/official_head.pth.tar`, as the parameter image
//! `tests/data/official_head.simsiam`, embedded 64-byte aligned and run in place from
//! flash (`SimSiamHead::from_image`): `image.fnv` and `image.project/predict/loss`,
//! checked by `reference compare FILE TWIN --image-file tests/data/official_head.simsiam`.
//!
//! Then (feature `train`, on by default) training: the reference head's parameters copied
//! from flash into a RAM `static`, three `Sgd::step`s at batch 8 (`TrainConfig::default()`,
//! the lr set per step by `cosine_lr(0.05, step, 3)`) on batches drawn on the device from
//! `LcgRng`, each step's loss printed as it is taken (`train.stepS.loss`), then hashes of
//! the batches, of the trained weights, of the momentum buffer and of the last step's
//! input gradients, checked by `reference compare FILE TWIN --train`; with the
//! instructions of each step, the stack of one step (stack painting) and the RAM of the
//! training statics.
//!
//! No `core::fmt`: lines are built by hand, so the image holds no formatting machinery
//! and no panic path.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;

use cortex_m::peripheral::{SYST, syst::SystClkSource};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use simsiam::image::AlignedImage;
use simsiam::{SimSiamHead, SslError};

include!(concat!(env!("OUT_DIR"), "/params.rs"));

/// The imported official head's parameter image, in flash, aligned for in-place use.
macro_rules! official_image_bytes {
    () => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/official_head.simsiam"
        ))
    };
}
const IMAGE_LEN: usize = official_image_bytes!().len();
static IMAGE: AlignedImage<[u8; IMAGE_LEN]> = AlignedImage(*official_image_bytes!());
/// Room for the image head's vectors (its widths are checked against it at run time).
const IMAGE_WIDTH: usize = 64;
/// Room for its workspace: `Architecture::workspace_len(1)` (checked at run time).
const IMAGE_WORKSPACE: usize = 4 * IMAGE_WIDTH + 2 * IMAGE_WIDTH;

#[cfg(not(feature = "scalar"))]
#[cfg_attr(feature = "baseline", allow(dead_code))]
type Twin = simsiam::kernels::Simd;
#[cfg(not(feature = "scalar"))]
const TWIN: &str = "simd";
#[cfg(feature = "scalar")]
#[cfg_attr(feature = "baseline", allow(dead_code))]
type Twin = simsiam::kernels::Scalar;
#[cfg(feature = "scalar")]
const TWIN: &str = "scalar";

const D_ENCODER: usize = CONFIG.d_encoder;
const D_OUT: usize = CONFIG.d_out;
/// SysTick counts the 25 MHz system clock; under `-icount shift=0` QEMU executes one
/// instruction per nanosecond, so one tick is 40 instructions.
const INSTRUCTIONS_PER_TICK: u32 = 40;
/// Repetitions of `loss` timed together, for a finer per-call count.
const REPEATS: u32 = 10;
/// Iterations of the calibration loop (`2 * CALIBRATION_LOOPS` instructions).
const CALIBRATION_LOOPS: u32 = 100_000;

/// One output line, built without `core::fmt`.
struct Line {
    buf: [u8; 400],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: [0; 400],
            len: 0,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    fn hex32(&mut self, value: u32) -> &mut Self {
        let digits = b"0123456789abcdef";
        for shift in (0..8).rev() {
            let nibble = (value >> (shift * 4)) & 0xf;
            self.bytes(
                digits
                    .get(nibble as usize..=nibble as usize)
                    .unwrap_or(b"?"),
            );
        }
        self
    }

    fn dec(&mut self, value: u32) -> &mut Self {
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

    fn hex64(&mut self, value: u64) -> &mut Self {
        self.hex32((value >> 32) as u32).hex32(value as u32)
    }

    /// `value` with six decimals (enough for a human; the hex line is the exact value).
    fn fixed6(&mut self, value: f32) -> &mut Self {
        let micros = (value * 1e6) as i32;
        if micros < 0 {
            self.str("-");
        }
        let micros = micros.unsigned_abs();
        self.dec(micros / 1_000_000).str(".");
        let frac = micros % 1_000_000;
        let mut scale = 100_000;
        while scale > 1 && frac < scale {
            self.str("0");
            scale /= 10;
        }
        self.dec(frac)
    }

    fn values(&mut self, key: &str, values: &[f32]) -> &mut Self {
        self.str(key).str(".").str(TWIN);
        for v in values {
            self.str(" ").hex32(v.to_bits());
        }
        self
    }

    fn print(&mut self) {
        self.str("\n");
        if let Ok(mut out) = hio::hstdout() {
            let _ = out.write_all(self.buf.get(..self.len).unwrap_or_default());
        }
        self.len = 0;
    }
}

fn error_name(error: SslError) -> &'static str {
    match error {
        SslError::DimensionMismatch { .. } => "DimensionMismatch",
        SslError::InvalidParameter { .. } => "InvalidParameter",
        SslError::NonFinite { .. } => "NonFinite",
        SslError::CapacityTooSmall { .. } => "CapacityTooSmall",
        SslError::OutOfMemory { .. } => "OutOfMemory",
        _ => "other",
    }
}

fn fail(what: &str, error: SslError) -> ! {
    Line::new()
        .str("error: ")
        .str(what)
        .str(": ")
        .str(error_name(error))
        .print();
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Instructions `f` executed, from SysTick (24-bit, counting down).
fn count<R>(f: impl FnOnce() -> R) -> (R, u32) {
    let start = SYST::get_current();
    let result = f();
    let end = SYST::get_current();
    let ticks = start.wrapping_sub(end) & 0x00ff_ffff;
    (result, ticks * INSTRUCTIONS_PER_TICK)
}

type Head = SimSiamHead<&'static [f32], Twin>;

/// FNV-1a 64 of bytes (as `reference print`'s `image.fnv`).
fn fnv1a_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(not(feature = "baseline"))]
mod run {
    use super::{D_OUT, Head, Twin};
    use simsiam::{SimSiamHead, SslResult};

    #[inline(never)]
    pub fn head() -> SslResult<Head> {
        Ok(SimSiamHead::from_params(super::CONFIG, &super::PARAMS[..])?.with_kernels::<Twin>())
    }

    #[inline(never)]
    pub fn project(head: &Head, z: &[f32], out: &mut [f32]) -> SslResult<()> {
        head.project_into(z, out, &mut [])
    }

    #[inline(never)]
    pub fn predict(head: &Head, p: &[f32], out: &mut [f32]) -> SslResult<()> {
        head.predict_into(p, out, &mut [])
    }

    #[inline(never)]
    pub fn loss(head: &Head, z1: &[f32], z2: &[f32], ws: &mut [f32; 4 * D_OUT]) -> SslResult<f32> {
        head.loss(z1, z2, ws)
    }

    /// The trained head, viewed in place in the flash image (validated: checksum,
    /// layer table, finiteness).
    #[inline(never)]
    pub fn image_head() -> SslResult<Head> {
        Ok(SimSiamHead::from_image(&super::IMAGE.0[..])?.with_kernels::<Twin>())
    }

    #[inline(never)]
    pub fn project_ws(head: &Head, z: &[f32], out: &mut [f32], ws: &mut [f32]) -> SslResult<()> {
        head.project_into(z, out, ws)
    }

    #[inline(never)]
    pub fn predict_ws(head: &Head, p: &[f32], out: &mut [f32], ws: &mut [f32]) -> SslResult<()> {
        head.predict_into(p, out, ws)
    }

    #[inline(never)]
    pub fn loss_ws(head: &Head, z1: &[f32], z2: &[f32], ws: &mut [f32]) -> SslResult<f32> {
        head.loss(z1, z2, ws)
    }
}

/// The same I/O with the head left out: the size baseline.
#[cfg(feature = "baseline")]
mod run {
    use super::{D_OUT, Head, black_box};
    use simsiam::SslResult;

    #[inline(never)]
    pub fn head() -> SslResult<Head> {
        // Never called with real work: `black_box(false)` keeps the types, not the code.
        Err(simsiam::SslError::OutOfMemory {
            floats: black_box(0),
        })
    }

    #[inline(never)]
    pub fn project(_: &Head, z: &[f32], out: &mut [f32]) -> SslResult<()> {
        out.iter_mut().zip(z).for_each(|(o, x)| *o = black_box(*x));
        Ok(())
    }

    #[inline(never)]
    pub fn predict(head: &Head, p: &[f32], out: &mut [f32]) -> SslResult<()> {
        project(head, p, out)
    }

    #[inline(never)]
    pub fn loss(_: &Head, z1: &[f32], _: &[f32], ws: &mut [f32; 4 * D_OUT]) -> SslResult<f32> {
        Ok(black_box(
            z1.first().copied().unwrap_or(0.0) + ws.len() as f32,
        ))
    }

    #[inline(never)]
    pub fn image_head() -> SslResult<Head> {
        head()
    }

    #[inline(never)]
    pub fn project_ws(head: &Head, z: &[f32], out: &mut [f32], _: &mut [f32]) -> SslResult<()> {
        project(head, z, out)
    }

    #[inline(never)]
    pub fn predict_ws(head: &Head, p: &[f32], out: &mut [f32], _: &mut [f32]) -> SslResult<()> {
        project(head, p, out)
    }

    #[inline(never)]
    pub fn loss_ws(_: &Head, z1: &[f32], _: &[f32], ws: &mut [f32]) -> SslResult<f32> {
        Ok(black_box(
            z1.first().copied().unwrap_or(0.0) + ws.len() as f32,
        ))
    }
}

/// Stack painting: fill the stack below the caller with a pattern, run, and find the
/// deepest word that changed.
#[allow(unsafe_code)]
mod stack {
    const PAINT: u32 = 0x5afe_c0de;
    /// Bytes left unpainted just below the caller's stack pointer, for `paint`'s own frame.
    const GUARD: usize = 256;
    /// Bytes painted below the guard.
    const DEPTH: usize = 32 * 1024;

    /// The painted region `[bottom, top)` below the caller's stack pointer `sp`.
    pub fn region(sp: usize) -> (usize, usize) {
        let top = sp - GUARD;
        (top - DEPTH, top)
    }

    #[inline(never)]
    pub fn paint(sp: usize) {
        let (bottom, top) = region(sp);
        for addr in (bottom..top).step_by(4) {
            // SAFETY: `[bottom, top)` is RAM below the live stack (the statics take under
            // 256 KiB at the bottom of the 4 MiB RAM, the stack grows down from its top,
            // nothing else runs), word aligned, and no Rust reference points into it.
            unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
        }
    }

    /// Bytes between `sp` and the deepest word written since `paint(sp)`.
    #[inline(never)]
    pub fn used(sp: usize) -> usize {
        let (bottom, top) = region(sp);
        let deepest = (bottom..top)
            .step_by(4)
            // SAFETY: as in `paint`; reading words that may have been written by calls
            // that have returned.
            .find(|&addr| unsafe { core::ptr::read_volatile(addr as *const u32) } != PAINT)
            .unwrap_or(top);
        sp - deepest
    }
}

/// FNV-1a 64 of the parameters' bits, little-endian (as `reference print`'s
/// `params.fnv`): proves the flash holds the host's parameters bit for bit.
fn fnv1a(values: &[f32]) -> u64 {
    fnv1a_extend(0xcbf2_9ce4_8422_2325, values)
}

/// FNV-1a 64 continued from `hash` over more floats' bits (a hash of several slices
/// one after the other).
fn fnv1a_extend(mut hash: u64, values: &[f32]) -> u64 {
    for value in values {
        for byte in value.to_bits().to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The trained head from the flash image: the same inputs as the scenario, its own width.
fn image_scenario(line: &mut Line) {
    let image_fnv = fnv1a_bytes(black_box(&IMAGE.0[..]));
    let (head, init_instructions) = count(run::image_head);
    let head = head.unwrap_or_else(|e| fail("from_image", e));
    let (d_encoder, d_out) = (head.d_encoder(), head.d_out());
    let fits = d_encoder <= IMAGE_WIDTH
        && d_out <= IMAGE_WIDTH
        && head
            .architecture()
            .workspace_len(1)
            .is_ok_and(|n| n <= IMAGE_WORKSPACE);
    if !fits {
        line.str("error: the image head is wider than IMAGE_WIDTH")
            .print();
        debug::exit(debug::EXIT_FAILURE);
    }
    let mut z1 = [0.0_f32; IMAGE_WIDTH];
    let mut z2 = [0.0_f32; IMAGE_WIDTH];
    for (i, (a, b)) in z1.iter_mut().zip(z2.iter_mut()).enumerate() {
        *a = ((i * 7) % 13) as f32 * 0.125 - 0.75;
        *b = ((i * 5) % 11) as f32 * 0.125 - 0.625;
    }
    // `get`, not indexing: no panic path (the widths were checked above).
    let (z1, z2) = (
        black_box(z1.get(..d_encoder).unwrap_or_default()),
        black_box(z2.get(..d_encoder).unwrap_or_default()),
    );
    let mut projected = [0.0_f32; IMAGE_WIDTH];
    let mut predicted = [0.0_f32; IMAGE_WIDTH];
    let (projected, predicted) = (
        projected.get_mut(..d_out).unwrap_or_default(),
        predicted.get_mut(..d_out).unwrap_or_default(),
    );
    let mut workspace = [0.0_f32; IMAGE_WORKSPACE];
    let (result, project_instructions) =
        count(|| run::project_ws(&head, z1, projected, &mut workspace));
    result.unwrap_or_else(|e| fail("image project", e));
    let (result, predict_instructions) =
        count(|| run::predict_ws(&head, projected, predicted, &mut workspace));
    result.unwrap_or_else(|e| fail("image predict", e));
    let (loss, loss_instructions) = count(|| run::loss_ws(&head, z1, z2, &mut workspace));
    let loss = loss.unwrap_or_else(|e| fail("image loss", e));
    let sp = cortex_m::register::msp::read() as usize;
    stack::paint(sp);
    let again = run::loss_ws(&head, z1, z2, &mut workspace);
    let stack_bytes = stack::used(sp);
    if again != Ok(loss) {
        line.str("error: second image loss differs").print();
        debug::exit(debug::EXIT_FAILURE);
    }

    line.str("# the imported official head (BatchNorm, 3-layer projector), image in flash: ")
        .dec(IMAGE_LEN as u32)
        .str(" bytes")
        .print();
    line.str("image.fnv ").hex64(image_fnv).print();
    line.values("image.project", projected).print();
    line.values("image.predict", predicted).print();
    line.values("image.loss", &[loss]).print();
    line.str("# image instructions: from_image ")
        .dec(init_instructions)
        .str(", project ")
        .dec(project_instructions)
        .str(", predict ")
        .dec(predict_instructions)
        .str(", loss ")
        .dec(loss_instructions)
        .str(" (SysTick x 40, +-40)")
        .print();
    line.str("# image stack: loss ")
        .dec(stack_bytes as u32)
        .str(" bytes (painted high-water mark)")
        .print();
}

/// Training on the device (see `capi/examples/reference.rs`, `--train`, for the scenario):
/// the reference head's parameters copied from flash into RAM, `TRAIN_STEPS` SGD steps at
/// batch `TRAIN_N`, every buffer a `static` in `.bss`.
#[cfg(all(feature = "train", not(feature = "baseline")))]
mod train {
    use super::{CONFIG, D_ENCODER, Line, PARAMS, TWIN, Twin, count, fail, fnv1a, fnv1a_extend};
    use cortex_m_semihosting::debug;
    use simsiam::train::{Sgd, TrainConfig, cosine_lr, scratch_len};
    use simsiam::{LcgRng, SimSiamHead, SslResult};

    /// Pairs per batch.
    pub const TRAIN_N: usize = 8;
    /// Steps taken (the cosine schedule runs over them).
    pub const TRAIN_STEPS: u64 = 3;
    /// The seed of the batches (the same in `capi/examples/reference.rs`).
    pub const TRAIN_SEED: u64 = 11;
    /// Floats of the head's parameters (and of the momentum buffer): `CONFIG`'s
    /// `param_count`, checked at run time by `from_params` and `Sgd::new`.
    pub const PARAM_COUNT: usize = 16_640;
    /// Floats of the step's scratch: `scratch_len(reference head, TRAIN_N)`, checked at run
    /// time (a mismatch prints an error; update this constant and the RAM budget).
    pub const SCRATCH_LEN: usize = 24_352;
    /// Floats of one view's batch (and of its input gradients).
    pub const ROWS: usize = TRAIN_N * D_ENCODER;
    const STEPS: usize = TRAIN_STEPS as usize;

    type TrainHead = SimSiamHead<&'static mut [f32], Twin>;

    /// The training buffers, each a `static` in `.bss` (their symbol sizes are the RAM the
    /// scenario takes; CI reads them with `nm`).
    #[allow(unsafe_code)]
    mod ram {
        use super::{PARAM_COUNT, ROWS, SCRATCH_LEN};
        use core::cell::UnsafeCell;
        use core::sync::atomic::{AtomicBool, Ordering};

        /// A buffer in `.bss` that [`take`] hands out once.
        struct Buffer<T>(UnsafeCell<T>);

        // SAFETY: the contents are reached only through the one `&mut` that `take` makes
        // (once, guarded by `TAKEN`), and the firmware runs no other thread or interrupt.
        unsafe impl<T> Sync for Buffer<T> {}

        impl<T> Buffer<T> {
            /// The buffer's contents.
            ///
            /// # Safety
            /// At most once per buffer, and no other reference to it may exist.
            #[allow(clippy::mut_from_ref)]
            unsafe fn get(&'static self) -> &'static mut T {
                // SAFETY: the caller makes this the only reference; the cell is never
                // accessed otherwise.
                unsafe { &mut *self.0.get() }
            }
        }

        static TRAIN_PARAMS: Buffer<[f32; PARAM_COUNT]> =
            Buffer(UnsafeCell::new([0.0; PARAM_COUNT]));
        static TRAIN_MOMENTUM: Buffer<[f32; PARAM_COUNT]> =
            Buffer(UnsafeCell::new([0.0; PARAM_COUNT]));
        static TRAIN_SCRATCH: Buffer<[f32; SCRATCH_LEN]> =
            Buffer(UnsafeCell::new([0.0; SCRATCH_LEN]));
        static TRAIN_BATCH: Buffer<[[f32; ROWS]; 2]> = Buffer(UnsafeCell::new([[0.0; ROWS]; 2]));
        static TRAIN_INPUT_GRADS: Buffer<[[f32; ROWS]; 2]> =
            Buffer(UnsafeCell::new([[0.0; ROWS]; 2]));
        static TAKEN: AtomicBool = AtomicBool::new(false);

        /// Exclusive references to every training buffer.
        pub struct Ram {
            pub params: &'static mut [f32; PARAM_COUNT],
            pub momentum: &'static mut [f32; PARAM_COUNT],
            pub scratch: &'static mut [f32; SCRATCH_LEN],
            pub batch: &'static mut [[f32; ROWS]; 2],
            pub input_grads: &'static mut [[f32; ROWS]; 2],
        }

        /// The buffers, the first time only (`None` after).
        pub fn take() -> Option<Ram> {
            if TAKEN.swap(true, Ordering::AcqRel) {
                return None;
            }
            // SAFETY: `TAKEN` lets this run once, so these are the only references to the
            // buffers ever made.
            unsafe {
                Some(Ram {
                    params: TRAIN_PARAMS.get(),
                    momentum: TRAIN_MOMENTUM.get(),
                    scratch: TRAIN_SCRATCH.get(),
                    batch: TRAIN_BATCH.get(),
                    input_grads: TRAIN_INPUT_GRADS.get(),
                })
            }
        }

        /// Bytes of each static, as the linker places them: params, momentum, scratch,
        /// batch, input gradients.
        pub const SIZES: [usize; 5] = [
            size_of::<[f32; PARAM_COUNT]>(),
            size_of::<[f32; PARAM_COUNT]>(),
            size_of::<[f32; SCRATCH_LEN]>(),
            size_of::<[[f32; ROWS]; 2]>(),
            size_of::<[[f32; ROWS]; 2]>(),
        ];
    }

    fn error(message: &str) -> ! {
        Line::new().str("error: ").str(message).print();
        debug::exit(debug::EXIT_FAILURE);
        #[allow(clippy::empty_loop)]
        loop {}
    }

    /// The head over the RAM copy of the parameters (checked once).
    #[inline(never)]
    fn head(params: &'static mut [f32]) -> SslResult<TrainHead> {
        Ok(SimSiamHead::from_params(CONFIG, params)?.with_kernels::<Twin>())
    }

    /// One training step (kept out of line: its stack is what the painting measures).
    #[inline(never)]
    fn step(
        sgd: &mut Sgd<&mut [f32]>,
        head: &mut TrainHead,
        xs: [&[f32]; 2],
        scratch: &mut [f32],
        input_grads: [&mut [f32]; 2],
    ) -> SslResult<f32> {
        sgd.step(head, xs[0], xs[1], scratch, input_grads)
    }

    /// One batch: `x1 = 2u − 1` for each float, then `x2 = x1 + (2u − 1)/4` (`u` from
    /// `next_f32`, all of `x1s` drawn first).
    fn batch(rng: &mut LcgRng, x1s: &mut [f32], x2s: &mut [f32]) {
        for x in x1s.iter_mut() {
            *x = rng.next_f32() * 2.0 - 1.0;
        }
        for (x2, x1) in x2s.iter_mut().zip(x1s.iter()) {
            *x2 = *x1 + (rng.next_f32() * 2.0 - 1.0) * 0.25;
        }
    }

    pub fn scenario(line: &mut Line) {
        let Some(ram::Ram {
            params,
            momentum,
            scratch,
            batch: [x1s, x2s],
            input_grads: [g1, g2],
        }) = ram::take()
        else {
            error("the training buffers are taken")
        };
        if PARAMS.len() != PARAM_COUNT {
            error("PARAMS is not PARAM_COUNT long: update PARAM_COUNT");
        }
        // Flash to RAM.
        for (dst, src) in params.iter_mut().zip(PARAMS.iter()) {
            *dst = *src;
        }
        let config = TrainConfig::default();
        let mut head = head(params).unwrap_or_else(|e| fail("train head", e));
        let needed =
            scratch_len(head.architecture(), TRAIN_N).unwrap_or_else(|e| fail("scratch_len", e));
        if needed != SCRATCH_LEN {
            line.str("error: scratch_len(head, ")
                .dec(TRAIN_N as u32)
                .str(") = ")
                .dec(needed as u32)
                .str(" floats, the static holds ")
                .dec(SCRATCH_LEN as u32)
                .str(": update SCRATCH_LEN")
                .print();
            debug::exit(debug::EXIT_FAILURE);
        }
        let mut sgd = Sgd::new(head.architecture(), config, &mut momentum[..])
            .unwrap_or_else(|e| fail("Sgd::new", e));
        let scratch = &mut scratch[..];

        line.str("# training on the device: reference head copied from flash to RAM, ")
            .dec(TRAIN_STEPS as u32)
            .str(" SGD steps at batch ")
            .dec(TRAIN_N as u32)
            .str(", lr cosine_lr(0.05, step, ")
            .dec(TRAIN_STEPS as u32)
            .str(")")
            .print();
        let mut rng = LcgRng::new(TRAIN_SEED);
        let mut batches_fnv = fnv1a(&[]);
        let mut lrs = [0.0_f32; STEPS];
        let mut instructions = [0_u32; STEPS];
        let mut stack_bytes = 0;
        for (step_index, (lr_slot, instructions_slot)) in
            lrs.iter_mut().zip(instructions.iter_mut()).enumerate()
        {
            batch(&mut rng, x1s, x2s);
            batches_fnv = fnv1a_extend(fnv1a_extend(batches_fnv, x1s), x2s);
            let lr = cosine_lr(config.lr, step_index as u64, TRAIN_STEPS);
            sgd.set_lr(lr);
            // The last step runs over a painted stack.
            let last = step_index + 1 == STEPS;
            let sp = cortex_m::register::msp::read() as usize;
            if last {
                super::stack::paint(sp);
            }
            let (loss, step_instructions) = count(|| {
                step(
                    &mut sgd,
                    &mut head,
                    [&x1s[..], &x2s[..]],
                    scratch,
                    [&mut g1[..], &mut g2[..]],
                )
            });
            if last {
                stack_bytes = super::stack::used(sp);
            }
            let loss = loss.unwrap_or_else(|e| fail("train step", e));
            (*lr_slot, *instructions_slot) = (lr, step_instructions);
            let number = step_index as u32 + 1;
            line.str("train.step")
                .dec(number)
                .str(".loss")
                .values("", &[loss])
                .print();
            line.str("# step ")
                .dec(number)
                .str(": lr ")
                .fixed6(lr)
                .str(", loss ")
                .fixed6(loss)
                .str(", ")
                .dec(step_instructions)
                .str(" instructions")
                .print();
        }

        line.str("train.fnv ").hex64(batches_fnv).print();
        line.values("train.lr", &lrs).print();
        let hashes = [
            ("train.params.fnv.", fnv1a(head.params())),
            ("train.momentum.fnv.", fnv1a(sgd.momentum())),
            ("train.grads.fnv.", fnv1a_extend(fnv1a(&g1[..]), &g2[..])),
        ];
        for (key, hash) in hashes {
            line.str(key).str(TWIN).str(" ").hex64(hash).print();
        }
        line.str("# train instructions:");
        for (i, n) in instructions.iter().enumerate() {
            line.str(if i == 0 { " step " } else { ", step " })
                .dec(i as u32 + 1)
                .str(" ")
                .dec(*n);
        }
        line.str(" (SysTick x 40, +-40)").print();
        line.str("# train stack: step ")
            .dec(stack_bytes as u32)
            .str(" bytes (painted high-water mark of step ")
            .dec(TRAIN_STEPS as u32)
            .str(" at batch ")
            .dec(TRAIN_N as u32)
            .str(", from the caller's SP)")
            .print();
        let [params, momentum, scratch_bytes, batch_bytes, grads] = ram::SIZES;
        line.str("# train ram: params ")
            .dec(params as u32)
            .str(", momentum ")
            .dec(momentum as u32)
            .str(", scratch ")
            .dec(scratch_bytes as u32)
            .str(" (scratch_len ")
            .dec(needed as u32)
            .str(" floats), batch ")
            .dec(batch_bytes as u32)
            .str(", input gradients ")
            .dec(grads as u32)
            .str("; total ")
            .dec(ram::SIZES.iter().sum::<usize>() as u32)
            .str(" bytes (statics in .bss)")
            .print();
    }
}

fn input(mul: usize, modulus: usize, offset: f32) -> [f32; D_ENCODER] {
    let mut z = [0.0; D_ENCODER];
    for (i, zi) in z.iter_mut().enumerate() {
        *zi = ((i * mul) % modulus) as f32 * 0.125 - offset;
    }
    z
}

/// Reached only if something panics, which CI proves cannot happen: the linked image
/// holds no `panic` symbol and no `rust_begin_unwind` (this handler is dropped unused).
#[panic_handler]
fn halt(_: &core::panic::PanicInfo<'_>) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[entry]
fn main() -> ! {
    let Some(mut peripherals) = cortex_m::Peripherals::take() else {
        debug::exit(debug::EXIT_FAILURE);
        #[allow(clippy::empty_loop)]
        loop {}
    };
    let syst = &mut peripherals.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00ff_ffff);
    syst.clear_current();
    syst.enable_counter();

    // Calibration: `delay(n - 1)` runs `n` iterations of `subs; bne`, 2n instructions.
    let (_, calibration) = count(|| cortex_m::asm::delay(CALIBRATION_LOOPS - 1));

    // `black_box`: hash what the flash holds at run time, not a constant folded at build.
    let params_fnv = fnv1a(black_box(&PARAMS[..]));
    let z1 = black_box(input(7, 13, 0.75));
    let z2 = black_box(input(5, 11, 0.625));
    let mut projected = [0.0_f32; D_OUT];
    let mut predicted = [0.0_f32; D_OUT];
    let mut workspace = [0.0_f32; 4 * D_OUT];

    let (head, init_instructions) = count(run::head);
    let head = head.unwrap_or_else(|e| fail("from_params", e));
    let (result, project_instructions) = count(|| run::project(&head, &z1, &mut projected));
    result.unwrap_or_else(|e| fail("project", e));
    let (result, predict_instructions) = count(|| run::predict(&head, &projected, &mut predicted));
    result.unwrap_or_else(|e| fail("predict", e));
    let (loss, loss_instructions) = count(|| run::loss(&head, &z1, &z2, &mut workspace));
    let loss = loss.unwrap_or_else(|e| fail("loss", e));
    let (_, repeated_instructions) = count(|| {
        for _ in 0..REPEATS {
            let _ = black_box(run::loss(&head, &z1, &z2, &mut workspace));
        }
    });

    let sp = cortex_m::register::msp::read() as usize;
    stack::paint(sp);
    let again = run::loss(&head, &z1, &z2, &mut workspace);
    let stack_bytes = stack::used(sp);
    if again != Ok(loss) {
        Line::new().str("error: second loss differs").print();
        debug::exit(debug::EXIT_FAILURE);
    }

    let mut line = Line::new();
    line.str("# simsiam on Cortex-M4F (mps2-an386), ")
        .str(TWIN)
        .str(" twin, parameters in flash")
        .print();
    line.str("params.fnv ").hex64(params_fnv).print();
    line.values("project", &projected).print();
    line.values("predict", &predicted).print();
    line.values("loss", &[loss]).print();
    line.str("# loss = ").fixed6(loss).print();
    line.str("# instructions: from_params ")
        .dec(init_instructions)
        .str(", project ")
        .dec(project_instructions)
        .str(", predict ")
        .dec(predict_instructions)
        .str(", loss ")
        .dec(loss_instructions)
        .str(" (SysTick x 40, +-40); loss x ")
        .dec(REPEATS)
        .str(" = ")
        .dec(repeated_instructions)
        .print();
    line.str("# calibration: ")
        .dec(2 * CALIBRATION_LOOPS)
        .str(" instructions counted as ")
        .dec(calibration)
        .print();
    line.str("# stack: loss ")
        .dec(stack_bytes as u32)
        .str(" bytes (painted high-water mark); workspace ")
        .dec((4 * D_OUT * 4) as u32)
        .str(" bytes (caller's)")
        .print();

    image_scenario(&mut line);
    #[cfg(all(feature = "train", not(feature = "baseline")))]
    train::scenario(&mut line);
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}
