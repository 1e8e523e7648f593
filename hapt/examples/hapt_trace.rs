//! A trace of the HAPT recipes' training steps for a step-by-step comparison with PyTorch
//! (`scripts/hapt_trace_compare.py`; run by hand, not in CI).
//!
//! ```text
//! cargo run --release -p simsiam-hapt --example hapt_trace -- --recipe hapt-conv --seed 0 \
//!     --steps 100 --checkpoints 1,10,100 --out DIR [--start PARAMS.f32] [--lr 0.05] \
//!     [--cosine-total T]
//! ```
//!
//! From the recipe's initialisation (or the parameters of `--start`, the flat f32 file
//! `hapt --save` writes), it takes `--steps` SGD steps at the constant `--lr` (with
//! `--cosine-total T`, the recipe's schedule `cosine_lr(lr, k, T)` before step `k`, from 0)
//! on the recipe's augmented batches (the `hapt` example's shuffle and views; with the
//! seed's initialisation and `--cosine-total 2880 --steps 2880` the run of
//! `hapt --recipe hapt-conv --seed S`, bit for bit) and writes into `DIR`: `start.f32` (the
//! parameters before the first step), `views_<k>.f32` (step `k`'s two views, view 1 then
//! view 2, `128 × 768` each, `k` from 1; not with `--no-views`), `params_<k>.f32` after each
//! checkpoint step, `loss.txt` (a line a step: the loss, the lr), and the encoder's eval
//! features of the standardised labelled test windows before the first step and after the
//! last (`features_start.f32`, `features_end.f32`, `2874 × d_encoder`). Little-endian f32.
//! A 30-epoch trace with views takes 2.3 GB.
use simsiam::LcgRng;
use simsiam::augment::{Augmenter, ViewRecipe, Xoshiro128PlusPlus};
use simsiam::model::{Architecture, HarConv, HarDense, SimSiamHead};
use simsiam::train::{Sgd, TrainConfig, cosine_lr, momentum_len, scratch_len};
use simsiam_hapt::{CHANNELS, Hapt, Split, WindowSpec};
use std::io::Write as _;
use std::path::{Path, PathBuf};

const BATCH: usize = 128;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn write_f32(path: &Path, values: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes)?;
    Ok(())
}

fn read_f32(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// A uniform index below `n` (as the `hapt` example draws it).
fn below(rng: &mut Xoshiro128PlusPlus, n: usize) -> usize {
    let n = n as u64;
    loop {
        let m = u64::from(rng.next_u32()) * n;
        if (m as u32 as u64) >= (1u64 << 32) % n.max(1) {
            return (m >> 32) as usize;
        }
    }
}

fn encode_all(head: &SimSiamHead<Vec<f32>>, xs: &[f32]) -> Result<Vec<f32>> {
    let (d_in, d_out) = (head.d_input(), head.d_encoder());
    let chunk = 256;
    let mut work = vec![0.0; head.architecture().workspace_len(chunk)?];
    let mut out = vec![0.0; xs.len() / d_in * d_out];
    for (x, o) in xs.chunks(chunk * d_in).zip(out.chunks_mut(chunk * d_out)) {
        head.encode_batch_into(x, o, &mut work)?;
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let recipe = flag(&args, "--recipe").unwrap_or_else(|| "hapt-conv".into());
    let seed: u64 = flag(&args, "--seed").map_or(Ok(0), |s| s.parse())?;
    let steps: usize = flag(&args, "--steps").map_or(Ok(10), |s| s.parse())?;
    let lr: f32 = flag(&args, "--lr").map_or(Ok(0.05), |s| s.parse())?;
    let cosine_total: Option<u64> = flag(&args, "--cosine-total")
        .map(|s| s.parse())
        .transpose()?;
    let out = PathBuf::from(flag(&args, "--out").ok_or("--out DIR")?);
    let checkpoints: Vec<usize> = flag(&args, "--checkpoints")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()?;
    let no_views = args.iter().any(|a| a == "--no-views");
    std::fs::create_dir_all(&out)?;

    let hapt = Hapt::load_committed()?;
    let train_raw = hapt.windows(WindowSpec::RECIPE, Split::Train)?;
    let stats = train_raw.channel_stats().ok_or("no training windows")?;
    let mut test = hapt.windows(WindowSpec::RECIPE, Split::Test)?;
    test.standardise(&stats);
    let test = test.labelled();
    let samples = train_raw.window_len();
    let window_len = CHANNELS * samples;

    let architecture = match recipe.as_str() {
        "hapt-dense" => Architecture::har_dense(&HarDense::default())?,
        "hapt-conv" => Architecture::har_conv(&HarConv::default())?,
        other => return Err(format!("unknown recipe {other}").into()),
    };
    let params = match flag(&args, "--start") {
        Some(path) => read_f32(Path::new(&path))?,
        None => {
            let mut params = vec![0.0_f32; architecture.param_count()?];
            architecture.init_params(&mut LcgRng::new(seed), &mut params)?;
            params
        }
    };
    let mut head = SimSiamHead::new(architecture, params)?;
    write_f32(&out.join("start.f32"), head.params())?;
    write_f32(
        &out.join("features_start.f32"),
        &encode_all(&head, test.data())?,
    )?;
    let config = TrainConfig {
        lr,
        fix_predictor_lr: false,
        ..TrainConfig::default()
    };
    let mut sgd = Sgd::new(
        &architecture,
        config,
        vec![0.0_f32; momentum_len(&architecture)?],
    )?;
    let augmenter = Augmenter::new(ViewRecipe::HAPT, CHANNELS, samples, &stats.mean, &stats.std)?;
    let mut rng = Xoshiro128PlusPlus::from_seed(seed);
    let n_windows = train_raw.count();
    let mut perm: Vec<usize> = (0..n_windows).collect();
    let mut raws = vec![0.0_f32; BATCH * window_len];
    let mut views = vec![0.0_f32; 2 * BATCH * window_len];
    let mut scratch = vec![0.0_f32; scratch_len(&architecture, BATCH)?];
    let mut losses = std::fs::File::create(out.join("loss.txt"))?;
    let steps_per_epoch = n_windows / BATCH;
    for step in 1..=steps {
        let in_epoch = (step - 1) % steps_per_epoch;
        if in_epoch == 0 {
            for i in (1..perm.len()).rev() {
                let j = below(&mut rng, i + 1);
                perm.swap(i, j);
            }
        }
        let batch = &perm[in_epoch * BATCH..(in_epoch + 1) * BATCH];
        for (&i, raw) in batch.iter().zip(raws.chunks_exact_mut(window_len)) {
            raw.copy_from_slice(&train_raw.data()[i * window_len..(i + 1) * window_len]);
        }
        let (views1, views2) = views.split_at_mut(BATCH * window_len);
        augmenter.two_views_batch(&raws, BATCH, &mut rng, views1, views2)?;
        let step_lr = cosine_total.map_or(lr, |total| cosine_lr(lr, (step - 1) as u64, total));
        sgd.set_lr(step_lr);
        let loss = sgd.step(&mut head, views1, views2, &mut scratch, [&mut [], &mut []])?;
        if !no_views {
            write_f32(&out.join(format!("views_{step}.f32")), &views)?;
        }
        writeln!(losses, "{loss:e} {step_lr:e}")?;
        if checkpoints.contains(&step) {
            write_f32(&out.join(format!("params_{step}.f32")), head.params())?;
        }
    }
    write_f32(
        &out.join("features_end.f32"),
        &encode_all(&head, test.data())?,
    )?;
    println!("{steps} steps of {recipe} written to {}", out.display());
    Ok(())
}
