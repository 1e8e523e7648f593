//! The host's reference values for the C test and both firmware images, computed with the
//! Rust API, and the comparison of another program's output against them.
//!
//! ```text
//! reference print                 # the values, one `key hex-bits...` line each
//! reference compare FILE [TOL]    # FILE's value lines against ours: |a - b| <= TOL
//!                                 # (default 2e-5, the parity suite's OUTPUT_TOL;
//!                                 #  0 demands bit-identical floats)
//! ```
//!
//! The scenario, shared by every program that prints these lines: the default config
//! `{64, 128, 64, 32}`, parameters from `init_params` with seed [`SEED`], and the fixed
//! inputs `z1[i] = ((7i) mod 13)/8 - 0.75`, `z2[i] = ((5i) mod 11)/8 - 0.625` (exact in
//! `f32`). Lines: `project.K` = project(z1), `predict.K` = predict(project(z1)),
//! `loss.K` = loss(z1, z2), for K = `simd` and `scalar`; `params.fnv` = FNV-1a 64 of the
//! parameter bits (little-endian). A program may print any subset; other lines (starting
//! with anything else) are ignored.

use std::process::ExitCode;

use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, SslResult, init_params};

/// The seed of the parameters in every program of this scenario.
const SEED: u64 = 42;
/// The parity suite's tolerance on a unit-vector entry or the loss (`tests/parity.rs`).
const OUTPUT_TOL: f64 = 2e-5;

fn input(len: usize, mul: usize, modulus: usize, offset: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * mul) % modulus) as f32 * 0.125 - offset)
        .collect()
}

fn fnv1a(values: &[f32]) -> u64 {
    values
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// `(key, float bits)` lines, in print order.
type Lines = Vec<(String, Vec<u32>)>;

fn twin<K: Kernels>(
    head: &SimSiamHead<Vec<f32>>,
    name: &str,
    z1: &[f32],
    z2: &[f32],
    lines: &mut Lines,
) -> SslResult<()> {
    let d_out = head.d_out();
    let mut projected = vec![0.0; d_out];
    head.project_into_with::<K>(z1, &mut projected)?;
    let mut predicted = vec![0.0; d_out];
    head.predict_into_with::<K>(&projected, &mut predicted)?;
    let mut workspace = vec![0.0; 4 * d_out];
    let loss = head.loss_with_workspace_with::<K>(z1, z2, &mut workspace)?;
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect();
    lines.push((format!("project.{name}"), bits(&projected)));
    lines.push((format!("predict.{name}"), bits(&predicted)));
    lines.push((format!("loss.{name}"), vec![loss.to_bits()]));
    Ok(())
}

fn reference() -> SslResult<(Lines, u64)> {
    let config = SimSiamConfig::default();
    let mut params = vec![0.0; config.param_count()?];
    init_params(&config, &mut LcgRng::new(SEED), &mut params)?;
    let fnv = fnv1a(&params);
    let head = SimSiamHead::from_params(config, params)?;
    let z1 = input(config.d_encoder, 7, 13, 0.75);
    let z2 = input(config.d_encoder, 5, 11, 0.625);
    let mut lines = Vec::new();
    twin::<Simd>(&head, "simd", &z1, &z2, &mut lines)?;
    twin::<Scalar>(&head, "scalar", &z1, &z2, &mut lines)?;
    Ok((lines, fnv))
}

/// `key hex hex ...` lines of a program's output (keys we know only).
fn parse(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?;
            let known = ["project.", "predict.", "loss.", "params."];
            known
                .iter()
                .any(|k| key.starts_with(k))
                .then(|| (key.to_owned(), words.map(str::to_owned).collect()))
        })
        .collect()
}

fn compare(path: &str, tol: f64) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let (lines, fnv) = reference().map_err(|e| e.to_string())?;
    let theirs = parse(&text);
    if theirs.is_empty() {
        return Err(format!("{path}: no value lines"));
    }
    let (mut values, mut identical, mut worst) = (0_usize, 0_usize, 0.0_f64);
    for (key, words) in &theirs {
        if key == "params.fnv" {
            let got = words.first().map(String::as_str).unwrap_or("");
            if got != format!("{fnv:016x}") {
                return Err(format!("params.fnv: got {got}, expected {fnv:016x}"));
            }
            println!("params.fnv      identical ({fnv:016x})");
            continue;
        }
        let ours = &lines
            .iter()
            .find(|(k, _)| k == key)
            .ok_or_else(|| format!("unknown key {key}"))?
            .1;
        if words.len() != ours.len() {
            return Err(format!(
                "{key}: {} values, expected {}",
                words.len(),
                ours.len()
            ));
        }
        let mut key_worst = 0.0_f64;
        for (word, &expected) in words.iter().zip(ours) {
            let got = u32::from_str_radix(word, 16).map_err(|e| format!("{key}: {word}: {e}"))?;
            let (a, b) = (f32::from_bits(got), f32::from_bits(expected));
            let diff = (f64::from(a) - f64::from(b)).abs();
            // NaN differences fail too.
            if diff.is_nan() || diff > tol {
                return Err(format!(
                    "{key}: {a:e} vs host {b:e}: |diff| {diff:e} > {tol:e}"
                ));
            }
            values += 1;
            identical += usize::from(got == expected);
            key_worst = key_worst.max(diff);
        }
        worst = worst.max(key_worst);
        println!(
            "{key:<15} {} values within {tol:e}, max |diff| {key_worst:e}",
            ours.len()
        );
    }
    println!(
        "{path}: {values} values match the host within {tol:e} ({identical} bit-identical, max |diff| {worst:e})"
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["print"] => reference().map_err(|e| e.to_string()).map(|(lines, fnv)| {
            println!("params.fnv {fnv:016x}");
            for (key, bits) in lines {
                let words: Vec<String> = bits.iter().map(|b| format!("{b:08x}")).collect();
                println!("{key} {}", words.join(" "));
            }
        }),
        ["compare", path] => compare(path, OUTPUT_TOL),
        ["compare", path, tol] => tol
            .parse()
            .map_err(|e| format!("tolerance {tol}: {e}"))
            .and_then(|tol| compare(path, tol)),
        _ => Err("usage: reference print | reference compare FILE [TOL]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("reference: {message}");
            ExitCode::FAILURE
        }
    }
}
