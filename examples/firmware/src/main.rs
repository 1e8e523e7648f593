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
//! No `core::fmt`: lines are built by hand, so the image holds no formatting machinery
//! and no panic path.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;

use cortex_m::peripheral::{SYST, syst::SystClkSource};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use simsiam::{SimSiamHead, SslError};

include!(concat!(env!("OUT_DIR"), "/params.rs"));

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
            // SAFETY: `[bottom, top)` is RAM below the live stack (the firmware uses a few
            // KiB of the 4 MiB RAM, the stack grows down from its top, nothing else runs),
            // word aligned, and no Rust reference points into it.
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
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for value in values {
        for byte in value.to_bits().to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
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
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}
