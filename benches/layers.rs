//! The Conv1d layer kind (`simsiam::layers::conv1d`) on the `har-conv` encoder's three
//! convolutions (issue 20: `Conv1d(6, 32, 8)` on `T = 128`, `Conv1d(32, 64, 8)` on
//! `T = 60`, `Conv1d(64, 128, 8)` on `T = 26`, no bias, no padding), batch 128: the
//! forward pass and the backward pass (weight and input gradients), SIMD twin beside the
//! scalar twin, with a scratch for one sample (`scratch_len`) and for a group of
//! [`GROUP`] samples per matrix product. Throughput is in FLOP (a multiply-add counts two; the backward does
//! twice the forward's). Needs the feature `conv`:
//! `cargo bench --features conv --bench layers` (plain) or with
//! `RUSTFLAGS="-C target-cpu=x86-64-v3"`.
//!
//! The group `conv1d_cpu` times the SIMD twin with groups of [`GROUP`] samples by the
//! thread's CPU time (Linux's `/proc/thread-self/stat`, 10 ms ticks, so long samples)
//! instead of the wall clock: on a shared machine the wall clock also counts the time
//! other processes hold the core. Elsewhere it falls back to the wall clock.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simsiam::LcgRng;
use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::layers::conv1d::{Conv1d, Padding};
use simsiam::layers::{Bias, LayerKind, Shape};

const BATCH: usize = 128;
/// Samples per matrix product with the larger scratch.
const GROUP: usize = 8;

fn random(rng: &mut LcgRng, len: usize, scale: f32) -> Vec<f32> {
    let mut v = vec![0.0; len];
    rng.fill_normal(&mut v);
    v.iter_mut().for_each(|x| *x *= scale);
    v
}

/// One convolution's buffers.
struct Case {
    conv: Conv1d,
    input: Shape,
    params: Vec<f32>,
    x: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    grads: Vec<f32>,
    scratch: Vec<f32>,
    flops: u64,
}

fn case(c_in: usize, c_out: usize, len: usize, group: usize) -> Case {
    let conv = Conv1d {
        c_in,
        c_out,
        kernel: 8,
        stride: 1,
        padding: Padding::Zeros(0),
        bias: Bias::None,
    };
    let input = Shape::sequence(c_in, len);
    let kind = LayerKind::Conv1d(conv);
    let out = kind.output_shape(input).unwrap();
    let mut rng = LcgRng::new(1);
    let params = random(&mut rng, kind.param_count().unwrap(), 0.1);
    let x = random(&mut rng, BATCH * input.size().unwrap(), 1.0);
    let y = vec![0.0; BATCH * out.size().unwrap()];
    let dy = random(&mut rng, y.len(), 0.01);
    Case {
        conv,
        input,
        dx: vec![0.0; x.len()],
        grads: vec![0.0; params.len()],
        scratch: vec![0.0; group * conv.scratch_len(input).unwrap()],
        flops: kind.flops(input).unwrap() * BATCH as u64,
        params,
        x,
        y,
        dy,
    }
}

fn bench_twin<K: Kernels>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    twin: &str,
    name: &str,
    c: &mut Case,
) {
    group.throughput(Throughput::Elements(c.flops));
    group.bench_function(BenchmarkId::new(format!("forward/{twin}"), name), |b| {
        b.iter(|| {
            c.conv
                .forward_train::<K>(
                    &c.params,
                    BATCH,
                    c.input,
                    black_box(&c.x),
                    &mut c.y,
                    &mut c.scratch,
                )
                .unwrap();
            black_box(&c.y);
        });
    });
    group.throughput(Throughput::Elements(2 * c.flops));
    group.bench_function(BenchmarkId::new(format!("backward/{twin}"), name), |b| {
        b.iter(|| {
            c.conv
                .backward::<K>(
                    &c.params,
                    BATCH,
                    c.input,
                    black_box(&c.x),
                    black_box(&c.dy),
                    Some(&mut c.dx),
                    &mut c.grads,
                    &mut c.scratch,
                )
                .unwrap();
            black_box((&c.dx, &c.grads));
        });
    });
}

fn conv1d(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("conv1d");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (c_in, c_out, len) in [(6, 32, 128), (32, 64, 60), (64, 128, 26)] {
        for samples in [1, GROUP] {
            let name = format!("{c_in}to{c_out}_k8_T{len}_n{BATCH}_g{samples}");
            let mut c = case(c_in, c_out, len, samples);
            bench_twin::<Simd>(&mut group, "simd", &name, &mut c);
            bench_twin::<Scalar>(&mut group, "scalar", &name, &mut c);
        }
    }
    group.finish();
}

/// This thread's user + system CPU time, from `/proc/thread-self/stat` (fields 14 and
/// 15, in ticks of 10 ms); `None` where that file is missing.
fn thread_cpu_time() -> Option<Duration> {
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

fn conv1d_cpu(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("conv1d_cpu");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    for (c_in, c_out, len) in [(6, 32, 128), (32, 64, 60), (64, 128, 26)] {
        let name = format!("{c_in}to{c_out}_k8_T{len}_n{BATCH}_g{GROUP}");
        let mut c = case(c_in, c_out, len, GROUP);
        group.throughput(Throughput::Elements(c.flops));
        group.bench_function(BenchmarkId::new("forward/simd", &name), |b| {
            b.iter_custom(|iters| {
                cpu_timed(iters, || {
                    c.conv
                        .forward_train::<Simd>(
                            &c.params,
                            BATCH,
                            c.input,
                            black_box(&c.x),
                            &mut c.y,
                            &mut c.scratch,
                        )
                        .unwrap();
                })
            });
        });
        group.throughput(Throughput::Elements(2 * c.flops));
        group.bench_function(BenchmarkId::new("backward/simd", &name), |b| {
            b.iter_custom(|iters| {
                cpu_timed(iters, || {
                    c.conv
                        .backward::<Simd>(
                            &c.params,
                            BATCH,
                            c.input,
                            black_box(&c.x),
                            black_box(&c.dy),
                            Some(&mut c.dx),
                            &mut c.grads,
                            &mut c.scratch,
                        )
                        .unwrap();
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, conv1d, conv1d_cpu);
criterion_main!(benches);
