//! One training step (forward in training mode, backward, SGD), on both kernel twins:
//! the reference's default head (64/128/64/32) at batches of 8 and 64 pairs, and the
//! official head at the paper's size (2048/2048/512) at 64 pairs (SIMD twin only; the
//! scalar twin takes seconds per step there).
//!
//! The groups `train_har_dense` and `train_har_conv` time one `Sgd::step` of the sensor
//! recipe's whole networks (`Architecture::har_dense`, `har_conv` at their default sizes,
//! PyTorch's initialisation) at 128 pairs on the SIMD twin, without input gradients;
//! `train_har_dense` also times `Trainer::step` with them. These two groups are timed by
//! the thread's CPU time (`/proc/thread-self/schedstat`), not the wall clock: on the shared 2-core machine the wall clock also
//! counts the time other jobs hold the core.
//!
//! `scripts/bench_pytorch_train.py` times PyTorch's step on the same heads; run both in
//! one session and compare medians (BENCHMARKS.md, "Training"):
//! `RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --bench train`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::model::{Architecture, HarConv, HarDense};
use simsiam::train::{Sgd, TrainConfig, Trainer, scratch_len};
use simsiam::{LcgRng, SimSiam, SimSiamConfig, SimSiamHead};

fn random(rng: &mut LcgRng, len: usize, scale: f32) -> Vec<f32> {
    let mut v = vec![0.0; len];
    rng.fill_normal(&mut v);
    v.iter_mut().for_each(|x| *x *= scale);
    v
}

/// Parameters for any architecture: weights ~ N(0, 1/d_in), BatchNorm at identity.
fn params(architecture: &Architecture) -> Vec<f32> {
    let mut rng = LcgRng::new(0);
    let mut params = Vec::new();
    for layer in architecture.layers() {
        params.extend(random(
            &mut rng,
            layer.d_in * layer.d_out,
            (1.0 / layer.d_in as f32).sqrt(),
        ));
        if layer.bias {
            params.extend(vec![0.0; layer.d_out]);
        }
        if let Some(bn) = layer.batch_norm {
            if bn.affine {
                params.extend(vec![1.0; layer.d_out]);
                params.extend(vec![0.0; layer.d_out]);
            }
            params.extend(vec![0.0; layer.d_out]);
            params.extend(vec![1.0; layer.d_out]);
        }
    }
    params
}

/// Multiply–adds ×2 of a step: forward (one per weight per input), backward (two).
fn step_flops(architecture: &Architecture, n: usize) -> u64 {
    let weights: usize = architecture.layers().map(|l| l.d_in * l.d_out).sum();
    (2 * 3 * 2 * n * weights) as u64
}

fn bench_step<K: Kernels>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    twin: &str,
    architecture: &Architecture,
    n: usize,
) {
    let d = architecture.d_encoder();
    let mut rng = LcgRng::new(1);
    let x1s = random(&mut rng, n * d, 1.0);
    let x2s: Vec<f32> = x1s
        .iter()
        .zip(random(&mut rng, n * d, 0.3))
        .map(|(a, b)| a + b)
        .collect();
    let mut head = SimSiamHead::new(*architecture, params(architecture))
        .expect("head")
        .with_kernels::<K>();
    let count = architecture.param_count().expect("count");
    let mut sgd = Sgd::new(architecture, TrainConfig::default(), vec![0.0; count]).expect("sgd");
    let mut scratch = vec![0.0; scratch_len(architecture, n).expect("len")];
    let mut g1 = vec![0.0; n * d];
    let mut g2 = vec![0.0; n * d];
    group.throughput(Throughput::Elements(step_flops(architecture, n)));
    group.bench_function(BenchmarkId::new(twin, n), |b| {
        b.iter(|| {
            black_box(
                sgd.step(
                    &mut head,
                    black_box(&x1s),
                    black_box(&x2s),
                    &mut scratch,
                    [&mut g1, &mut g2],
                )
                .expect("step"),
            )
        });
    });
}

fn default_head(criterion: &mut Criterion) {
    let architecture = Architecture::reference(SimSiamConfig::DEFAULT).expect("arch");
    let mut group = criterion.benchmark_group("train_default");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    for n in [8, 64] {
        bench_step::<Simd>(&mut group, "simd", &architecture, n);
        bench_step::<Scalar>(&mut group, "scalar", &architecture, n);
    }
    group.finish();
}

fn official_paper(criterion: &mut Criterion) {
    let architecture = Architecture::official(2048, 2048, 512).expect("arch");
    let mut group = criterion.benchmark_group("train_official_paper");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    bench_step::<Simd>(&mut group, "simd", &architecture, 64);
    group.finish();
}

/// This thread's CPU time: `/proc/thread-self/schedstat`'s first field (nanoseconds on
/// the CPU), else `/proc/thread-self/stat`'s user + system time (fields 14 and 15, in
/// ticks of 10 ms); `None` where neither file is there.
fn thread_cpu_time() -> Option<Duration> {
    if let Ok(schedstat) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(Ok(ns)) = schedstat.split_whitespace().next().map(str::parse::<u64>)
    {
        return Some(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `f` `iters` times, timed by the thread's CPU time (or the wall clock).
fn cpu_timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let wall = std::time::Instant::now();
    let start = thread_cpu_time();
    for _ in 0..iters {
        f();
    }
    match (start, thread_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall.elapsed(),
    }
}

/// Floating-point operations of one whole-network step on `n` pairs without the input
/// gradient: every layer's forward flops ([`simsiam::layers::LayerKind::flops`]) twice
/// for its backward (once for a layer that computes no `dL/dx`: the first), on `2n`
/// samples. BatchNorm, ReLU and the pools count one or two per element.
fn network_step_flops(architecture: &Architecture, n: usize) -> u64 {
    let mut flops = 0_u64;
    let mut first = true;
    if let Some(encoder) = &architecture.encoder {
        let mut shape = encoder.input();
        for kind in encoder.layers() {
            let f = kind.flops(shape).expect("flops");
            flops += if first { 2 * f } else { 3 * f };
            first = false;
            shape = kind.output_shape(shape).expect("shape");
        }
    }
    for layer in architecture.layers() {
        let f = (2 * layer.d_in * layer.d_out) as u64;
        flops += if first { 2 * f } else { 3 * f };
        first = false;
    }
    flops * 2 * n as u64
}

/// One `Sgd::step` (and, when `trainer`, one `Trainer::step` with input gradients) of a
/// whole network on `n` pairs, SIMD twin.
fn bench_network(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    architecture: Architecture,
    n: usize,
    trainer: bool,
) {
    let d = architecture.d_input();
    let mut rng = LcgRng::new(1);
    let x1s = random(&mut rng, n * d, 1.0);
    let x2s: Vec<f32> = x1s
        .iter()
        .zip(random(&mut rng, n * d, 0.3))
        .map(|(a, b)| a + b)
        .collect();
    let mut model = SimSiam::from_architecture(architecture, &mut LcgRng::new(2)).expect("model");
    let count = architecture.param_count().expect("count");
    let mut sgd = Sgd::new(&architecture, TrainConfig::default(), vec![0.0; count]).expect("sgd");
    let mut scratch = vec![0.0; scratch_len(&architecture, n).expect("len")];
    group.throughput(Throughput::Elements(network_step_flops(&architecture, n)));
    group.bench_function(BenchmarkId::new("sgd_step", n), |b| {
        b.iter_custom(|iters| {
            cpu_timed(iters, || {
                black_box(
                    sgd.step(
                        model.head_mut(),
                        black_box(&x1s),
                        black_box(&x2s),
                        &mut scratch,
                        [&mut [], &mut []],
                    )
                    .expect("step"),
                );
            })
        });
    });
    if trainer {
        let mut trainer = Trainer::new(&model, TrainConfig::default()).expect("trainer");
        trainer.set_input_grads(true);
        group.bench_function(BenchmarkId::new("trainer_step_input_grads", n), |b| {
            b.iter_custom(|iters| {
                cpu_timed(iters, || {
                    black_box(
                        trainer
                            .step(&mut model, black_box(&x1s), black_box(&x2s))
                            .expect("step"),
                    );
                })
            });
        });
    }
}

fn har_dense(criterion: &mut Criterion) {
    let architecture = Architecture::har_dense(&HarDense::default()).expect("arch");
    let mut group = criterion.benchmark_group("train_har_dense");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    bench_network(&mut group, architecture, 128, true);
    group.finish();
}

fn har_conv(criterion: &mut Criterion) {
    let architecture = Architecture::har_conv(&HarConv::default()).expect("arch");
    let mut group = criterion.benchmark_group("train_har_conv");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    bench_network(&mut group, architecture, 128, false);
    group.finish();
}

/// Independent chains in [`fma_peak`]: more than latency × pipes (4 × 2 on Zen 4).
const PEAK_CHAINS: usize = 12;

/// The FMA peak of this build's widest `wide` vector (`f32x8`: one AVX register with
/// `x86-64-v3`; two SSE registers and no FMA in a plain x86-64 build, where `mul_add` is
/// a multiply and an add), one thread: [`PEAK_CHAINS`] independent `mul_add` chains,
/// 100 000 steps a call, flops = 2 × 8 lanes × chains × steps. Timed by CPU time, as the
/// `train_har_*` groups, for their share of the peak.
fn fma_peak(criterion: &mut Criterion) {
    use wide::f32x8;
    const STEPS: usize = 100_000;
    let mut group = criterion.benchmark_group("fma_peak");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements((2 * 8 * PEAK_CHAINS * STEPS) as u64));
    let a = f32x8::splat(0.999_9);
    let b = f32x8::splat(1e-4);
    group.bench_function(BenchmarkId::new("f32x8_mul_add", PEAK_CHAINS), |bench| {
        bench.iter_custom(|iters| {
            cpu_timed(iters, || {
                let (a, b) = (black_box(a), black_box(b));
                let mut acc = [f32x8::splat(1.0); PEAK_CHAINS];
                for _ in 0..STEPS {
                    for chain in &mut acc {
                        *chain = chain.mul_add(a, b);
                    }
                }
                black_box(acc);
            })
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    default_head,
    official_paper,
    har_dense,
    har_conv,
    fma_peak
);
criterion_main!(benches);
