//! The host's reference values for the C test and both firmware images, computed with the
//! Rust API, and the comparison of another program's output against them.
//!
//! ```text
//! reference print [TWINS]           # the expected lines: `params.fnv`, then for each
//!                                   # twin `project.K`, `predict.K`, `loss.K`
//! reference c-params                # the parameters as a C file (exact hex-float literals)
//! reference compare FILE [TWINS]    # FILE must hold exactly the lines `print TWINS`
//!                                   # prints, each once, every float bit for bit
//! ```
//!
//! `TWINS` is `simd`, `scalar` or `simd,scalar` (the default): which kernel twins the
//! program ran (the Rust firmware links one twin per image).
//!
//! The scenario, shared by every program that prints these lines: the default config
//! `{64, 128, 64, 32}`, parameters from `init_params` with seed [`SEED`], and the fixed
//! inputs `z1[i] = ((7i) mod 13)/8 - 0.75`, `z2[i] = ((5i) mod 11)/8 - 0.625` (exact in
//! `f32`). Lines: `params.fnv` = FNV-1a 64 of the parameter bits (little-endian), as 16
//! hex digits; `project.K` = project(z1), `predict.K` = predict(project(z1)),
//! `loss.K` = loss(z1, z2), for each twin K, every float as the 8 hex digits of its bits.
//!
//! `compare` is exact: every expected line must appear exactly once, with the right
//! number of values, each the host's bit pattern; a missing, duplicated, unknown or
//! malformed line fails, and so does any other line that is neither empty nor a comment
//! (`#` first). Every problem is named on stderr.
//!
//! Bit-identity with a Cortex-M holds because the arithmetic is the same (IEEE `f32`,
//! square root and division correctly rounded on both): the scalar twin is the same plain
//! loops; on the SIMD twin, `wide`'s `f32x8` on a plain x86-64
//! build (SSE2, no FMA) is two `f32x4`, each lane a multiply then an add, each `f32x4`
//! summed left to right, exactly what its portable fallback does on `thumbv7em` (eight
//! scalars; Rust never fuses a multiply and an add). Built with FMA, AVX or AVX-512 (or on
//! aarch64, where `wide` fuses), the SIMD twin rounds differently: `print` says which on
//! its `# simd-arithmetic` line, and such a reference matches only programs built the
//! same way (the host C test), not the firmware.

use std::process::ExitCode;

use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, SslResult, init_params};

/// The seed of the parameters in every program of this scenario.
const SEED: u64 = 42;

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
    let head = head.view().with_kernels::<K>();
    let d_out = head.d_out();
    let mut projected = vec![0.0; d_out];
    head.project_into(z1, &mut projected, &mut [])?;
    let mut predicted = vec![0.0; d_out];
    head.predict_into(&projected, &mut predicted, &mut [])?;
    let mut workspace = vec![0.0; head.architecture().workspace_len(1)?];
    let loss = head.loss(z1, z2, &mut workspace)?;
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

/// How this build's SIMD twin rounds, as the `# simd-arithmetic` line of `print`: the
/// first word is `portable` when it is the arithmetic of `wide`'s portable fallback (the
/// Cortex-M's), else `fused` or `avx`.
fn simd_arithmetic() -> &'static str {
    if cfg!(any(
        target_feature = "fma",
        all(target_arch = "aarch64", target_feature = "neon")
    )) {
        "fused: multiply-add with one rounding (differs from a Cortex-M's SIMD twin)"
    } else if cfg!(target_feature = "avx") {
        "avx: f32x8 summed across one AVX register (differs from a Cortex-M's SIMD twin)"
    } else {
        "portable: f32x8 as two f32x4, multiply then add, each f32x4 summed left to right"
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

/// The lines `print` gives for `twins`: `(key, words)`, in print order.
fn expected(twins: &[&str]) -> SslResult<Vec<(String, Vec<String>)>> {
    let (lines, fnv) = reference()?;
    let mut out = vec![("params.fnv".to_owned(), vec![format!("{fnv:016x}")])];
    for twin in twins {
        for (key, bits) in &lines {
            if key.split_once('.').is_some_and(|(_, k)| k == *twin) {
                let words = bits.iter().map(|b| format!("{b:08x}")).collect();
                out.push((key.clone(), words));
            }
        }
    }
    Ok(out)
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
    let digits = if key == "params.fnv" { 16 } else { 8 };
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
fn check(text: &str, twins: &[&str]) -> Result<String, Vec<String>> {
    let want = expected(twins).map_err(|e| vec![e.to_string()])?;
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
                if found_problems.is_empty() && key != "params.fnv" {
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
        Ok(format!(
            "all {} expected lines ({}) present once; params.fnv and {values} floats \
             bit-identical to the host's",
            want.len(),
            twins.join(", ")
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

fn compare(path: &str, twins: &[&str]) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    match check(&text, twins) {
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: reference print [TWINS] | reference c-params | \
                 reference compare FILE [TWINS]   (TWINS: simd, scalar or simd,scalar)";
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["print", rest @ ..] if rest.len() <= 1 => twins(rest.first().unwrap_or(&"simd,scalar"))
            .and_then(|twins| expected(&twins).map_err(|e| e.to_string()))
            .map(|lines| {
                println!("# simd-arithmetic {}", simd_arithmetic());
                for (key, words) in lines {
                    println!("{key} {}", words.join(" "));
                }
            }),
        ["c-params"] => c_params()
            .map(|text| print!("{text}"))
            .map_err(|e| e.to_string()),
        ["compare", path, rest @ ..] if rest.len() <= 1 => {
            twins(rest.first().unwrap_or(&"simd,scalar")).and_then(|twins| compare(path, &twins))
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
