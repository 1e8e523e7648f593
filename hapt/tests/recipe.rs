//! A short run of the `hapt-dense` recipe (issue 21) improves the encoder's features.
//!
//! The recipe of `examples/hapt.rs`, shortened: every 2nd training window (6 200), batches
//! of 128 (48 steps, one epoch) at the recipe's learning rate (the first 48 steps of its
//! 30-epoch cosine schedule), and a narrower `har_dense` (768→128→64, projection 64,
//! predictor 16) so that the run takes a few seconds at the test profile's opt-level 1;
//! the rest as the recipe (augmentations, SGD, weight decay on every parameter, the
//! predictor on the schedule, stop-gradient, PyTorch's init). The check is `nn1_5`
//! (1-nearest-neighbour with 5 labelled training windows per class, 10 fixed draws,
//! features standardised with the draw) on every 3rd labelled test window: after SimSiam it
//! must beat the encoder at initialisation by [`MARGIN`] points.
//!
//! Checked against a step that learns nothing (learning rate 0: only the BatchNorm running
//! statistics move): the margin is then +0.9 points and the test fails.
use simsiam::LcgRng;
use simsiam::augment::{Augmenter, ViewRecipe, Xoshiro128PlusPlus};
use simsiam::model::{Architecture, HarDense, SimSiamHead};
use simsiam::train::{Sgd, TrainConfig, cosine_lr, momentum_len, scratch_len};
use simsiam_hapt::probe::{Standardiser, accuracy, knn_predict};
use simsiam_hapt::{CHANNELS, Hapt, Split, WindowSpec, Windows};

/// SimSiam's `nn1_5` must exceed the random encoder's by this many points. Measured
/// margins (SimSiam − random, random 53.5 %): plain x86-64 (SSE2, 4 lanes) +5.2,
/// `-C target-cpu=x86-64-v3` (AVX2, 8 lanes) +5.9, `-C target-cpu=native` (AVX-512, 16
/// lanes) +5.4, `--cfg simsiam_f32x16` (16 lanes on SSE2) +5.1; NEON not run here.
const MARGIN: f64 = 2.5;
const BATCH: usize = 128;
const EPOCHS: usize = 1;
/// The schedule's length: the recipe's 30 epochs of 96 steps (the test runs its first steps).
const SCHEDULE_STEPS: u64 = 30 * 96;
const SUBSET_STRIDE: usize = 2;
const TEST_STRIDE: usize = 3;
const SEED: u64 = 0;
const DRAWS: usize = 10;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn below(rng: &mut Xoshiro128PlusPlus, n: usize) -> usize {
    ((u64::from(rng.next_u32()) * n as u64) >> 32) as usize
}

/// Every `stride`-th window of `w` (data and labels).
fn every(w: &Windows, stride: usize, window: usize) -> (Vec<f32>, Vec<i8>) {
    let data = w
        .data()
        .chunks_exact(window)
        .step_by(stride)
        .flatten()
        .copied()
        .collect();
    let labels = w.labels().iter().step_by(stride).copied().collect();
    (data, labels)
}

/// Mean 1-NN accuracy (percent) over `draws` of 5 labelled training windows per class.
fn nn1_5(
    head: &SimSiamHead<Vec<f32>>,
    draws: &[(Vec<f32>, Vec<i8>)],
    test_x: &[f32],
    test_y: &[i8],
) -> Result<f64, Box<dyn std::error::Error>> {
    let dim = head.d_encoder();
    let encode = |x: &[f32]| -> Result<Vec<f32>, Box<dyn std::error::Error>> {
        let n = x.len() / head.d_input();
        let mut out = vec![0.0; n * dim];
        let mut workspace = vec![0.0; head.architecture().workspace_len(n)?];
        head.encode_batch_into(x, &mut out, &mut workspace)?;
        Ok(out)
    };
    let test = encode(test_x)?;
    let mut sum = 0.0;
    for (x, y) in draws {
        let features = encode(x)?;
        let scaler = Standardiser::fit(&features, dim)?;
        let (train, test) = (scaler.transform(&features)?, scaler.transform(&test)?);
        sum += accuracy(&knn_predict(&train, y, &test, dim, 1)?, test_y)?;
    }
    Ok(sum / draws.len() as f64)
}

#[test]
fn a_short_run_beats_the_random_encoder_on_nn1_5() -> TestResult {
    let hapt = Hapt::load_committed()?;
    let train = hapt.windows(WindowSpec::RECIPE, Split::Train)?;
    let stats = train.channel_stats().ok_or("no training windows")?;
    let samples = train.window_len();
    let window = CHANNELS * samples;
    let (raw, _) = every(&train, SUBSET_STRIDE, window);
    let mut labelled = train.clone();
    labelled.standardise(&stats);
    let labelled = labelled.labelled();
    let mut test = hapt.windows(WindowSpec::RECIPE, Split::Test)?;
    test.standardise(&stats);
    let (test_x, test_y) = every(&test.labelled(), TEST_STRIDE, window);

    // Five draws of 5 windows per class, fixed.
    let mut rng = Xoshiro128PlusPlus::from_seed(SEED ^ 0x006e_6e31_5f35);
    let mut draws = Vec::new();
    for _ in 0..DRAWS {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for class in 1..=6_i8 {
            let rows: Vec<usize> = (0..labelled.count())
                .filter(|&i| labelled.labels().get(i) == Some(&class))
                .collect();
            for _ in 0..5 {
                let row = rows[below(&mut rng, rows.len())];
                x.extend_from_slice(labelled.window(row).ok_or("row")?);
                y.push(class);
            }
        }
        draws.push((x, y));
    }

    let sizes = HarDense {
        hidden: 128,
        feature: 64,
        projector_hidden: 64,
        projection: 64,
        predictor_hidden: 16,
        ..HarDense::default()
    };
    let architecture = Architecture::har_dense(&sizes)?;
    let mut params = vec![0.0_f32; architecture.param_count()?];
    architecture.init_params(&mut LcgRng::new(SEED), &mut params)?;
    let mut head = SimSiamHead::new(architecture, params)?;
    let random = nn1_5(&head, &draws, &test_x, &test_y)?;

    let config = TrainConfig {
        fix_predictor_lr: false,
        ..TrainConfig::default()
    };
    let mut sgd = Sgd::new(
        &architecture,
        config,
        vec![0.0; momentum_len(&architecture)?],
    )?;
    let augmenter = Augmenter::new(ViewRecipe::HAPT, CHANNELS, samples, &stats.mean, &stats.std)?;
    let n = raw.len() / window;
    let mut perm: Vec<usize> = (0..n).collect();
    let mut raws = vec![0.0; BATCH * window];
    let (mut v1, mut v2) = (vec![0.0; BATCH * window], vec![0.0; BATCH * window]);
    let mut scratch = vec![0.0; scratch_len(&architecture, BATCH)?];
    let mut rng = Xoshiro128PlusPlus::from_seed(SEED);
    let mut step = 0;
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for _ in 0..EPOCHS {
        for i in (1..n).rev() {
            perm.swap(i, below(&mut rng, i + 1));
        }
        for batch in perm.chunks_exact(BATCH) {
            for (&i, out) in batch.iter().zip(raws.chunks_exact_mut(window)) {
                out.copy_from_slice(&raw[i * window..(i + 1) * window]);
            }
            augmenter.two_views_batch(&raws, BATCH, &mut rng, &mut v1, &mut v2)?;
            sgd.set_lr(cosine_lr(config.lr, step, SCHEDULE_STEPS));
            last_loss = sgd.step(&mut head, &v1, &v2, &mut scratch, [&mut [], &mut []])?;
            first_loss.get_or_insert(last_loss);
            step += 1;
        }
    }
    let trained = nn1_5(&head, &draws, &test_x, &test_y)?;
    eprintln!(
        "loss {:?} -> {last_loss}; nn1_5 random {random:.2} %, SimSiam {trained:.2} %, margin {:+.2} points",
        first_loss,
        trained - random
    );
    assert!(
        trained > random + MARGIN,
        "nn1_5: SimSiam {trained:.2} % does not beat the random encoder's {random:.2} % by {MARGIN} points"
    );
    Ok(())
}
