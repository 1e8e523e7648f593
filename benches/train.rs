//! One training step (forward in training mode, backward, SGD), on both kernel twins:
//! the reference's default head (64/128/64/32) at batches of 8 and 64 pairs, and the
//! official head at the paper's size (2048/2048/512) at 64 pairs (SIMD twin only; the
//! scalar twin takes seconds per step there).
//!
//! `scripts/bench_pytorch_train.py` times PyTorch's step on the same heads; run both in
//! one session and compare medians (BENCHMARKS.md, "Training"):
//! `RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --bench train`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::model::Architecture;
use simsiam::train::{Sgd, TrainConfig, scratch_len};
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead};

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

criterion_group!(benches, default_head, official_paper);
criterion_main!(benches);
