//! The augmentations of issue 21: the normal sampler (ns per normal: xoshiro128++ words,
//! the ziggurat, and the reference's Box–Muller `LcgRng::fill_normal` for comparison),
//! a random rotation, and the two views of a 6 × 128 window, alone and in a batch of
//! 128 windows (one training batch of the recipe).
//!
//! `cargo bench --bench augment` and
//! `RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --bench augment`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simsiam::LcgRng;
use simsiam::augment::{Augmenter, Rotation, ViewRecipe, Xoshiro128PlusPlus};

const NORMALS: usize = 4096;
const CHANNELS: usize = 6;
const LEN: usize = 128;
const WINDOW: usize = CHANNELS * LEN;
const BATCH: usize = 128;

fn sampler(c: &mut Criterion) {
    let mut group = c.benchmark_group("sampler");
    group.throughput(Throughput::Elements(NORMALS as u64));
    let mut out = vec![0.0_f32; NORMALS];
    let mut rng = Xoshiro128PlusPlus::from_seed(1);
    group.bench_function("xoshiro128pp_next_u32", |b| {
        b.iter(|| {
            for _ in 0..NORMALS {
                black_box(rng.next_u32());
            }
        });
    });
    group.bench_function("ziggurat_fill_normal", |b| {
        b.iter(|| rng.fill_normal(black_box(&mut out)));
    });
    let mut lcg = LcgRng::new(1);
    group.bench_function("lcg_box_muller_fill_normal", |b| {
        b.iter(|| lcg.fill_normal(black_box(&mut out)));
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("random_rotation", |b| {
        b.iter(|| black_box(Rotation::random(&mut rng)));
    });
    group.finish();
}

fn views(c: &mut Criterion) {
    let mut group = c.benchmark_group("views");
    let raws: Vec<f32> = (0..BATCH * WINDOW)
        .map(|i| ((i * 37) % 257) as f32 / 64.0 - 2.0)
        .collect();
    let mean = [0.1_f32; CHANNELS];
    let std = [0.5_f32; CHANNELS];
    let augmenter = Augmenter::new(ViewRecipe::HAPT, CHANNELS, LEN, &mean, &std).unwrap();
    let mut rng = Xoshiro128PlusPlus::from_seed(2);
    let (mut views1, mut views2) = (vec![0.0; BATCH * WINDOW], vec![0.0; BATCH * WINDOW]);
    group.throughput(Throughput::Elements(1));
    group.bench_function("two_views_6x128", |b| {
        b.iter(|| {
            augmenter
                .two_views(
                    black_box(&raws[..WINDOW]),
                    &mut rng,
                    &mut views1[..WINDOW],
                    &mut views2[..WINDOW],
                )
                .unwrap();
        });
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("two_views_batch_128x6x128", |b| {
        b.iter(|| {
            augmenter
                .two_views_batch(black_box(&raws), BATCH, &mut rng, &mut views1, &mut views2)
                .unwrap();
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = sampler, views
}
criterion_main!(benches);
