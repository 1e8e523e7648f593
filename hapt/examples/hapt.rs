//! The main command (issue 21): SimSiam pretraining on the UCI HAPT raw signals with the
//! pinned recipe, then the six evaluation protocols on three feature sets.
//!
//! ```text
//! cargo run --release --example hapt -- --recipe hapt-dense --seed S --epochs E \
//!     --json OUT.json --save MODEL.simsiam --plot OUT.svg
//! ```
//!
//! The recipe (the PyTorch reference, `scripts/hapt_pytorch.py`, makes the same choices; see
//! `scripts/hapt_pytorch_results.md`): windows of 128 samples, stride 64, split by subject,
//! standardisation with the training windows' population statistics; two views of each window
//! by `simsiam::augment` (rotation, standardisation, scale N(1, 0.1²), jitter N(0, 0.1²));
//! batches of 128 reshuffled each epoch, the remainder dropped; SGD lr 0.05, momentum 0.9,
//! weight decay 1e-4 on every parameter, cosine schedule per step to 0, the predictor on the
//! schedule too, stop-gradient, symmetric negative cosine; PyTorch's default initialisation.
//! Evaluation: the encoder in eval mode on un-augmented standardised windows, the protocols of
//! `simsiam_hapt::probe`.
//!
//! Random streams, all from `--seed S`: the initialisation from `LcgRng::new(S)` (with
//! `--init xoshiro`: from `Xoshiro128PlusPlus::from_seed(S ^ 0x696e_6974)`); the shuffle
//! and the augmentations from one `Xoshiro128PlusPlus::from_seed(S)` (each epoch: the shuffle,
//! then each batch's views, window by window, view 1 then view 2); the probes' label draws
//! from `S` (`Protocols::evaluate`); the per-epoch `nn1_5` probe's draws from
//! `Xoshiro128PlusPlus::from_seed(S ^ 0x006e_6e31_5f35)`, fixed for the run.
//!
//! `--save`: the whole trained network as one parameter image (version 2, `simsiam::image`)
//! in MODEL.simsiam: every parameter and BatchNorm counter, the input contract (6 channels ×
//! 128 samples, channel-major, and the training windows' per-channel mean and std, which
//! inputs must be standardised with), and the training section (SGD momentum, steps, the
//! cosine schedule's position, the xoshiro128++ state of the shuffle and augmentations), so
//! a run can be resumed. `SimSiam::from_image` or `simsiam-convert` read it.
//!
//! Buffers of the training loop are sized before it; the loop's core (shuffle, views, step,
//! collapse std) makes no heap allocation.
use clap::{Parser, ValueEnum};
use simsiam::LcgRng;
use simsiam::augment::{Augmenter, ViewRecipe, Xoshiro128PlusPlus};
use simsiam::image::{
    ImageExtras, InputContract, SchedulePosition, Standardization, TrainingSection, TrainingState,
    image_len_with, write_image_with,
};
use simsiam::model::{Architecture, HarConv, HarDense, SimSiamHead};
use simsiam::train::{
    Sgd, TrainConfig, cosine_lr, momentum_len, output_std, output_std_scratch_len,
    projection_ranges, scratch_len,
};
use simsiam_hapt::probe::{ProtocolScores, Protocols, Standardiser, accuracy, knn_predict};
use simsiam_hapt::{CHANNELS, ChannelStats, Hapt, Split, WindowSpec, Windows};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// The recipes of issue 21.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
// The variants spell the recipes' command-line names (`hapt-dense`, `hapt-conv`, `hapt-mcu`).
#[allow(clippy::enum_variant_names)]
enum Recipe {
    /// Encoder 768→256→128 (Linear without bias, BatchNorm, ReLU, twice).
    HaptDense,
    /// Three Conv1d + BatchNorm + ReLU with max pools and a global max pool (≈3.5 GFLOP a step).
    HaptConv,
    /// The microcontroller's network (issue 22): `HarDense::MCU` on windows averaged down
    /// by 4 (32 samples at 12.5 Hz), encoder 192→32→32.
    HaptMcu,
}

impl Recipe {
    fn name(self) -> &'static str {
        match self {
            Self::HaptDense => "hapt-dense",
            Self::HaptConv => "hapt-conv",
            Self::HaptMcu => "hapt-mcu",
        }
    }

    fn architecture(self) -> simsiam::SslResult<Architecture> {
        match self {
            Self::HaptDense => Architecture::har_dense(&HarDense::default()),
            Self::HaptConv => Architecture::har_conv(&HarConv::default()),
            Self::HaptMcu => Architecture::har_dense(&HarDense::MCU),
        }
    }

    /// The windows are averaged over runs of this many samples before anything else
    /// (`Windows::downsampled`).
    fn downsample(self) -> usize {
        match self {
            Self::HaptDense | Self::HaptConv => 1,
            Self::HaptMcu => 4,
        }
    }

    /// Multiply-adds of the Linear and Conv1d layers per training step of 128 pairs, as
    /// `scripts/hapt_pytorch_results.md` counts them (2 FLOPs each).
    fn flops_per_step(self) -> f64 {
        match self {
            Self::HaptDense => 314_572_800.0,
            Self::HaptConv => 3_499_622_400.0,
            // 6·128·(192·32 + 32·32 + 32·32 + 32·32 + 32·16 + 16·32): forward of both views
            // and a backward of twice the forward.
            Self::HaptMcu => 8_650_752.0,
        }
    }
}

/// The generator of the initial weights (`--init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InitGenerator {
    /// `LcgRng::new(S)`, the reference's generator (the default).
    Lcg,
    /// `Xoshiro128PlusPlus::from_seed(S ^ INIT_SEED_MASK)`, each draw 24 random bits as a
    /// float in `[0, 1)`.
    Xoshiro,
}

impl InitGenerator {
    fn name(self) -> &'static str {
        match self {
            Self::Lcg => "lcg",
            Self::Xoshiro => "xoshiro",
        }
    }
}

/// Mixed into the seed of the `--init xoshiro` stream ("init" in ASCII), so it is not the
/// shuffle and augmentation stream of the same seed.
const INIT_SEED_MASK: u64 = 0x696e_6974;

/// SimSiam on UCI HAPT: pretrain, then the six protocols on raw, random and trained features.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The recipe.
    #[arg(long, value_enum, default_value = "hapt-dense")]
    recipe: Recipe,
    /// Seed of the initialisation, the shuffle, the augmentations and the label draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Pretraining epochs (96 steps of 128 pairs each).
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Save the trained network here as one parameter image (version 2: the whole network,
    /// its input contract with the standardisation, and the training state).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Draw loss, collapse std and nn1_5 against epochs into this SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Skip the per-epoch nn1_5 probe.
    #[arg(long)]
    no_epoch_probe: bool,
    /// Stop after pretraining (no protocols, no JSON): for timing runs.
    #[arg(long)]
    no_eval: bool,
    /// Pairs per step (the recipe's 128; `hapt-mcu` on the device trains at a smaller batch).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Stop after this many steps, the cosine schedule reaching 0 there (the device's step
    /// count); default: every step of `--epochs` epochs.
    #[arg(long)]
    max_steps: Option<u64>,
    /// The generator of the initial weights (same distribution, same order either way).
    #[arg(long, value_enum, default_value = "lcg")]
    init: InitGenerator,
}

const LR: f32 = 0.05;
/// Windows encoded at once in evaluation.
const EVAL_CHUNK: usize = 256;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// This thread's user + system CPU time in seconds (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

/// A uniform index below `n` (Lemire's multiply-and-reject).
fn below(rng: &mut Xoshiro128PlusPlus, n: usize) -> usize {
    let n = n as u64;
    loop {
        let m = u64::from(rng.next_u32()) * n;
        if (m as u32 as u64) >= (1u64 << 32) % n.max(1) {
            return (m >> 32) as usize;
        }
    }
}

/// Fisher–Yates in place.
fn shuffle(perm: &mut [usize], rng: &mut Xoshiro128PlusPlus) {
    for i in (1..perm.len()).rev() {
        let j = below(rng, i + 1);
        perm.swap(i, j);
    }
}

/// Encoder features (eval mode) of every window of `xs` (`n × d_input`), `EVAL_CHUNK` at a time.
fn encode_all(
    head: &SimSiamHead<Vec<f32>>,
    xs: &[f32],
    workspace: &mut [f32],
) -> simsiam::SslResult<Vec<f32>> {
    let (d_in, d_out) = (head.d_input(), head.d_encoder());
    let mut out = vec![0.0; xs.len() / d_in * d_out];
    for (x, o) in xs
        .chunks(EVAL_CHUNK * d_in)
        .zip(out.chunks_mut(EVAL_CHUNK * d_out))
    {
        head.encode_batch_into(x, o, workspace)?;
    }
    Ok(out)
}

/// The per-epoch `nn1_5` probe: fixed draws of 5 labelled training windows per class, 5 draws,
/// 1-NN after standardising with the draw, mean accuracy on the test windows.
struct EpochProbe {
    /// The drawn windows, draw after draw (5 draws × 6 classes × 5 windows).
    picks_x: Vec<f32>,
    picks_y: Vec<i8>,
    per_draw: usize,
}

impl EpochProbe {
    fn new(train: &Windows, seed: u64) -> Self {
        let mut rng = Xoshiro128PlusPlus::from_seed(seed ^ 0x006e_6e31_5f35);
        let (mut picks_x, mut picks_y) = (Vec::new(), Vec::new());
        let mut per_draw = 0;
        for _ in 0..5 {
            per_draw = 0;
            for class in 1..=6_i8 {
                let mut rows: Vec<usize> = (0..train.count())
                    .filter(|&i| train.labels().get(i) == Some(&class))
                    .collect();
                for j in 0..5.min(rows.len()) {
                    let pick = j + below(&mut rng, rows.len() - j);
                    rows.swap(j, pick);
                    if let Some(w) = train.window(rows[j]) {
                        picks_x.extend_from_slice(w);
                        picks_y.push(class);
                        per_draw += 1;
                    }
                }
            }
        }
        Self {
            picks_x,
            picks_y,
            per_draw,
        }
    }

    /// Mean 1-NN accuracy (percent) of the draws on `test_features`.
    fn nn1(
        &self,
        head: &SimSiamHead<Vec<f32>>,
        test_features: &[f32],
        test_y: &[i8],
        workspace: &mut [f32],
    ) -> Result<f64> {
        let dim = head.d_encoder();
        let features = encode_all(head, &self.picks_x, workspace)?;
        let mut sum = 0.0;
        let mut draws = 0.0;
        for (x, y) in features
            .chunks(self.per_draw * dim)
            .zip(self.picks_y.chunks(self.per_draw))
        {
            let scaler = Standardiser::fit(x, dim)?;
            let (train, test) = (scaler.transform(x)?, scaler.transform(test_features)?);
            sum += accuracy(&knn_predict(&train, y, &test, dim, 1)?, test_y)?;
            draws += 1.0;
        }
        Ok(sum / draws)
    }
}

/// What one epoch measured.
#[derive(Debug, Clone, Copy, Default)]
struct EpochLog {
    loss: f64,
    collapse_std: f64,
    nn1_5: Option<f64>,
    seconds: f64,
    cpu_seconds: f64,
    augment_seconds: f64,
    steps_seconds: f64,
}

fn json_list(values: impl Iterator<Item = f64>) -> String {
    let items: Vec<String> = values.map(|v| format!("{v}")).collect();
    format!("[{}]", items.join(", "))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0.0), |(s, n), v| (s + v, n + 1.0));
    if n > 0.0 { sum / n } else { f64::NAN }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let recipe = args.recipe;

    // Data: windows, split, standardisation statistics of the training windows.
    let hapt = Hapt::load_committed()?;
    let train_raw = hapt
        .windows(WindowSpec::RECIPE, Split::Train)?
        .downsampled(recipe.downsample())?;
    let batch_size = args.batch;
    if batch_size < 2 {
        return Err("--batch must be at least 2 (BatchNorm needs two rows)".into());
    }
    let stats = train_raw
        .channel_stats()
        .ok_or("no training windows in the data file")?;
    let mut train_std = train_raw.clone();
    train_std.standardise(&stats);
    let train_labelled = train_std.labelled();
    let mut test = hapt
        .windows(WindowSpec::RECIPE, Split::Test)?
        .downsampled(recipe.downsample())?;
    test.standardise(&stats);
    let test = test.labelled();
    let samples = train_raw.window_len();
    let window_len = CHANNELS * samples;
    let n_windows = train_raw.count();
    let steps_per_epoch = n_windows / batch_size;
    let total_steps = args
        .max_steps
        .unwrap_or((steps_per_epoch * args.epochs) as u64)
        .min((steps_per_epoch * args.epochs) as u64);
    println!(
        "{}: {} training windows ({} labelled), {} labelled test windows; {} epochs of {} steps of {} pairs, seed {}",
        recipe.name(),
        n_windows,
        train_labelled.count(),
        test.count(),
        args.epochs,
        steps_per_epoch,
        batch_size,
        args.seed
    );

    // The network, PyTorch's default initialisation from the seed.
    let architecture = recipe.architecture()?;
    let mut params = vec![0.0_f32; architecture.param_count()?];
    match args.init {
        InitGenerator::Lcg => architecture.init_params(&mut LcgRng::new(args.seed), &mut params)?,
        InitGenerator::Xoshiro => {
            let mut rng = Xoshiro128PlusPlus::from_seed(args.seed ^ INIT_SEED_MASK);
            // 24 random bits, exactly representable: a float in [0, 1).
            architecture
                .init_params_with(|| (rng.next_u32() >> 8) as f32 / 16_777_216.0, &mut params)?;
        }
    }
    let initial = SimSiamHead::new(architecture, params.clone())?;
    let mut head = SimSiamHead::new(architecture, params)?;
    let d_out = architecture.d_out();
    let config = TrainConfig {
        lr: LR,
        fix_predictor_lr: false,
        ..TrainConfig::default()
    };
    let mut sgd = Sgd::new(
        &architecture,
        config,
        vec![0.0_f32; momentum_len(&architecture)?],
    )?;

    // Every buffer of the training loop, sized once.
    let augmenter = Augmenter::new(ViewRecipe::HAPT, CHANNELS, samples, &stats.mean, &stats.std)?;
    let mut rng = Xoshiro128PlusPlus::from_seed(args.seed);
    let mut perm: Vec<usize> = (0..n_windows).collect();
    let mut raws = vec![0.0_f32; batch_size * window_len];
    let mut views1 = vec![0.0_f32; batch_size * window_len];
    let mut views2 = vec![0.0_f32; batch_size * window_len];
    let mut scratch = vec![0.0_f32; scratch_len(&architecture, batch_size)?];
    let [z1_range, _] = projection_ranges(&architecture, batch_size)?;
    let mut std_scratch = vec![0.0_f32; output_std_scratch_len(d_out)];
    let mut eval_workspace = vec![0.0_f32; architecture.workspace_len(EVAL_CHUNK)?];
    let raw_data = train_raw.data();

    let probe = (!args.no_epoch_probe).then(|| EpochProbe::new(&train_labelled, args.seed));
    let mut logs: Vec<EpochLog> = Vec::with_capacity(args.epochs);
    let nn1_at_init = match &probe {
        Some(p) => {
            let test_features = encode_all(&initial, test.data(), &mut eval_workspace)?;
            Some(p.nn1(&initial, &test_features, test.labels(), &mut eval_workspace)?)
        }
        None => None,
    };
    if let Some(nn1) = nn1_at_init {
        println!("epoch  0: nn1_5 {nn1:5.1} % (the encoder at initialisation)");
    }

    let mut step: u64 = 0;
    for epoch in 1..=args.epochs {
        if step >= total_steps {
            break;
        }
        let epoch_steps_start = step;
        let (epoch_start, cpu_start) = (Instant::now(), cpu_seconds());
        let (mut augment_s, mut steps_s) = (0.0, 0.0);
        let (mut loss_sum, mut std_sum) = (0.0_f64, 0.0_f64);
        shuffle(&mut perm, &mut rng);
        for batch in perm.chunks_exact(batch_size) {
            if step >= total_steps {
                break;
            }
            let t = Instant::now();
            for (&i, raw) in batch.iter().zip(raws.chunks_exact_mut(window_len)) {
                let source = raw_data
                    .get(i * window_len..(i + 1) * window_len)
                    .ok_or("window index out of range")?;
                raw.copy_from_slice(source);
            }
            augmenter
                .two_views_batch(&raws, batch_size, &mut rng, &mut views1, &mut views2)
                .map_err(|e| format!("augmenting a batch: {e}"))?;
            let t2 = Instant::now();
            sgd.set_lr(cosine_lr(LR, step, total_steps));
            let loss = sgd
                .step(
                    &mut head,
                    &views1,
                    &views2,
                    &mut scratch,
                    [&mut [], &mut []],
                )
                .map_err(|e| format!("training step: {e}"))?;
            let z1 = scratch
                .get(z1_range.clone())
                .ok_or("projection range outside the scratch")?;
            let std = output_std(z1, d_out, &mut std_scratch)?;
            let t3 = Instant::now();
            augment_s += (t2 - t).as_secs_f64();
            steps_s += (t3 - t2).as_secs_f64();
            loss_sum += f64::from(loss);
            std_sum += f64::from(std);
            step += 1;
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        let nn1_5 = match &probe {
            Some(p) => {
                let test_features = encode_all(&head, test.data(), &mut eval_workspace)?;
                Some(p.nn1(&head, &test_features, test.labels(), &mut eval_workspace)?)
            }
            None => None,
        };
        let log = EpochLog {
            loss: loss_sum / (step - epoch_steps_start).max(1) as f64,
            collapse_std: std_sum / (step - epoch_steps_start).max(1) as f64,
            nn1_5,
            seconds,
            cpu_seconds: cpu,
            augment_seconds: augment_s,
            steps_seconds: steps_s,
        };
        let nn1 = nn1_5.map_or(String::new(), |v| format!("  nn1_5 {v:5.1} %"));
        println!(
            "epoch {epoch:2}: loss {:+.4}  collapse std·√{d_out} {:.3}{nn1}  {:.2} s ({:.2} s CPU; views {:.2} s, steps {:.2} s)",
            log.loss,
            log.collapse_std * (d_out as f64).sqrt(),
            seconds,
            cpu,
            augment_s,
            steps_s
        );
        logs.push(log);
    }

    if args.no_eval {
        let cpu = mean(logs.iter().map(|l| l.cpu_seconds));
        let wall = mean(logs.iter().map(|l| l.seconds));
        let steps = mean(logs.iter().map(|l| l.steps_seconds));
        let views = mean(logs.iter().map(|l| l.augment_seconds));
        println!(
            "{wall:.3} s per epoch ({cpu:.3} s CPU; views {views:.3} s, steps {steps:.3} s wall); --no-eval: no protocols"
        );
        return Ok(());
    }

    // Evaluation: the six protocols on raw windows, the encoder at init, after SimSiam.
    let dim = head.d_encoder();
    let protocols = Protocols::RECIPE;
    let t = Instant::now();
    let raw_scores = protocols.evaluate(
        train_labelled.data(),
        train_labelled.labels(),
        test.data(),
        test.labels(),
        window_len,
        args.seed,
    )?;
    let random_train = encode_all(&initial, train_labelled.data(), &mut eval_workspace)?;
    let random_test = encode_all(&initial, test.data(), &mut eval_workspace)?;
    let random_scores = protocols.evaluate(
        &random_train,
        train_labelled.labels(),
        &random_test,
        test.labels(),
        dim,
        args.seed,
    )?;
    let eval_raw_random = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let trained_train = encode_all(&head, train_labelled.data(), &mut eval_workspace)?;
    let trained_test = encode_all(&head, test.data(), &mut eval_workspace)?;
    let simsiam_scores = protocols.evaluate(
        &trained_train,
        train_labelled.labels(),
        &trained_test,
        test.labels(),
        dim,
        args.seed,
    )?;
    let eval_simsiam = t.elapsed().as_secs_f64();

    println!();
    println!("accuracy on the held-out subjects (percent)");
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>7} {:>10} {:>7}",
        "features", "linear_all", "knn5_all", "linear_5", "nn1_5", "linear_20", "nn1_20"
    );
    for (name, s) in [
        ("raw", &raw_scores),
        ("random", &random_scores),
        ("simsiam", &simsiam_scores),
    ] {
        println!(
            "{:<10} {:>10.1} {:>9.1} {:>9.1} {:>7.1} {:>10.1} {:>7.1}",
            name, s.linear_all, s.knn5_all, s.linear_5, s.nn1_5, s.linear_20, s.nn1_20
        );
    }
    let s_per_epoch = mean(logs.iter().map(|l| l.seconds));
    let cpu_per_epoch = mean(logs.iter().map(|l| l.cpu_seconds));
    let steps_per_epoch_s = mean(logs.iter().map(|l| l.steps_seconds));
    let final_loss = logs.last().map_or(f64::NAN, |l| l.loss);
    let gflops = recipe.flops_per_step() * (batch_size as f64 / 128.0) * steps_per_epoch as f64
        / steps_per_epoch_s
        / 1e9;
    println!(
        "\n{s_per_epoch:.2} s per epoch ({cpu_per_epoch:.2} s CPU; steps {steps_per_epoch_s:.2} s, {gflops:.1} GFLOP/s), final loss {final_loss:+.4}; evaluation {eval_raw_random:.1} s (raw + random) + {eval_simsiam:.1} s (simsiam); total {:.1} s",
        started.elapsed().as_secs_f64()
    );

    if let Some(path) = &args.save {
        let run = Run {
            sgd: &sgd,
            step,
            total_steps,
            rng: &rng,
        };
        save(&head, &stats, &run, path)?;
    }
    if let Some(path) = &args.plot {
        plot(path, recipe, &logs, nn1_at_init)?;
        println!("plot: {}", path.display());
    }
    if let Some(path) = &args.json {
        let json = to_json(
            &args,
            &[raw_scores, random_scores, simsiam_scores],
            &logs,
            nn1_at_init,
            [
                eval_raw_random,
                eval_simsiam,
                started.elapsed().as_secs_f64(),
            ],
            (&train_labelled, &test, n_windows, &stats),
        );
        std::fs::write(path, json)?;
        println!("json: {}", path.display());
    }
    Ok(())
}

/// Where the training run stands when it is saved.
struct Run<'a> {
    sgd: &'a Sgd<Vec<f32>>,
    step: u64,
    total_steps: u64,
    rng: &'a Xoshiro128PlusPlus,
}

/// Writes the whole network to `path` as one version-2 parameter image, with the input
/// contract (shape, layout, the standardisation `stats`) and the training section.
fn save(
    head: &SimSiamHead<Vec<f32>>,
    stats: &ChannelStats,
    run: &Run<'_>,
    path: &std::path::Path,
) -> Result<()> {
    let architecture = head.architecture();
    let shape = architecture
        .encoder
        .map(|encoder| encoder.input())
        .ok_or("the recipe's network has an encoder")?;
    let standardization = Standardization::new(&stats.mean, &stats.std)?;
    let state = TrainingState {
        schedule: SchedulePosition {
            base_lr: LR,
            step: run.step,
            total: run.total_steps,
        },
        // One generator draws the shuffle and the augmentations.
        augment_rng: Some(run.rng.state()),
        ..TrainingState::from_sgd(run.sgd)
    };
    let extras = ImageExtras {
        input: Some(InputContract::channel_major(shape).with_standardization(standardization)),
        training: Some(TrainingSection {
            state,
            momentum: run.sgd.momentum(),
        }),
        ..head.image_extras()
    };
    let mut image = vec![0_u8; image_len_with(architecture, &extras)?];
    write_image_with(architecture, head.params(), &extras, &mut image)?;
    std::fs::write(path, &image)?;
    println!(
        "saved: {} ({} bytes) = the whole network as a version-2 parameter image: {} parameters \
         (the encoder's {} first), BatchNorm counters, the input contract ({}×{} channel-major, \
         standardised with the training windows' mean and std) and the training state (step {} \
         of {}, SGD momentum, the generator's state)",
        path.display(),
        image.len(),
        head.params().len(),
        architecture.encoder_param_count()?,
        shape.channels,
        shape.len,
        run.step,
        run.total_steps
    );
    Ok(())
}

/// One panel of the picture: its title, its points (epoch, value) and its colour.
type Panel = (&'static str, Vec<(f64, f64)>, plotters::style::RGBColor);

/// Loss, collapse std·√d and nn1_5 against epochs, one panel each.
fn plot(
    path: &std::path::Path,
    recipe: Recipe,
    logs: &[EpochLog],
    nn1_at_init: Option<f64>,
) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (720, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let epochs = logs.len().max(1) as f64;
    let d = 128.0_f64.sqrt();
    let series: [Panel; 3] = [
        (
            "loss (symmetric negative cosine)",
            logs.iter()
                .enumerate()
                .map(|(i, l)| ((i + 1) as f64, l.loss))
                .collect(),
            RED,
        ),
        (
            "collapse std × √128 (healthy ≈ 1)",
            logs.iter()
                .enumerate()
                .map(|(i, l)| ((i + 1) as f64, l.collapse_std * d))
                .collect(),
            BLUE,
        ),
        (
            "nn1_5 (%), 5 labels per class",
            nn1_at_init
                .map(|v| (0.0, v))
                .into_iter()
                .chain(
                    logs.iter()
                        .enumerate()
                        .filter_map(|(i, l)| l.nn1_5.map(|v| ((i + 1) as f64, v))),
                )
                .collect(),
            GREEN,
        ),
    ];
    for (panel, (title, points, colour)) in panels.iter().zip(series) {
        let (lo, hi) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, y)| {
                (lo.min(y), hi.max(y))
            });
        let (lo, hi) = if lo.is_finite() && hi > lo {
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{} — {title}", recipe.name()), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..epochs, lo..hi)?;
        chart.configure_mesh().x_desc("epoch").draw()?;
        chart.draw_series(LineSeries::new(points, &colour))?;
    }
    root.present()?;
    Ok(())
}

fn to_json(
    args: &Args,
    scores: &[ProtocolScores; 3],
    logs: &[EpochLog],
    nn1_at_init: Option<f64>,
    [eval_raw_random, eval_simsiam, total]: [f64; 3],
    (train_labelled, test, train_windows, stats): (
        &Windows,
        &Windows,
        usize,
        &simsiam_hapt::ChannelStats,
    ),
) -> String {
    let recipe = args.recipe;
    let steps = train_windows / args.batch;
    let d = 128.0_f64.sqrt();
    let steps_s = mean(logs.iter().map(|l| l.steps_seconds));
    let mut s = String::from("{\n");
    let _ = writeln!(s, " \"recipe\": \"{}\",", recipe.name());
    let _ = writeln!(s, " \"seed\": {},", args.seed);
    let _ = writeln!(s, " \"init\": \"{}\",", args.init.name());
    let _ = writeln!(s, " \"epochs\": {},", args.epochs);
    let _ = writeln!(s, " \"batch\": {},", args.batch);
    let _ = writeln!(
        s,
        " \"max_steps\": {},",
        args.max_steps.map_or("null".to_string(), |k| k.to_string())
    );
    for (name, score) in ["raw", "random", "simsiam"].iter().zip(scores) {
        let _ = writeln!(s, " \"{name}\": {},", score.to_json());
    }
    let _ = writeln!(
        s,
        " \"s_per_epoch\": {},",
        mean(logs.iter().map(|l| l.seconds))
    );
    let _ = writeln!(
        s,
        " \"final_loss\": {},",
        logs.last().map_or(f64::NAN, |l| l.loss)
    );
    let _ = writeln!(s, " \"s_per_epoch_no_augment\": {steps_s},");
    let _ = writeln!(
        s,
        " \"s_per_epoch_augment_only\": {},",
        mean(logs.iter().map(|l| l.augment_seconds))
    );
    let _ = writeln!(
        s,
        " \"cpu_s_per_epoch\": {},",
        mean(logs.iter().map(|l| l.cpu_seconds))
    );
    let _ = writeln!(
        s,
        " \"timing_note\": \"s_*: wall clock (std::time::Instant); cpu_s_*: this thread's CPU time (/proc/thread-self/stat, 10 ms ticks); the per-epoch nn1_5 probe is not included\","
    );
    let _ = writeln!(
        s,
        " \"gflops_per_s_steps\": {},",
        recipe.flops_per_step() * steps as f64 / steps_s / 1e9
    );
    let _ = writeln!(
        s,
        " \"loss_per_epoch\": {},",
        json_list(logs.iter().map(|l| l.loss))
    );
    let _ = writeln!(
        s,
        " \"collapse_std_per_epoch\": {},",
        json_list(logs.iter().map(|l| l.collapse_std))
    );
    let _ = writeln!(
        s,
        " \"collapse_std_normalised_per_epoch\": {},",
        json_list(logs.iter().map(|l| l.collapse_std * d))
    );
    let _ = writeln!(
        s,
        " \"collapse_std_definition\": \"mean over the epoch's steps of simsiam::train::output_std(z1) (lightly's std_of_l2_normalized, unbiased), z1 = view 1's projector output in training mode; *_normalised = that times sqrt(128)\","
    );
    let _ = writeln!(
        s,
        " \"nn1_5_per_epoch\": {},",
        json_list(logs.iter().filter_map(|l| l.nn1_5))
    );
    let _ = writeln!(
        s,
        " \"nn1_5_at_init\": {},",
        nn1_at_init.map_or("null".to_string(), |v| format!("{v}"))
    );
    let _ = writeln!(
        s,
        " \"nn1_5_per_epoch_note\": \"5 draws of 5 windows per class fixed for the run (Xoshiro128PlusPlus from seed ^ 0x006e6e315f35), not the final table's draws\","
    );
    let _ = writeln!(
        s,
        " \"s_epoch_per_epoch\": {},",
        json_list(logs.iter().map(|l| l.seconds))
    );
    let _ = writeln!(
        s,
        " \"s_augment_per_epoch\": {},",
        json_list(logs.iter().map(|l| l.augment_seconds))
    );
    let _ = writeln!(
        s,
        " \"s_steps_per_epoch\": {},",
        json_list(logs.iter().map(|l| l.steps_seconds))
    );
    let _ = writeln!(
        s,
        " \"cpu_s_epoch_per_epoch\": {},",
        json_list(logs.iter().map(|l| l.cpu_seconds))
    );
    let _ = writeln!(s, " \"s_eval_raw_random\": {eval_raw_random},");
    let _ = writeln!(s, " \"s_eval_simsiam\": {eval_simsiam},");
    let _ = writeln!(s, " \"s_total\": {total},");
    let _ = writeln!(
        s,
        " \"flops\": {{\"flops_per_step\": {}, \"steps_per_epoch\": {steps}, \"flops_per_epoch\": {}}},",
        recipe.flops_per_step(),
        recipe.flops_per_step() * steps as f64
    );
    let per_class = |w: &Windows| {
        json_list((1..=6_i8).map(|c| w.labels().iter().filter(|&&l| l == c).count() as f64))
    };
    let _ = writeln!(
        s,
        " \"data\": {{\"train_windows\": {train_windows}, \"train_labelled\": {}, \"test_labelled\": {}, \"train_labelled_per_class\": {}, \"test_per_class\": {}, \"channel_mean\": {}, \"channel_std\": {}}},",
        train_labelled.count(),
        test.count(),
        per_class(train_labelled),
        per_class(test),
        json_list(stats.mean.iter().map(|&v| f64::from(v))),
        json_list(stats.std.iter().map(|&v| f64::from(v)))
    );
    let _ = writeln!(
        s,
        " \"build\": {{\"target_arch\": \"{}\", \"avx2\": {}, \"fma\": {}, \"avx512f\": {}, \"simsiam_f32x16\": {}}},",
        std::env::consts::ARCH,
        cfg!(target_feature = "avx2"),
        cfg!(target_feature = "fma"),
        cfg!(target_feature = "avx512f"),
        cfg!(simsiam_f32x16)
    );
    let _ = writeln!(s, " \"threads\": 1");
    s.push_str("}\n");
    s
}
