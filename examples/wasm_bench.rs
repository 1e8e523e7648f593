//! SIMD twin against scalar twin with `std::time::Instant` only, so it runs where criterion
//! does not: under a WebAssembly runtime (BENCHMARKS.md, "WebAssembly"), and natively for
//! comparison with the same logic.
//!
//! Times the default head's two-view `loss` (criterion's `default/loss`), the training
//! pass's matrix kernels on the `gemm` bench shapes (`tn` 128×64×64, `nn` 64×64×128,
//! `nn` 64×2048×2048, the last large enough for the SIMD twin to pack `B`), and one
//! training step of the default head at 64 pairs. Each figure is the median of N
//! samples (the first argument; 21 by default), a sample being as many calls as take
//! about 20 ms, timed together.
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+simd128" cargo build --release --example wasm_bench \
//!     --target wasm32-wasip1
//! node --no-turbo-fast-api-calls .ci/wasi-run.mjs \
//!     target/wasm32-wasip1/release/examples/wasm_bench.wasm 21
//! cargo run --release --example wasm_bench      # natively, same logic
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use simsiam::kernels::{Kernels, LANES, Scalar, Simd, VECTOR_UNIT, scalar, simd};
use simsiam::train::{Sgd, TrainConfig, scratch_len};
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, SslResult};

const CONFIG: SimSiamConfig = SimSiamConfig::DEFAULT;
/// Parameter count of the default config (checked against `param_count` in `main`).
const PARAMS: usize = 16_640;
/// Pairs per training step.
const BATCH: usize = 64;
/// How long one sample runs, at least.
const SAMPLE_TIME: Duration = Duration::from_millis(20);

type Head<K> = SimSiamHead<heapless::Vec<f32, PARAMS>, K>;

/// A checked `gemm_*_add` of [`simd`] or [`scalar`].
type Gemm =
    fn(usize, usize, usize, &[f32], usize, &[f32], usize, &mut [f32], usize) -> SslResult<()>;

fn random(rng: &mut LcgRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

/// Median time of one call of `f`, in microseconds, over `samples` samples.
fn median_us(samples: usize, mut f: impl FnMut() -> SslResult<()>) -> SslResult<f64> {
    // Calls per sample: doubled until a batch of them takes `SAMPLE_TIME`.
    let mut calls = 1_u32;
    loop {
        let start = Instant::now();
        for _ in 0..calls {
            f()?;
        }
        if start.elapsed() >= SAMPLE_TIME || calls >= 1 << 20 {
            break;
        }
        calls *= 2;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        for _ in 0..calls {
            f()?;
        }
        times.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(calls));
    }
    times.sort_by(f64::total_cmp);
    Ok(times.get(times.len() / 2).copied().unwrap_or(f64::NAN))
}

/// The default head's two-view loss on twin `K`.
fn loss_us<K: Kernels>(samples: usize) -> SslResult<f64> {
    let head = Head::<Simd>::from_seed(CONFIG, &mut LcgRng::new(0))?.with_kernels::<K>();
    let mut rng = LcgRng::new(1);
    let (z1, z2) = (
        random(&mut rng, CONFIG.d_encoder),
        random(&mut rng, CONFIG.d_encoder),
    );
    let mut workspace = vec![0.0; head.architecture().workspace_len(1)?];
    median_us(samples, || {
        black_box(head.loss(black_box(&z1), black_box(&z2), &mut workspace)?);
        Ok(())
    })
}

/// One `C += op(A)·B` of shape `m × n × k` (`nn`: `A` is `m × k`; `tn`: stored `k × m`).
fn gemm_us(f: Gemm, nn: bool, (m, n, k): (usize, usize, usize), samples: usize) -> SslResult<f64> {
    let mut rng = LcgRng::new(3);
    let (a, b) = (random(&mut rng, m * k), random(&mut rng, k * n));
    let mut c = random(&mut rng, m * n);
    let lda = if nn { k } else { m };
    median_us(samples, || {
        f(m, n, k, black_box(&a), lda, black_box(&b), n, &mut c, n)
    })
}

/// One training step of the default head at [`BATCH`] pairs on twin `K` (the same head
/// stepped again and again: the time does not depend on the weights).
fn step_us<K: Kernels>(samples: usize) -> SslResult<f64> {
    let mut head = Head::<Simd>::from_seed(CONFIG, &mut LcgRng::new(0))?.with_kernels::<K>();
    let architecture = *head.architecture();
    let mut sgd = Sgd::new(&architecture, TrainConfig::default(), [0.0_f32; PARAMS])?;
    let mut scratch = vec![0.0; scratch_len(&architecture, BATCH)?];
    let mut rng = LcgRng::new(1);
    let x1s = random(&mut rng, BATCH * CONFIG.d_encoder);
    let x2s: Vec<f32> = x1s.iter().map(|x| x + 0.3 * rng.next_f32()).collect();
    median_us(samples, || {
        black_box(sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut [], &mut []])?);
        Ok(())
    })
}

fn row(name: &str, scalar_us: f64, simd_us: f64) {
    println!(
        "| {name} | {simd_us:.2} | {scalar_us:.2} | {:.2}× |",
        scalar_us / simd_us
    );
}

fn main() -> SslResult<()> {
    assert_eq!(CONFIG.param_count()?, PARAMS);
    let samples = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(21_usize)
        .max(1);
    let features: Vec<&str> = [
        ("simd128", cfg!(target_feature = "simd128")),
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
        "wasm_bench: {} ({}), f32x{LANES} lanes, vector unit {VECTOR_UNIT}; median of {samples} samples (µs per call)",
        std::env::consts::ARCH,
        if features.is_empty() {
            "no SIMD target feature".to_string()
        } else {
            features.join("+")
        },
    );
    println!("| what | SIMD µs | scalar µs | speed-up |");
    println!("|---|---|---|---|");
    row(
        "default/loss",
        loss_us::<Scalar>(samples)?,
        loss_us::<Simd>(samples)?,
    );
    for (name, nn, shape) in [
        ("gemm tn 128×64×64", false, (128, 64, 64)),
        ("gemm nn 64×64×128", true, (64, 64, 128)),
        ("gemm nn 64×2048×2048", true, (64, 2048, 2048)),
    ] {
        let (scalar_f, simd_f): (Gemm, Gemm) = if nn {
            (scalar::gemm_nn_add, simd::gemm_nn_add)
        } else {
            (scalar::gemm_tn_add, simd::gemm_tn_add)
        };
        row(
            name,
            gemm_us(scalar_f, nn, shape, samples)?,
            gemm_us(simd_f, nn, shape, samples)?,
        );
    }
    row(
        "train_default step, 64 pairs",
        step_us::<Scalar>(samples)?,
        step_us::<Simd>(samples)?,
    );
    Ok(())
}
