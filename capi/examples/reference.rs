//! The host's reference values for the C test and both firmware images, computed with the
//! Rust API, and the comparison of another program's output against them.
//!
//! ```text
//! reference print [TWINS] [--image] [--train] [--simd-as-scalar]
//!                                           # the expected lines: `params.fnv`, then for
//!                                           # each twin `project.K`, `predict.K`, `loss.K`
//! reference c-params                        # the parameters as a C file (exact hex
//!                                           # float literals)
//! reference write-image PATH [HEAD]         # a parameter image: the image scenario's
//!                                           # (HEAD `official`, the default) or the
//!                                           # scenario's reference head (`reference`)
//! reference compare FILE [TWINS] [--image] [--train] [--simd-as-scalar]
//!                                           # FILE must hold exactly the lines `print`
//!                                           # prints with the same arguments, each once,
//!                                           # every float bit for bit
//! ```
//!
//! `TWINS` is `simd`, `scalar` or `simd,scalar` (the default): which kernel twins the
//! program ran (the Rust firmware links one twin per image). `--simd-as-scalar`: the
//! program's target has no vector unit, so its SIMD twin runs the scalar twin's kernels
//! (`simsiam::kernels::VECTOR_UNIT` is false there, e.g. on a Cortex-M): its `.simd`
//! lines must hold the scalar twin's values.
//!
//! The scenario, shared by every program that prints these lines: the default config
//! `{64, 128, 64, 32}`, parameters from `init_params` with seed [`SEED`], and the fixed
//! inputs `z1[i] = ((7i) mod 13)/8 - 0.75`, `z2[i] = ((5i) mod 11)/8 - 0.625` (exact in
//! `f32`). Lines: `params.fnv` = FNV-1a 64 of the parameter bits (little-endian), as 16
//! hex digits; `project.K` = project(z1), `predict.K` = predict(project(z1)),
//! `loss.K` = loss(z1, z2), for each twin K, every float as the 8 hex digits of its bits.
//!
//! The image scenario (`--image`, the C test's): the official head,
//! `Architecture::official` of [`IMAGE_HEAD`] (BatchNorm, a 3-layer projector), with the
//! parameters of [`image_params`] (seed [`IMAGE_SEED`]), as the parameter image
//! `write-image` writes, or with `--image-file PATH` the image in that file (the Rust
//! firmware runs the official head `simsiam-convert` imported from the PyTorch fixture);
//! the same inputs, `d_encoder` long. Lines: `image.fnv` = FNV-1a 64 of the image's
//! bytes, then `image.project.K`, `image.predict.K`, `image.loss.K` as above.
//!
//! The training scenario (`--train`, the Rust firmware's): the reference head (default
//! config, seed [`SEED`]) trained for [`TRAIN_STEPS`] steps of `Sgd::step` on batches of
//! [`TRAIN_N`] pairs, `TrainConfig::default()` with the lr of step `s` (from 0) set to
//! `cosine_lr(0.05, s, TRAIN_STEPS)`, the input gradients asked for. Batch `s` comes from
//! one `LcgRng` seeded [`TRAIN_SEED`], continued from batch to batch: every float of
//! `x1s` (`TRAIN_N × d_encoder`) is `2u − 1`, then every float of `x2s` is
//! `x1 + (2u − 1)/4`, `u = next_f32()`. Lines: `train.fnv` = FNV-1a 64 of the batches'
//! bits (`x1s` then `x2s`, step by step); for each twin K `train.stepS.loss.K` (S from 1:
//! the loss `step` returns, before its update), `train.lr.K` (the lrs set), and the
//! FNV-1a 64 hashes `train.params.fnv.K` (every parameter after the last step),
//! `train.momentum.fnv.K` (the momentum buffer) and `train.grads.fnv.K` (the last step's
//! `dL/dx1s` then `dL/dx2s`).
//!
//! `compare` is exact: every expected line must appear exactly once, with the right
//! number of values, each the host's bit pattern; a missing, duplicated, unknown or
//! malformed line fails, and so does any other line that is neither empty nor a comment
//! (`#` first). Every problem is named on stderr.
//!
//! Bit-identity with a Cortex-M holds because the arithmetic is the same (IEEE `f32`,
//! square root and division correctly rounded on both, Rust never fusing a multiply and
//! an add): the scalar twin is the same loops, and on a Cortex-M the SIMD twin is the
//! scalar twin (`--simd-as-scalar`). A reference's own SIMD twin rounds as its build
//! does (`print` says how on its `# simd-arithmetic` line), so it matches only programs
//! built the same way (the host C test).

use std::process::ExitCode;

use simsiam::image::{Image, image_len, write_image};
use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::model::Architecture;
use simsiam::train::{Sgd, TrainConfig, cosine_lr, scratch_len};
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, SslResult, init_params};

/// The seed of the parameters in every program of this scenario.
const SEED: u64 = 42;

/// The image scenario's head: `Architecture::official(prev_dim, dim, pred_dim)`, widths
/// that are not multiples of the SIMD lanes.
const IMAGE_HEAD: (usize, usize, usize) = (48, 20, 12);

/// The seed of the image scenario's parameters.
const IMAGE_SEED: u64 = 7;

/// Pairs per batch of the training scenario.
const TRAIN_N: usize = 8;

/// Steps of the training scenario (the cosine schedule runs over them).
const TRAIN_STEPS: u64 = 3;

/// The seed of the training scenario's batches.
const TRAIN_SEED: u64 = 11;

fn input(len: usize, mul: usize, modulus: usize, offset: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * mul) % modulus) as f32 * 0.125 - offset)
        .collect()
}

fn fnv1a_bytes(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn fnv1a(values: &[f32]) -> u64 {
    fnv1a_bytes(values.iter().flat_map(|v| v.to_bits().to_le_bytes()))
}

/// `(key, words)` lines, in print order: 8 hex digits per float's bits, 16 per hash.
type Lines = Vec<(String, Vec<String>)>;

/// Floats as the 8 hex digits of their bits.
fn bits(values: &[f32]) -> Vec<String> {
    values
        .iter()
        .map(|x| format!("{:08x}", x.to_bits()))
        .collect()
}

/// Runs project, predict and loss on the twin `K` and records them as `PREFIXkey.NAME`
/// lines. Every call gets a workspace of `workspace_len(1)` floats (what the head needs:
/// none for project and predict on the reference head, which give the same with more).
fn twin<K: Kernels>(
    head: &SimSiamHead<Vec<f32>>,
    prefix: &str,
    name: &str,
    z1: &[f32],
    z2: &[f32],
    lines: &mut Lines,
) -> SslResult<()> {
    let head = head.view().with_kernels::<K>();
    let d_out = head.d_out();
    let mut workspace = vec![0.0; head.architecture().workspace_len(1)?];
    let mut projected = vec![0.0; d_out];
    head.project_into(z1, &mut projected, &mut workspace)?;
    let mut predicted = vec![0.0; d_out];
    head.predict_into(&projected, &mut predicted, &mut workspace)?;
    let loss = head.loss(z1, z2, &mut workspace)?;
    lines.push((format!("{prefix}project.{name}"), bits(&projected)));
    lines.push((format!("{prefix}predict.{name}"), bits(&predicted)));
    lines.push((format!("{prefix}loss.{name}"), bits(&[loss])));
    Ok(())
}

/// The scenario's lines for both twins and the parameter hash.
fn reference() -> SslResult<(Lines, u64)> {
    let config = SimSiamConfig::default();
    let mut params = vec![0.0; config.param_count()?];
    init_params(&config, &mut LcgRng::new(SEED), &mut params)?;
    let fnv = fnv1a(&params);
    let head = SimSiamHead::from_params(config, params)?;
    let z1 = input(config.d_encoder, 7, 13, 0.75);
    let z2 = input(config.d_encoder, 5, 11, 0.625);
    let mut lines = Vec::new();
    twin::<Simd>(&head, "", "simd", &z1, &z2, &mut lines)?;
    twin::<Scalar>(&head, "", "scalar", &z1, &z2, &mut lines)?;
    Ok((lines, fnv))
}

/// The training scenario's batches, `(x1s, x2s)` per step.
fn train_batches(d_encoder: usize) -> Vec<(Vec<f32>, Vec<f32>)> {
    let mut rng = LcgRng::new(TRAIN_SEED);
    (0..TRAIN_STEPS)
        .map(|_| {
            let x1s: Vec<f32> = (0..TRAIN_N * d_encoder)
                .map(|_| rng.next_f32() * 2.0 - 1.0)
                .collect();
            let x2s = x1s
                .iter()
                .map(|x1| x1 + (rng.next_f32() * 2.0 - 1.0) * 0.25)
                .collect();
            (x1s, x2s)
        })
        .collect()
}

/// Trains the reference head on the twin `K` as the firmware does and records its
/// `train.*.NAME` lines.
fn train_twin<K: Kernels>(
    name: &str,
    batches: &[(Vec<f32>, Vec<f32>)],
    lines: &mut Lines,
) -> SslResult<()> {
    let config = SimSiamConfig::default();
    let mut params = vec![0.0; config.param_count()?];
    init_params(&config, &mut LcgRng::new(SEED), &mut params)?;
    let mut head = SimSiamHead::from_params(config, params)?.with_kernels::<K>();
    let train_config = TrainConfig::default();
    let momentum = vec![0.0; head.architecture().param_count()?];
    let mut sgd = Sgd::new(head.architecture(), train_config, momentum)?;
    let mut scratch = vec![0.0; scratch_len(head.architecture(), TRAIN_N)?];
    let mut g1 = vec![0.0; TRAIN_N * config.d_encoder];
    let mut g2 = g1.clone();
    let mut lrs = Vec::new();
    for (step, (x1s, x2s)) in (0..).zip(batches) {
        let lr = cosine_lr(train_config.lr, step, TRAIN_STEPS);
        sgd.set_lr(lr);
        lrs.push(lr);
        let loss = sgd.step(&mut head, x1s, x2s, &mut scratch, [&mut g1, &mut g2])?;
        lines.push((format!("train.step{}.loss.{name}", step + 1), bits(&[loss])));
    }
    let grads: Vec<f32> = g1.iter().chain(&g2).copied().collect();
    lines.push((format!("train.lr.{name}"), bits(&lrs)));
    for (key, values) in [
        ("params", head.params()),
        ("momentum", sgd.momentum()),
        ("grads", &grads[..]),
    ] {
        lines.push((
            format!("train.{key}.fnv.{name}"),
            vec![format!("{:016x}", fnv1a(values))],
        ));
    }
    Ok(())
}

/// The training scenario's lines for both twins and the batches' hash.
fn train_reference() -> SslResult<(Lines, u64)> {
    let batches = train_batches(SimSiamConfig::default().d_encoder);
    let fnv = fnv1a(
        &batches
            .iter()
            .flat_map(|(x1s, x2s)| x1s.iter().chain(x2s))
            .copied()
            .collect::<Vec<f32>>(),
    );
    let mut lines = Vec::new();
    train_twin::<Simd>("simd", &batches, &mut lines)?;
    train_twin::<Scalar>("scalar", &batches, &mut lines)?;
    Ok((lines, fnv))
}

/// Deterministic parameters for any architecture, layer by layer in the flat layout:
/// `W` uniform in `±√(3/d_in)`, a bias in `±0.1`, the BatchNorm's `γ` in `1 ± 0.25`, `β`
/// and `running_mean` in `±0.1`, `running_var` in `[0.25, 1.25]`.
fn image_params(architecture: &Architecture, seed: u64) -> SslResult<Vec<f32>> {
    let mut rng = LcgRng::new(seed);
    let mut uniform = move |n: usize, centre: f32, spread: f32| -> Vec<f32> {
        (0..n)
            .map(|_| centre + spread * (rng.next_f32() * 2.0 - 1.0))
            .collect()
    };
    let mut params = Vec::with_capacity(architecture.param_count()?);
    for layer in architecture.layers() {
        let scale = (3.0 / layer.d_in as f32).sqrt();
        params.extend(uniform(layer.d_in * layer.d_out, 0.0, scale));
        if layer.bias {
            params.extend(uniform(layer.d_out, 0.0, 0.1));
        }
        if let Some(batch_norm) = layer.batch_norm {
            if batch_norm.affine {
                params.extend(uniform(layer.d_out, 1.0, 0.25));
                params.extend(uniform(layer.d_out, 0.0, 0.1));
            }
            params.extend(uniform(layer.d_out, 0.0, 0.1));
            params.extend(uniform(layer.d_out, 0.75, 0.5));
        }
    }
    Ok(params)
}

/// The image scenario's parameter image (what `write-image` writes).
fn official_image() -> SslResult<Vec<u8>> {
    let (prev_dim, dim, pred_dim) = IMAGE_HEAD;
    let architecture = Architecture::official(prev_dim, dim, pred_dim)?;
    let params = image_params(&architecture, IMAGE_SEED)?;
    let mut bytes = vec![0; image_len(&architecture)?];
    write_image(&architecture, &params, &[], &mut bytes)?;
    Ok(bytes)
}

/// The image scenario's lines for both twins and the image's hash: the head parsed from
/// the image's bytes (its parameters copied, so any alignment of the `Vec` works).
fn image_reference(bytes: Vec<u8>) -> SslResult<(Lines, u64)> {
    let image = Image::parse(&bytes)?;
    let mut params = vec![0.0; image.param_count()];
    image.copy_params(&mut params)?;
    let head = SimSiamHead::new(*image.architecture(), params)?;
    let d_encoder = head.d_encoder();
    let z1 = input(d_encoder, 7, 13, 0.75);
    let z2 = input(d_encoder, 5, 11, 0.625);
    let mut lines = Vec::new();
    twin::<Simd>(&head, "image.", "simd", &z1, &z2, &mut lines)?;
    twin::<Scalar>(&head, "image.", "scalar", &z1, &z2, &mut lines)?;
    Ok((lines, fnv1a_bytes(bytes)))
}

/// `value` as an exact C99 hexadecimal float literal (`0x1.8p-3f`); finite values only.
fn c_hex_float(value: f32) -> String {
    let bits = value.to_bits();
    let sign = if bits >> 31 == 1 { "-" } else { "" };
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = (bits & 0x7f_ffff) << 1; // 24 bits: six hex digits
    match exponent {
        0 if mantissa == 0 => format!("{sign}0.0f"),
        0 => format!("{sign}0x0.{mantissa:06x}p-126f"),
        _ => format!("{sign}0x1.{mantissa:06x}p{}f", exponent - 127),
    }
}

/// The scenario's parameters as a C translation unit: a `const` array, so in flash.
fn c_params() -> SslResult<String> {
    let config = SimSiamConfig::default();
    let mut params = vec![0.0; config.param_count()?];
    init_params(&config, &mut LcgRng::new(SEED), &mut params)?;
    let mut text = format!(
        "/* Generated by `reference c-params`: simsiam::init_params, default config, seed {SEED}. */\n\
         #include <stddef.h>\n\
         const size_t simsiam_fw_params_len = {};\n\
         const float simsiam_fw_params[{}] __attribute__((aligned(8))) = {{\n",
        params.len(),
        params.len()
    );
    for chunk in params.chunks(6) {
        let words: Vec<String> = chunk.iter().map(|&p| c_hex_float(p)).collect();
        text.push_str(&format!("  {},\n", words.join(", ")));
    }
    text.push_str("};\n");
    Ok(text)
}

/// How this build's SIMD twin rounds, as the `# simd-arithmetic` line of `print`.
fn simd_arithmetic() -> &'static str {
    if !simsiam::kernels::VECTOR_UNIT {
        "scalar: no vector unit, the scalar twin's kernels"
    } else if cfg!(any(
        target_feature = "fma",
        all(target_arch = "aarch64", target_feature = "neon")
    )) {
        "fused: multiply-add with one rounding"
    } else if cfg!(target_feature = "avx") {
        "avx: f32x8 summed across one AVX register"
    } else {
        "sse: f32x4, multiply then add"
    }
}

/// The twins a program ran, from the `TWINS` argument.
fn twins(arg: &str) -> Result<Vec<&'static str>, String> {
    match arg {
        "simd" => Ok(vec!["simd"]),
        "scalar" => Ok(vec!["scalar"]),
        "simd,scalar" => Ok(vec!["simd", "scalar"]),
        _ => Err(format!(
            "TWINS must be simd, scalar or simd,scalar, not `{arg}` (there is no tolerance: \
             compare is bit for bit)"
        )),
    }
}

/// Which parameter image the image scenario runs, if any.
#[derive(Debug, Clone, Copy)]
enum ImageScenario<'a> {
    /// No image lines.
    None,
    /// The image `write-image` writes (`--image`).
    Synthetic,
    /// The image in this file (`--image-file PATH`), e.g. a head `simsiam-convert import`
    /// made from a PyTorch checkpoint.
    File(&'a str),
}

/// The lines `print` gives for `twins` (and the image scenario's with `image`, the
/// training scenario's with `train`): `(key, words)`, in print order.
fn expected(
    twins: &[&str],
    image: ImageScenario<'_>,
    train: bool,
    simd_as_scalar: bool,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut scenarios = vec![("params.fnv", reference().map_err(|e| e.to_string())?)];
    let bytes = match image {
        ImageScenario::None => None,
        ImageScenario::Synthetic => Some(official_image().map_err(|e| e.to_string())?),
        ImageScenario::File(path) => Some(std::fs::read(path).map_err(|e| format!("{path}: {e}"))?),
    };
    if let Some(bytes) = bytes {
        scenarios.push((
            "image.fnv",
            image_reference(bytes).map_err(|e| e.to_string())?,
        ));
    }
    if train {
        scenarios.push(("train.fnv", train_reference().map_err(|e| e.to_string())?));
    }
    let mut out = Vec::new();
    for (fnv_key, (lines, fnv)) in scenarios {
        out.push((fnv_key.to_owned(), vec![format!("{fnv:016x}")]));
        for twin in twins {
            // The values this twin computes on the program's target.
            let source = if *twin == "simd" && simd_as_scalar {
                "scalar"
            } else {
                twin
            };
            for (key, words) in &lines {
                if let Some((stem, _)) = key.rsplit_once('.').filter(|(_, k)| k == &source) {
                    out.push((format!("{stem}.{twin}"), words.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// Whether a line holds a 64-bit hash (16 hex digits) rather than floats: `X.fnv`, or
/// `X.fnv.K` for a twin's.
fn is_hash(key: &str) -> bool {
    key.ends_with(".fnv") || key.contains(".fnv.")
}

/// `bits` as a float with its bit pattern, for messages.
fn show(bits: u32) -> String {
    format!("{bits:08x} ({:e})", f32::from_bits(bits))
}

/// How many floats apart two bit patterns are (distance in the ordered bit patterns:
/// 1 for neighbours, also across a change of binade; `+0` and `-0` count as equal).
fn ulps(a: u32, b: u32) -> u64 {
    let ordered = |bits: u32| {
        let magnitude = i64::from(bits & 0x7fff_ffff);
        if bits >> 31 == 1 {
            -magnitude
        } else {
            magnitude
        }
    };
    ordered(a).abs_diff(ordered(b))
}

/// One hex word of exactly `digits` digits.
fn hex_word(word: &str, digits: usize) -> Option<u64> {
    (word.len() == digits && word.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(word, 16).ok())
        .flatten()
}

/// The problems of one expected line found once in the file, with its values.
fn check_values(key: &str, line: usize, words: &[&str], want: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    if words.len() != want.len() {
        problems.push(format!(
            "line {line}: {key} has {} values, expected {}",
            words.len(),
            want.len()
        ));
        return problems;
    }
    let digits = if is_hash(key) { 16 } else { 8 };
    let mut differing = 0_usize;
    for (i, (word, want)) in words.iter().zip(want).enumerate() {
        let Some(got) = hex_word(word, digits) else {
            problems.push(format!(
                "line {line}: {key}[{i}] = `{word}` is not {digits} hex digits"
            ));
            continue;
        };
        let Some(want_bits) = hex_word(want, digits) else {
            continue;
        };
        if got == want_bits {
            continue;
        }
        differing += 1;
        if differing > 4 {
            continue;
        }
        problems.push(match (u32::try_from(got), u32::try_from(want_bits)) {
            (Ok(got), Ok(want_bits)) if digits == 8 => format!(
                "line {line}: {key}[{i}] = {}, host {}: {} ulp apart",
                show(got),
                show(want_bits),
                ulps(got, want_bits)
            ),
            _ => format!("line {line}: {key} = {word}, host {want}"),
        });
    }
    if differing > 4 {
        problems.push(format!(
            "line {line}: {key}: {} more values differ",
            differing - 4
        ));
    }
    problems
}

/// Checks the text of a program's output against `print twins`: every expected line
/// exactly once, bit for bit, and nothing else but empty and `#` lines. Returns a summary,
/// or every problem found.
fn check(
    text: &str,
    twins: &[&str],
    image: ImageScenario<'_>,
    train: bool,
    simd_as_scalar: bool,
) -> Result<String, Vec<String>> {
    let want = expected(twins, image, train, simd_as_scalar).map_err(|e| vec![e])?;
    let mut seen: Vec<Vec<(usize, Vec<&str>)>> = vec![Vec::new(); want.len()];
    let mut problems = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut words = trimmed.split_whitespace();
        let key = words.next().unwrap_or_default();
        match want.iter().position(|(k, _)| k == key) {
            Some(slot) => {
                if let Some(found) = seen.get_mut(slot) {
                    found.push((line, words.collect()));
                }
            }
            None => problems.push(format!("line {line}: unexpected line `{}`", clip(trimmed))),
        }
    }
    let mut values = 0_usize;
    for ((key, words), found) in want.iter().zip(&seen) {
        match found.as_slice() {
            [] => problems.push(format!("missing line: {key}")),
            [(line, got)] => {
                let found_problems = check_values(key, *line, got, words);
                if found_problems.is_empty() && !is_hash(key) {
                    values += words.len();
                }
                problems.extend(found_problems);
            }
            several => {
                let at: Vec<String> = several.iter().map(|(l, _)| l.to_string()).collect();
                problems.push(format!(
                    "duplicated line: {key} appears {} times (lines {})",
                    several.len(),
                    at.join(", ")
                ));
            }
        }
    }
    if problems.is_empty() {
        let hashes: Vec<&str> = want
            .iter()
            .map(|(key, _)| key.as_str())
            .filter(|key| is_hash(key))
            .collect();
        Ok(format!(
            "all {} expected lines ({}) present once; {} and {values} floats \
             bit-identical to the host's",
            want.len(),
            twins.join(", "),
            hashes.join(", ")
        ))
    } else {
        Err(problems)
    }
}

/// The start of a line, for messages.
fn clip(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", line.get(..at).unwrap_or(line)),
        None => line.to_owned(),
    }
}

fn compare(
    path: &str,
    twins: &[&str],
    image: ImageScenario<'_>,
    train: bool,
    simd_as_scalar: bool,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    match check(&text, twins, image, train, simd_as_scalar) {
        Ok(summary) => {
            println!(
                "{path}: {summary} (reference simd-arithmetic {})",
                simd_arithmetic()
            );
            Ok(())
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{path}: {problem}");
            }
            Err(format!(
                "{path}: {} problem(s) against the host's reference ({})",
                problems.len(),
                twins.join(", ")
            ))
        }
    }
}

/// The scenario's reference head (default config, `init_params` with [`SEED`]) as a
/// parameter image.
fn reference_image() -> SslResult<Vec<u8>> {
    let config = SimSiamConfig::default();
    let mut params = vec![0.0; config.param_count()?];
    init_params(&config, &mut LcgRng::new(SEED), &mut params)?;
    let head = SimSiamHead::from_params(config, params)?;
    let mut bytes = vec![0; head.image_len()?];
    head.write_image(&mut bytes)?;
    Ok(bytes)
}

fn write_image_file(path: &str, head: &str) -> Result<(), String> {
    let bytes = match head {
        "official" => official_image(),
        "reference" => reference_image(),
        _ => return Err(format!("HEAD must be official or reference, not `{head}`")),
    }
    .map_err(|e| e.to_string())?;
    std::fs::write(path, &bytes).map_err(|e| format!("{path}: {e}"))
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let with_image = args.iter().any(|arg| arg == "--image");
    let train = args.iter().any(|arg| arg == "--train");
    let simd_as_scalar = args.iter().any(|arg| arg == "--simd-as-scalar");
    args.retain(|arg| arg != "--image" && arg != "--train" && arg != "--simd-as-scalar");
    let image_file = args.iter().position(|arg| arg == "--image-file").map(|at| {
        let path = args.get(at + 1).cloned();
        args.drain(at..(at + 2).min(args.len()));
        path
    });
    let image = match (&image_file, with_image) {
        (None, false) => ImageScenario::None,
        (None, true) => ImageScenario::Synthetic,
        (Some(Some(path)), false) => ImageScenario::File(path),
        _ => {
            eprintln!("reference: use one of --image and --image-file PATH");
            return ExitCode::FAILURE;
        }
    };
    let with_image = !matches!(image, ImageScenario::None);
    let usage = "usage: reference print [TWINS] [--image | --image-file PATH] [--train] \
                 [--simd-as-scalar] | reference c-params | \
                 reference write-image PATH [official|reference] | \
                 reference compare FILE [TWINS] [--image | --image-file PATH] [--train] \
                 [--simd-as-scalar]   (TWINS: simd, scalar or simd,scalar)";
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["print", rest @ ..] if rest.len() <= 1 => twins(rest.first().unwrap_or(&"simd,scalar"))
            .and_then(|twins| expected(&twins, image, train, simd_as_scalar))
            .map(|lines| {
                println!("# simd-arithmetic {}", simd_arithmetic());
                for (key, words) in lines {
                    println!("{key} {}", words.join(" "));
                }
            }),
        ["c-params"] if !with_image && !train => c_params()
            .map(|text| print!("{text}"))
            .map_err(|e| e.to_string()),
        ["write-image", path, rest @ ..] if !with_image && !train && rest.len() <= 1 => {
            write_image_file(path, rest.first().unwrap_or(&"official"))
        }
        ["compare", path, rest @ ..] if rest.len() <= 1 => {
            twins(rest.first().unwrap_or(&"simd,scalar"))
                .and_then(|twins| compare(path, &twins, image, train, simd_as_scalar))
        }
        _ => Err(usage.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("reference: {message}");
            ExitCode::FAILURE
        }
    }
}
