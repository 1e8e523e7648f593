//! The main job: SimSiam learning on the device, and collapsing without stop-gradient.
//!
//! The default head (64/128/64/32, the reference's) is initialised from a seed into
//! fixed-capacity storage and trained with the no-heap core API (`Sgd::step`, caller
//! buffers) on a synthetic stream: two noisy views of vectors drawn around a few
//! cluster centres. Every 50 steps a progress line shows the loss and the collapse
//! monitor (√d·std of the L2-normalised projections: about 1 when healthy, 0 when
//! collapsed). Then the same run without stop-gradient, the paper's ablation, collapses.
//! Last, a training step's time on the SIMD twin against the scalar twin.
//!
//! `cargo run --release --example demo`

use std::hint::black_box;
use std::time::Instant;

use simsiam::kernels::{Kernels, LANES, Scalar, Simd};
use simsiam::model::Architecture;
use simsiam::train::{
    CollapseMonitor, Sgd, TrainConfig, output_std_scratch_len, projection_ranges, scratch_len,
};
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, SslResult};

const CONFIG: SimSiamConfig = SimSiamConfig::DEFAULT;
/// Parameter count of the default config (checked against `param_count` below).
const PARAMS: usize = 16_640;
const SEED: u64 = 42;
/// Pairs per step, steps per run, steps between progress lines.
const BATCH: usize = 64;
const STEPS: usize = 600;
const REPORT_EVERY: usize = 50;

type Head<K> = SimSiamHead<heapless::Vec<f32, PARAMS>, K>;

/// The synthetic stream: `CLUSTERS` centres in the encoder space; a sample is a centre
/// plus spread, and its two views are the sample plus independent noise.
struct Stream {
    rng: LcgRng,
    centres: Vec<f32>,
}

const CLUSTERS: usize = 10;
const SPREAD: f32 = 0.5;
const VIEW_NOISE: f32 = 0.3;

impl Stream {
    fn new(seed: u64) -> Self {
        let mut rng = LcgRng::new(seed);
        let mut centres = vec![0.0_f32; CLUSTERS * CONFIG.d_encoder];
        rng.fill_normal(&mut centres);
        Self { rng, centres }
    }

    /// The next batch of pairs into `x1s`, `x2s` (`BATCH × d_encoder` each).
    fn next_batch(&mut self, x1s: &mut [f32], x2s: &mut [f32]) {
        let d = CONFIG.d_encoder;
        let mut noise = vec![0.0_f32; 3 * d];
        for (x1, x2) in x1s.chunks_exact_mut(d).zip(x2s.chunks_exact_mut(d)) {
            let cluster = (self.rng.next_f32() * CLUSTERS as f32) as usize % CLUSTERS;
            let centre = &self.centres[cluster * d..(cluster + 1) * d];
            self.rng.fill_normal(&mut noise);
            let (spread, views) = noise.split_at(d);
            let (n1, n2) = views.split_at(d);
            for i in 0..d {
                let sample = centre[i] + SPREAD * spread[i];
                x1[i] = sample + VIEW_NOISE * n1[i];
                x2[i] = sample + VIEW_NOISE * n2[i];
            }
        }
    }
}

/// The caller's buffers of a step: the scratch and the momentum (no heap in the core;
/// here they live in `Vec`s because 300 KiB is a lot of `main`'s stack).
struct Buffers {
    scratch: Vec<f32>,
    x1s: Vec<f32>,
    x2s: Vec<f32>,
    monitor_scratch: Vec<f32>,
}

impl Buffers {
    fn new(architecture: &Architecture, batch: usize) -> SslResult<Self> {
        Ok(Self {
            scratch: vec![0.0; scratch_len(architecture, batch)?],
            x1s: vec![0.0; batch * CONFIG.d_encoder],
            x2s: vec![0.0; batch * CONFIG.d_encoder],
            monitor_scratch: vec![0.0; output_std_scratch_len(CONFIG.d_out)],
        })
    }
}

/// `STEPS` steps with or without stop-gradient, a progress line every `REPORT_EVERY`.
fn train_run(stop_gradient: bool) -> SslResult<()> {
    let mut head = Head::<Simd>::from_seed(CONFIG, &mut LcgRng::new(SEED))?;
    let config = TrainConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
        stop_gradient,
        ..TrainConfig::default()
    };
    let architecture = *head.architecture();
    let mut sgd = Sgd::new(&architecture, config, [0.0_f32; PARAMS])?;
    let mut buffers = Buffers::new(&architecture, BATCH)?;
    let mut stream = Stream::new(7);
    let mut monitor = CollapseMonitor::new();
    let [projection, _] = projection_ranges(&architecture, BATCH)?;
    println!(
        "{} stop-gradient: {STEPS} steps of {BATCH} pairs, lr 0.05, momentum 0.9, weight decay 1e-4",
        if stop_gradient { "with" } else { "without" }
    );
    println!(
        "  {:>5} {:>9} {:>9} {:>9} {:>10}",
        "step", "loss", "sqrt(d)*std", "collapse", "ms/step*"
    );
    let started = Instant::now();
    let mut window = Instant::now();
    for step in 1..=STEPS {
        stream.next_batch(&mut buffers.x1s, &mut buffers.x2s);
        let loss = sgd.step(
            &mut head,
            &buffers.x1s,
            &buffers.x2s,
            &mut buffers.scratch,
            [&mut [], &mut []],
        )?;
        let z1s = buffers.scratch.get(projection.clone()).unwrap_or_default();
        monitor.update(z1s, CONFIG.d_out, &mut buffers.monitor_scratch)?;
        if step % REPORT_EVERY == 0 || step == 1 {
            let steps_in_window = if step == 1 { 1 } else { REPORT_EVERY };
            println!(
                "  {step:>5} {loss:>+9.4} {:>11.3} {:>9.3} {:>10.3}",
                monitor.normalized_std(),
                monitor.collapse_level(),
                window.elapsed().as_secs_f64() * 1e3 / steps_in_window as f64
            );
            window = Instant::now();
        }
    }
    println!(
        "  {STEPS} steps in {:.2} s (*ms/step includes making the batch and the monitor)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Median milliseconds of one training step at `batch` pairs on twin `K` (each sample
/// steps a fresh copy of the same head on the same batch).
fn step_ms<K: Kernels>(batch: usize, samples: usize) -> SslResult<f64> {
    let head = Head::<Simd>::from_seed(CONFIG, &mut LcgRng::new(SEED))?.with_kernels::<K>();
    let architecture = *head.architecture();
    let mut buffers = Buffers::new(&architecture, batch)?;
    Stream::new(3).next_batch(&mut buffers.x1s, &mut buffers.x2s);
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let mut head = head.clone();
        let mut sgd = Sgd::new(&architecture, TrainConfig::default(), [0.0_f32; PARAMS])?;
        let start = Instant::now();
        for _ in 0..4 {
            black_box(sgd.step(
                &mut head,
                black_box(&buffers.x1s),
                black_box(&buffers.x2s),
                &mut buffers.scratch,
                [&mut [], &mut []],
            )?);
        }
        times.push(start.elapsed().as_secs_f64() * 1e3 / 4.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn main() -> SslResult<()> {
    assert_eq!(CONFIG.param_count()?, PARAMS);
    println!("simsiam demo: training the SimSiam head {CONFIG:?} on the device, seed {SEED}");
    println!(
        "stream: {CLUSTERS} cluster centres ~ N(0, I) in {} dimensions; sample = centre + {SPREAD}*N(0, I); views = sample + {VIEW_NOISE}*N(0, I) each",
        CONFIG.d_encoder
    );
    println!(
        "collapse monitor: sqrt(d)*std of the L2-normalised projections (moving average, weight 0.9): ~1 healthy, 0 collapsed"
    );
    train_run(true)?;
    train_run(false)?;

    let architecture = Architecture::reference(CONFIG)?;
    println!("memory of a step (caller's buffers; no heap in the core)");
    for batch in [8, BATCH] {
        let scratch = scratch_len(&architecture, batch)? * 4;
        println!(
            "  batch {batch:>2}: parameters {} B + momentum {} B + scratch {scratch} B",
            PARAMS * 4,
            PARAMS * 4
        );
    }

    let features: Vec<&str> = [
        ("sse2", cfg!(target_feature = "sse2")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("neon", cfg!(target_feature = "neon")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    println!(
        "time of one training step (median of 21 samples of 4 steps; target features {}, f32x{LANES})",
        features.join("+")
    );
    println!(
        "  {:>5} {:>12} {:>12} {:>9}",
        "batch", "scalar ms", "SIMD ms", "speed-up"
    );
    for batch in [8, BATCH] {
        let scalar = step_ms::<Scalar>(batch, 21)?;
        let simd = step_ms::<Simd>(batch, 21)?;
        println!(
            "  {batch:>5} {scalar:>12.3} {simd:>12.3} {:>8.2}x",
            scalar / simd
        );
    }
    if !cfg!(target_feature = "avx2") && cfg!(target_arch = "x86_64") {
        println!(
            "  (for AVX2+FMA lanes: RUSTFLAGS=\"-C target-cpu=x86-64-v3\" cargo run --release --example demo)"
        );
    }
    Ok(())
}
