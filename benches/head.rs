//! The head, side by side in one run: our SIMD core, our scalar-twin path, and the
//! reference `oxicuda-ssl` 0.5.5, for `project`, `predict`, `loss` and the batch loss at
//! N = 1, 8, 64 — one criterion group per config. Plus, in group `limits`, this core's
//! peak FMA rate (independent FMA chains on the `wide` lanes of this build) and its
//! streaming read bandwidth over a buffer the size of the paper head's parameters, so
//! every result can be stated as a fraction of the limit from the same run.
//!
//! `scripts/bench_all.sh` runs it under three flag sets and writes BENCHMARKS.md's
//! table and plot; one flag set by hand:
//! `RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --bench head`.
//!
//! The reference's batch loss is `N` calls of its `loss`. Where one iteration would take
//! seconds (the paper config at N = 64, for the reference and our scalar twin) it is not
//! measured: the plot script derives it as `N ×` the single-pair loss of the same run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use oxicuda_ssl::handle::LcgRng as RefRng;
use oxicuda_ssl::ssl::sim_siam::{SimSiam as RefSimSiam, SimSiamConfig as RefConfig};
use simsiam::kernels::{LANES, Scalar, Simd};
use simsiam::model::Architecture;
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, init_params};

/// Name, dims, sample size, measurement time, whether the slow paths run at N = 64.
const CONFIGS: [(&str, [usize; 4], usize, u64, bool); 3] = [
    ("default", [64, 128, 64, 32], 20, 1500, true),
    ("mid", [256, 512, 128, 64], 20, 1500, true),
    ("paper", [2048, 2048, 512, 2048], 10, 2000, false),
];

const BATCH_SIZES: [usize; 3] = [1, 8, 64];

fn random(rng: &mut LcgRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

/// Multiply–adds ×2 of one `project` and one `predict`.
fn flops(c: &SimSiamConfig) -> (u64, u64) {
    let project = 2 * (c.d_encoder * c.d_projector + c.d_projector * c.d_out);
    let predict = 2 * (c.d_out * c.d_predictor + c.d_predictor * c.d_out);
    (project as u64, predict as u64)
}

fn head_group(criterion: &mut Criterion, config_index: usize) {
    let (name, dims, samples, millis, slow_at_64) = CONFIGS[config_index];
    let [d_encoder, d_projector, d_predictor, d_out] = dims;
    let config = SimSiamConfig {
        d_encoder,
        d_projector,
        d_predictor,
        d_out,
    };
    let mut params = vec![0.0; config.param_count().expect("config")];
    init_params(&config, &mut LcgRng::new(0), &mut params).expect("init");
    let head = SimSiamHead::from_params(config, &params[..]).expect("head");
    let (simd, scalar) = (
        head.with_kernels::<Simd>(),
        head.view().with_kernels::<Scalar>(),
    );
    let reference = RefSimSiam::new(
        RefConfig {
            d_encoder,
            d_projector,
            d_predictor,
            d_out,
        },
        &mut RefRng::new(0),
    )
    .expect("reference");

    let mut rng = LcgRng::new(1);
    let max_n = BATCH_SIZES[BATCH_SIZES.len() - 1];
    let z1s = random(&mut rng, max_n * d_encoder);
    let z2s = random(&mut rng, max_n * d_encoder);
    let (z1, z2) = (&z1s[..d_encoder], &z2s[..d_encoder]);
    let p = random(&mut rng, d_out);
    let mut out = vec![0.0; d_out];
    let mut workspace = vec![0.0; config.batch_loss_workspace_len(max_n).expect("ws")];
    let mut losses = vec![0.0; max_n];
    let (project_flops, predict_flops) = flops(&config);
    let loss_flops = 2 * (project_flops + predict_flops);

    let mut group = criterion.benchmark_group(name);
    group
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(millis));
    if !slow_at_64 {
        group.sampling_mode(SamplingMode::Flat);
    }

    group.throughput(Throughput::Elements(project_flops));
    group.bench_function("project/simd", |b| {
        b.iter(|| simd.project_into(black_box(z1), black_box(&mut out), &mut []))
    });
    group.bench_function("project/scalar", |b| {
        b.iter(|| scalar.project_into(black_box(z1), black_box(&mut out), &mut []))
    });
    group.bench_function("project/reference", |b| {
        b.iter(|| reference.project(black_box(z1)))
    });

    group.throughput(Throughput::Elements(predict_flops));
    group.bench_function("predict/simd", |b| {
        b.iter(|| simd.predict_into(black_box(&p), black_box(&mut out), &mut []))
    });
    group.bench_function("predict/scalar", |b| {
        b.iter(|| scalar.predict_into(black_box(&p), black_box(&mut out), &mut []))
    });
    group.bench_function("predict/reference", |b| {
        b.iter(|| reference.predict(black_box(&p)))
    });

    group.throughput(Throughput::Elements(loss_flops));
    group.bench_function("loss/simd", |b| {
        b.iter(|| simd.loss(black_box(z1), black_box(z2), &mut workspace))
    });
    group.bench_function("loss/scalar", |b| {
        b.iter(|| scalar.loss(black_box(z1), black_box(z2), &mut workspace))
    });
    group.bench_function("loss/reference", |b| {
        b.iter(|| reference.loss(black_box(z1), black_box(z2)))
    });

    for n in BATCH_SIZES {
        let (z1n, z2n) = (&z1s[..n * d_encoder], &z2s[..n * d_encoder]);
        let losses = &mut losses[..n];
        group.throughput(Throughput::Elements(loss_flops * n as u64));
        group.bench_with_input(BenchmarkId::new("batch_loss/simd", n), &n, |b, _| {
            b.iter(|| {
                simd.loss_batch_into(
                    black_box(z1n),
                    black_box(z2n),
                    black_box(&mut *losses),
                    &mut workspace,
                )
            })
        });
        if n == max_n && !slow_at_64 {
            continue;
        }
        group.bench_with_input(BenchmarkId::new("batch_loss/scalar", n), &n, |b, _| {
            b.iter(|| {
                scalar.loss_batch_into(
                    black_box(z1n),
                    black_box(z2n),
                    black_box(&mut *losses),
                    &mut workspace,
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("batch_loss/reference", n), &n, |b, _| {
            b.iter(|| {
                for (z1, z2) in z1n.chunks_exact(d_encoder).zip(z2n.chunks_exact(d_encoder)) {
                    black_box(reference.loss(black_box(z1), black_box(z2)).ok());
                }
            })
        });
    }
    group.finish();
}

fn default_config(c: &mut Criterion) {
    head_group(c, 0);
}

fn mid_config(c: &mut Criterion) {
    head_group(c, 1);
}

fn paper_config(c: &mut Criterion) {
    head_group(c, 2);
}

/// Independent FMA chains: enough to cover latency × pipes on any x86-64 core, few
/// enough to stay in registers (one register each).
const CHAINS: usize = 12;
/// FMA steps per chain per iteration.
const FMA_STEPS: usize = 4096;

/// `CHAINS` independent chains of `acc = acc·a + b` on full lanes: the peak rate of
/// `mul_add` on this build's lanes (a true FMA with `fma`, else a multiply and an add).
fn fma_peak(a: f32, b: f32) -> f32 {
    let (a, b) = (wide_splat(a), wide_splat(b));
    let mut acc = [wide_splat(1.0); CHAINS];
    for _ in 0..FMA_STEPS {
        for chain in acc.iter_mut() {
            *chain = chain.mul_add(a, b);
        }
    }
    acc.iter().fold(wide_splat(0.0), |s, c| s + *c).reduce_add()
}

/// The library's lane type ([`LANES`] wide).
#[cfg(any(target_feature = "avx512f", simsiam_f32x16))]
type Wide = wide::f32x16;
#[cfg(all(
    target_feature = "avx",
    not(any(target_feature = "avx512f", simsiam_f32x16))
))]
type Wide = wide::f32x8;
#[cfg(all(
    target_feature = "sse",
    not(any(target_feature = "avx", simsiam_f32x16))
))]
type Wide = wide::f32x4;
#[cfg(not(any(target_feature = "sse", simsiam_f32x16)))]
type Wide = wide::f32x8;

fn wide_splat(v: f32) -> Wide {
    Wide::splat(v)
}

/// Sum of every element with eight independent vector accumulators: a streaming read.
fn read_all(buffer: &[f32]) -> f32 {
    let (chunks, tail) = buffer.as_chunks::<LANES>();
    let mut acc = [wide_splat(0.0); 8];
    for block in chunks.chunks_exact(8) {
        for (a, v) in acc.iter_mut().zip(block) {
            *a += Wide::from(*v);
        }
    }
    let rest: f32 = chunks
        .chunks_exact(8)
        .remainder()
        .iter()
        .flatten()
        .sum::<f32>()
        + tail.iter().sum::<f32>();
    acc.iter().fold(wide_splat(0.0), |s, c| s + *c).reduce_add() + rest
}

fn limits(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("limits");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    group.throughput(Throughput::Elements(
        (2 * LANES * CHAINS * FMA_STEPS) as u64,
    ));
    group.bench_function("fma_peak", |b| {
        b.iter(|| fma_peak(black_box(0.999_999), black_box(1e-7)))
    });
    let paper = SimSiamConfig {
        d_encoder: 2048,
        d_projector: 2048,
        d_predictor: 512,
        d_out: 2048,
    };
    let len = paper.param_count().expect("paper");
    let buffer = random(&mut LcgRng::new(2), len);
    group.throughput(Throughput::Bytes((len * 4) as u64));
    group.bench_function("read_bandwidth", |b| {
        b.iter(|| read_all(black_box(&buffer)))
    });
    group.finish();
}

/// Parameters for `architecture` in its layout order (per layer: W, bias, γ, β,
/// running_mean, running_var): weights and biases uniform in ±1/√fan_in, BatchNorm
/// weights and variances in [0.75, 1.25), shifts and means in ±0.125 — statistics like a
/// trained head's, so no activation dies or explodes.
fn trained_like(architecture: &Architecture, rng: &mut LcgRng) -> Vec<f32> {
    let mut params = Vec::new();
    let mut uniform = |n: usize, centre: f32, half_width: f32| {
        (0..n)
            .map(|_| centre + (rng.next_f32() * 2.0 - 1.0) * half_width)
            .collect::<Vec<_>>()
    };
    for layer in architecture.layers() {
        let scale = 1.0 / (layer.d_in as f32).sqrt();
        params.extend(uniform(layer.d_in * layer.d_out, 0.0, scale));
        if layer.bias {
            params.extend(uniform(layer.d_out, 0.0, scale));
        }
        if let Some(batch_norm) = layer.batch_norm {
            if batch_norm.affine {
                params.extend(uniform(layer.d_out, 1.0, 0.25));
                params.extend(uniform(layer.d_out, 0.0, 0.125));
            }
            params.extend(uniform(layer.d_out, 0.0, 0.125));
            params.extend(uniform(layer.d_out, 1.0, 0.25));
        }
    }
    params
}

/// The official head (facebookresearch/simsiam `builder.py`, BatchNorm in eval, 3-layer
/// projector) at the paper's dimensions 2048/2048/512: one pair and batches of 8 and 64
/// pairs, both twins. PyTorch's `eval()` on the same head is timed by
/// `scripts/bench_pytorch.py` in the same run (see BENCHMARKS.md).
fn official_paper(criterion: &mut Criterion) {
    let architecture = Architecture::official(2048, 2048, 512).expect("official");
    let params = trained_like(&architecture, &mut LcgRng::new(3));
    let head = SimSiamHead::new(architecture, &params[..]).expect("finite");
    let (simd, scalar) = (head.with_kernels::<Simd>(), head.with_kernels::<Scalar>());
    let mut rng = LcgRng::new(4);
    let max_n = 64;
    let z1s = random(&mut rng, max_n * 2048);
    let z2s = random(&mut rng, max_n * 2048);
    let mut workspace = vec![0.0; architecture.workspace_len(max_n).expect("ws")];
    let mut losses = vec![0.0; max_n];
    // Multiply–adds of one input through both stacks, ×2 views, ×2 FLOP each.
    let macs: usize = architecture.layers().map(|l| l.d_in * l.d_out).sum();
    let loss_flops = (2 * 2 * macs) as u64;

    let mut group = criterion.benchmark_group("official_paper");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(3000))
        .sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(loss_flops));
    let (z1, z2) = (&z1s[..2048], &z2s[..2048]);
    group.bench_function("loss/simd", |b| {
        b.iter(|| simd.loss(black_box(z1), black_box(z2), &mut workspace))
    });
    group.bench_function("loss/scalar", |b| {
        b.iter(|| scalar.loss(black_box(z1), black_box(z2), &mut workspace))
    });
    for n in [8, 64] {
        let (z1n, z2n) = (&z1s[..n * 2048], &z2s[..n * 2048]);
        let losses = &mut losses[..n];
        group.throughput(Throughput::Elements(loss_flops * n as u64));
        group.bench_with_input(BenchmarkId::new("batch_loss/simd", n), &n, |b, _| {
            b.iter(|| {
                simd.loss_batch_into(
                    black_box(z1n),
                    black_box(z2n),
                    black_box(&mut *losses),
                    &mut workspace,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    limits,
    default_config,
    mid_config,
    paper_config,
    official_paper
);
criterion_main!(benches);
