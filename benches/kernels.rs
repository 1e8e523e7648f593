//! Scalar twin vs SIMD twin, side by side, one criterion group per kernel.
//!
//! Sizes are `rows × cols` of the matrix (32×128, 128×64, 512×2048, 2048×2048); the
//! vector kernels (dot, L2) run on vectors of `rows·cols` elements. Throughput is the
//! number of multiply–adds (matvec, dot) or elements (L2).
//!
//! The `gemm` group times the training pass's matrix kernels on its shapes, `m×n×k`:
//! `tn` 128×64×64 (`dW += Gᵀ·X` of a 64 → 128 layer at batch 64), `nn` 64×64×128 (its
//! `dX = G·W`), `nn` 64×2048×2048 and `tn` 2048×2048×64 (a paper-size 2048-wide layer).
//! Throughput is in FLOP (`2·m·n·k`), so criterion's "elem/s" reads as FLOP/s.
//!
//! `cargo bench --bench kernels` (SSE2 lanes) and
//! `RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --bench kernels` (AVX2 + FMA).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simsiam::LcgRng;
use simsiam::kernels::{scalar, simd};

const SIZES: [(usize, usize); 4] = [(32, 128), (128, 64), (512, 2048), (2048, 2048)];

fn random(rng: &mut LcgRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.next_f32() - 0.5).collect()
}

type Matvec = fn(&[f32], &[f32], &[f32], &mut [f32]) -> simsiam::SslResult<()>;
type Dot = fn(&[f32], &[f32]) -> simsiam::SslResult<f32>;
type Normalize = fn(&mut [f32]) -> f32;
type Gemm = fn(
    usize,
    usize,
    usize,
    &[f32],
    usize,
    &[f32],
    usize,
    &mut [f32],
    usize,
) -> simsiam::SslResult<()>;

/// `(name, m, n, k)` of the `gemm` group; `nn` reads `A` as `m × k`, `tn` as `k × m`.
const GEMM_SHAPES: [(&str, usize, usize, usize); 4] = [
    ("tn", 128, 64, 64),
    ("nn", 64, 64, 128),
    ("nn", 64, 2048, 2048),
    ("tn", 2048, 2048, 64),
];

fn bench_gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    let mut rng = LcgRng::new(3);
    for (op, m, n, k) in GEMM_SHAPES {
        // Dense operands (leading dimension = width); `A` has `m·k` elements either way.
        let (a, b) = (random(&mut rng, m * k), random(&mut rng, k * n));
        let mut out = random(&mut rng, m * n);
        let lda = if op == "nn" { k } else { m };
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let twins: [(&str, Gemm); 2] = if op == "nn" {
            [("scalar", scalar::gemm_nn_add), ("simd", simd::gemm_nn_add)]
        } else {
            [("scalar", scalar::gemm_tn_add), ("simd", simd::gemm_tn_add)]
        };
        for (twin, f) in twins {
            let id = BenchmarkId::new(twin, format!("{op}_{m}x{n}x{k}"));
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    f(
                        black_box(m),
                        black_box(n),
                        black_box(k),
                        black_box(&a),
                        black_box(lda),
                        black_box(&b),
                        black_box(n),
                        black_box(&mut out),
                        black_box(n),
                    )
                });
            });
        }
    }
    group.finish();
}

fn bench_matvec(c: &mut Criterion, name: &str, twins: [(&str, Matvec); 2]) {
    let mut group = c.benchmark_group(name);
    let mut rng = LcgRng::new(1);
    for (rows, cols) in SIZES {
        let (w, x, b) = (
            random(&mut rng, rows * cols),
            random(&mut rng, cols),
            random(&mut rng, rows),
        );
        let mut y = vec![0.0; rows];
        group.throughput(Throughput::Elements((rows * cols) as u64));
        for (twin, f) in twins {
            group.bench_function(BenchmarkId::new(twin, format!("{rows}x{cols}")), |bench| {
                bench.iter(|| {
                    f(
                        black_box(&w),
                        black_box(&x),
                        black_box(&b),
                        black_box(&mut y),
                    )
                });
            });
        }
    }
    group.finish();
}

fn kernels(c: &mut Criterion) {
    bench_matvec(
        c,
        "matvec_bias",
        [("scalar", scalar::matvec_bias), ("simd", simd::matvec_bias)],
    );
    bench_matvec(
        c,
        "matvec_bias_relu",
        [
            ("scalar", scalar::matvec_bias_relu),
            ("simd", simd::matvec_bias_relu),
        ],
    );

    let mut rng = LcgRng::new(2);
    let mut group = c.benchmark_group("dot");
    for (rows, cols) in SIZES {
        let n = rows * cols;
        let (a, b) = (random(&mut rng, n), random(&mut rng, n));
        group.throughput(Throughput::Elements(n as u64));
        let twins: [(&str, Dot); 2] = [("scalar", scalar::dot), ("simd", simd::dot)];
        for (twin, f) in twins {
            group.bench_function(BenchmarkId::new(twin, format!("{rows}x{cols}")), |bench| {
                bench.iter(|| f(black_box(&a), black_box(&b)));
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("l2_normalize");
    for (rows, cols) in SIZES {
        let n = rows * cols;
        let v = random(&mut rng, n);
        let mut work = v.clone();
        group.throughput(Throughput::Elements(n as u64));
        let twins: [(&str, Normalize); 2] = [
            ("scalar", scalar::l2_normalize),
            ("simd", simd::l2_normalize),
        ];
        for (twin, f) in twins {
            group.bench_function(BenchmarkId::new(twin, format!("{rows}x{cols}")), |bench| {
                // Normalising a unit vector again is the same work each time.
                bench.iter(|| f(black_box(&mut work)));
            });
        }
    }
    group.finish();

    bench_gemm(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(30);
    targets = kernels
}
criterion_main!(benches);
