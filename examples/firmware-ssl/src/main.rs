//! SimSiam trained on a Cortex-M4F (QEMU `mps2-an386`, issue 22): a slice of HAPT in
//! flash, the network `HarDense::MCU` initialised on the device from a seed, `STEPS`
//! SimSiam steps with on-device augmentation, few-shot nearest-class-mean accuracy
//! before and after. The run is `run.rs`, which the host replay
//! (`hapt/examples/mcu_replay.rs`) includes word for word: CI compares the lines.
//!
//! Prints every compared line of the run, then
//! `mcu-ssl: recipe NAME steps K batch B params P ram R B stack S B instructions/step I`
//! with `R` = `.data` + `.bss` + the painted stack high-water mark of the run, `I` the mean
//! instructions of a step with its augmentation (SysTick under `-icount shift=0`), and a
//! `#` line with the step alone. Exits through semihosting: 0 on success.
#![no_std]
#![no_main]

mod run;

use cortex_m::peripheral::{SYST, syst::SystClkSource};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use simsiam::kernels::Scalar;

include!(concat!(env!("OUT_DIR"), "/sizes.rs"));

/// Bytes aligned for viewing as `f32`.
#[repr(C, align(4))]
struct Aligned<T: ?Sized>(T);

static TRAIN: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/train.f32")));
static LABELLED: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/labelled.f32")));
static TEST: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/test.f32")));
static STATS: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/stats.f32")));
static LABELLED_CLASSES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/labelled.u8"));
static TEST_CLASSES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test.u8"));

/// SysTick counts the 25 MHz clock; under `-icount shift=0` one tick is 40 instructions.
const INSTRUCTIONS_PER_TICK: u32 = 40;

/// Every buffer of the run, one static in `.bss`.
struct Ram {
    params: [f32; run::PARAMS],
    momentum: [f32; run::PARAMS],
    scratch: [f32; run::SCRATCH],
    views1: [f32; run::BATCH * run::WINDOW],
    views2: [f32; run::BATCH * run::WINDOW],
    order: [u16; TRAIN_WINDOWS],
    window: [f32; run::WINDOW],
    feature: [f32; run::FEATURE],
    workspace: [f32; run::WORKSPACE],
    classifier: [f32; run::CLASSIFIER],
    predictions: [u8; TEST_WINDOWS],
}

static mut RAM: Ram = Ram {
    params: [0.0; run::PARAMS],
    momentum: [0.0; run::PARAMS],
    scratch: [0.0; run::SCRATCH],
    views1: [0.0; run::BATCH * run::WINDOW],
    views2: [0.0; run::BATCH * run::WINDOW],
    order: [0; TRAIN_WINDOWS],
    window: [0.0; run::WINDOW],
    feature: [0.0; run::FEATURE],
    workspace: [0.0; run::WORKSPACE],
    classifier: [0.0; run::CLASSIFIER],
    predictions: [0; TEST_WINDOWS],
};

fn print(bytes: &[u8]) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(bytes);
        let _ = out.write_all(b"\n");
    }
}

fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

fn floats(bytes: &'static Aligned<[u8]>) -> &'static [f32] {
    bytemuck::try_cast_slice(&bytes.0).unwrap_or_default()
}

/// Stack painting: fill the stack below the caller with a pattern, run, and find the
/// deepest word that changed (as examples/firmware).
#[allow(unsafe_code)]
mod stack {
    const PAINT: u32 = 0x5afe_c0de;
    const GUARD: usize = 256;
    /// Bytes painted below the guard.
    const DEPTH: usize = 64 * 1024;

    fn region(sp: usize) -> (usize, usize) {
        let top = sp - GUARD;
        (top - DEPTH, top)
    }

    #[inline(never)]
    pub fn paint(sp: usize) {
        let (bottom, top) = region(sp);
        for addr in (bottom..top).step_by(4) {
            // SAFETY: RAM below the live stack (the statics sit at the bottom of the
            // 4 MiB RAM, the stack grows down from its top), word aligned, unreferenced.
            unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
        }
    }

    #[inline(never)]
    pub fn used(sp: usize) -> usize {
        let (bottom, top) = region(sp);
        let deepest = (bottom..top)
            .step_by(4)
            // SAFETY: as in `paint`.
            .find(|&addr| unsafe { core::ptr::read_volatile(addr as *const u32) } != PAINT)
            .unwrap_or(top);
        sp - deepest
    }
}

/// `.data` + `.bss` from the linker's symbols (cortex-m-rt's `link.x`).
#[allow(unsafe_code)]
fn statics_bytes() -> usize {
    unsafe extern "C" {
        static __sdata: u32;
        static __edata: u32;
        static __sbss: u32;
        static __ebss: u32;
    }
    let (sdata, edata, sbss, ebss) = (
        &raw const __sdata as usize,
        &raw const __edata as usize,
        &raw const __sbss as usize,
        &raw const __ebss as usize,
    );
    (edata - sdata) + (ebss - sbss)
}

/// Mean instructions per step of `ticks` SysTick ticks summed over the run.
fn per_step(ticks: u64) -> u32 {
    const STEPS: u64 = run::STEPS as u64;
    (ticks * u64::from(INSTRUCTIONS_PER_TICK) / STEPS) as u32
}

#[entry]
#[allow(unsafe_code)]
fn main() -> ! {
    let mut peripherals = cortex_m::Peripherals::take().unwrap_or_else(|| exit(false));
    let syst = &mut peripherals.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00ff_ffff);
    syst.clear_current();
    syst.enable_counter();

    let stats = floats(STATS);
    let (Ok(mean), Ok(std)) = (
        <&[f32; 6]>::try_from(stats.get(..6).unwrap_or_default()),
        <&[f32; 6]>::try_from(stats.get(6..).unwrap_or_default()),
    ) else {
        exit(false)
    };
    let data = run::Data {
        train: floats(TRAIN),
        labelled: floats(LABELLED),
        labelled_classes: LABELLED_CLASSES,
        test: floats(TEST),
        test_classes: TEST_CLASSES,
        mean,
        std,
    };
    // SAFETY: the only reference to RAM, taken once before anything else runs.
    #[allow(clippy::deref_addrof)]
    let ram = unsafe { &mut *(&raw mut RAM) };
    let mut buffers = run::Buffers {
        params: &mut ram.params,
        momentum: &mut ram.momentum,
        scratch: &mut ram.scratch,
        views: [&mut ram.views1, &mut ram.views2],
        order: &mut ram.order,
        window: &mut ram.window,
        feature: &mut ram.feature,
        workspace: &mut ram.workspace,
        classifier: &mut ram.classifier,
        predictions: &mut ram.predictions,
    };

    // Ticks of the views and of the steps, summed over the run.
    let (mut last, mut views_ticks, mut step_ticks) = (0_u32, 0_u64, 0_u64);
    let mut mark = |m: run::Mark| {
        let now = SYST::get_current();
        let elapsed = u64::from(last.wrapping_sub(now) & 0x00ff_ffff);
        match m {
            run::Mark::BatchStart => {}
            run::Mark::ViewsDone => views_ticks += elapsed,
            run::Mark::StepDone => step_ticks += elapsed,
        }
        last = now;
    };
    let sp = cortex_m::register::msp::read() as usize;
    stack::paint(sp);
    let result = run::run::<Scalar>(&data, &mut buffers, &mut print, &mut mark);
    let stack_bytes = stack::used(sp);
    if result.is_err() {
        print(b"error: the run failed");
        exit(false);
    }
    let ram_bytes = statics_bytes() + stack_bytes;
    let mut line = run::Line::default();
    line.str("mcu-ssl: recipe ")
        .str(run::RECIPE)
        .str(" steps ")
        .dec(run::STEPS as u32)
        .str(" batch ")
        .dec(run::BATCH as u32)
        .str(" params ")
        .dec(run::PARAMS as u32)
        .str(" ram ")
        .dec(ram_bytes as u32)
        .str(" B stack ")
        .dec(stack_bytes as u32)
        .str(" B instructions/step ")
        .dec(per_step(views_ticks + step_ticks));
    print(line.take());
    line.str("# instructions/step: views ")
        .dec(per_step(views_ticks))
        .str(", step without augmentation ")
        .dec(per_step(step_ticks))
        .str("; .data + .bss ")
        .dec(statics_bytes() as u32)
        .str(" B");
    print(line.take());
    exit(true)
}

#[panic_handler]
fn halt(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(false)
}
