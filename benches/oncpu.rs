//! The cases of the AVX-512 lane choice (BENCHMARKS.md, "AVX-512: lanes per layer width")
//! timed in on-CPU time (the thread's CPU clock), so the time the thread waits for a core
//! on a loaded machine does not count (wall-clock medians of criterion
//! swung by 2× between runs on the shared 2-core host). Linux only.
//!
//! Each case runs in batches of about 50 ms; the line printed per case is the least and
//! the median per-call time over the batches. Build once per flag set, in its own target
//! directory, and run the binaries alternately:
//! `RUSTFLAGS="-C target-cpu=native" cargo bench --bench oncpu`. Words after it pick the
//! cases: `head`, `train`, or part of a case's name (`-- official_paper/loss`).

use std::hint::black_box;
use std::sync::OnceLock;

use simsiam::kernels::{LANES, Simd};
use simsiam::model::Architecture;
use simsiam::train::{Sgd, TrainConfig, scratch_len};
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, init_params};

/// Nanoseconds this thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`, exact to the
/// call; `/proc/thread-self/schedstat` is only brought up to date at scheduler ticks).
fn on_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable `timespec`; the clock id is a constant Linux knows.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(status, 0, "clock_gettime");
    u64::try_from(t.tv_sec).expect("seconds") * 1_000_000_000
        + u64::try_from(t.tv_nsec).expect("nanoseconds")
}

/// The words on the command line (`cargo bench` passes `--bench`, which is dropped).
fn words() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect()
    })
}

/// Whether the case `name` of the group `group` (`head` or `train`) runs: with no words,
/// every case; otherwise the cases of a group named by a word and those whose name
/// contains a word (`default/loss` runs that case alone, for a profile).
fn selected(group: &str, name: &str) -> bool {
    let words = words();
    words.is_empty()
        || words
            .iter()
            .any(|w| w == group || name.contains(w.as_str()))
}

/// Prints the least and the median on-CPU time of one call of `f`, over `batches`
/// batches of about 50 ms, if the command line selects the case.
fn time(group: &str, name: &str, batches: usize, mut f: impl FnMut()) {
    if !selected(group, name) {
        return;
    }
    let start = on_cpu_ns();
    let mut calls = 0_u64;
    while on_cpu_ns() - start < 50_000_000 || calls < 2 {
        f();
        calls += 1;
    }
    let per_batch = calls.max(1);
    let mut times: Vec<f64> = (0..batches)
        .map(|_| {
            let start = on_cpu_ns();
            for _ in 0..per_batch {
                f();
            }
            (on_cpu_ns() - start) as f64 / per_batch as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{name}\t{:.0}\t{:.0}", times[0], times[times.len() / 2]);
}

fn uniform(rng: &mut LcgRng, len: usize, centre: f32, half_width: f32) -> Vec<f32> {
    (0..len)
        .map(|_| centre + (rng.next_f32() * 2.0 - 1.0) * half_width)
        .collect()
}

/// Parameters with a trained head's statistics (as `benches/head.rs`' `trained_like`).
fn trained_like(architecture: &Architecture, rng: &mut LcgRng) -> Vec<f32> {
    let mut params = Vec::new();
    for layer in architecture.layers() {
        let scale = 1.0 / (layer.d_in as f32).sqrt();
        params.extend(uniform(rng, layer.d_in * layer.d_out, 0.0, scale));
        if layer.bias {
            params.extend(uniform(rng, layer.d_out, 0.0, scale));
        }
        if let Some(batch_norm) = layer.batch_norm {
            if batch_norm.affine {
                params.extend(uniform(rng, layer.d_out, 1.0, 0.25));
                params.extend(uniform(rng, layer.d_out, 0.0, 0.125));
            }
            params.extend(uniform(rng, layer.d_out, 0.0, 0.125));
            params.extend(uniform(rng, layer.d_out, 1.0, 0.25));
        }
    }
    params
}

fn head_loss(name: &str, dims: [usize; 4]) {
    let [d_encoder, d_projector, d_predictor, d_out] = dims;
    let config = SimSiamConfig {
        d_encoder,
        d_projector,
        d_predictor,
        d_out,
    };
    let mut params = vec![0.0; config.param_count().expect("config")];
    init_params(&config, &mut LcgRng::new(0), &mut params).expect("init");
    let head = SimSiamHead::from_params(config, &params[..])
        .expect("head")
        .with_kernels::<Simd>();
    let mut rng = LcgRng::new(1);
    let z1 = uniform(&mut rng, d_encoder, 0.0, 1.0);
    let z2 = uniform(&mut rng, d_encoder, 0.0, 1.0);
    let mut workspace = vec![0.0; config.batch_loss_workspace_len(1).expect("ws")];
    time("head", name, 30, || {
        black_box(head.loss(black_box(&z1), black_box(&z2), &mut workspace)).ok();
    });
}

fn official_paper() {
    let architecture = Architecture::official(2048, 2048, 512).expect("official");
    let params = trained_like(&architecture, &mut LcgRng::new(3));
    let head = SimSiamHead::new(architecture, &params[..])
        .expect("finite")
        .with_kernels::<Simd>();
    let mut rng = LcgRng::new(4);
    let z1s = uniform(&mut rng, 64 * 2048, 0.0, 1.0);
    let z2s = uniform(&mut rng, 64 * 2048, 0.0, 1.0);
    let mut workspace = vec![0.0; architecture.workspace_len(64).expect("ws")];
    let mut losses = vec![0.0; 64];
    time("head", "official_paper/loss", 15, || {
        let (z1, z2) = (&z1s[..2048], &z2s[..2048]);
        black_box(head.loss(black_box(z1), black_box(z2), &mut workspace)).ok();
    });
    for n in [8, 64] {
        let (z1n, z2n) = (&z1s[..n * 2048], &z2s[..n * 2048]);
        time(
            "head",
            &format!("official_paper/batch_loss/{n}"),
            10,
            || {
                let losses = &mut losses[..n];
                head.loss_batch_into(black_box(z1n), black_box(z2n), losses, &mut workspace)
                    .ok();
            },
        );
    }
}

fn train(name: &str, architecture: &Architecture, n: usize, batches: usize) {
    let d = architecture.d_encoder();
    let mut rng = LcgRng::new(1);
    let x1s = uniform(&mut rng, n * d, 0.0, 1.0);
    let x2s: Vec<f32> = x1s.iter().map(|x| x + 0.1).collect();
    let params = trained_like(architecture, &mut LcgRng::new(0));
    let mut head = SimSiamHead::new(*architecture, params)
        .expect("head")
        .with_kernels::<Simd>();
    let count = architecture.param_count().expect("count");
    let mut sgd = Sgd::new(architecture, TrainConfig::default(), vec![0.0; count]).expect("sgd");
    let mut scratch = vec![0.0; scratch_len(architecture, n).expect("len")];
    let mut g1 = vec![0.0; n * d];
    let mut g2 = vec![0.0; n * d];
    time("train", name, batches, || {
        black_box(sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut g1, &mut g2])).ok();
    });
}

fn main() {
    // Words pick the cases (see `selected`): `head`, `train`, or part of a case's name.
    println!("# LANES = {LANES}");
    let any_of = |group: &str, names: &[&str]| names.iter().any(|n| selected(group, n));
    head_loss("default/loss", [64, 128, 64, 32]);
    head_loss("mid/loss", [256, 512, 128, 64]);
    let paper_cases = [
        "official_paper/loss",
        "official_paper/batch_loss/8",
        "official_paper/batch_loss/64",
    ];
    if any_of("head", &paper_cases) {
        official_paper();
    }
    let default = Architecture::reference(SimSiamConfig::DEFAULT).expect("arch");
    train("train_default/8", &default, 8, 20);
    train("train_default/64", &default, 64, 20);
    if any_of("train", &["train_official_paper/64"]) {
        let paper = Architecture::official(2048, 2048, 512).expect("arch");
        train("train_official_paper/64", &paper, 64, 5);
    }
}
