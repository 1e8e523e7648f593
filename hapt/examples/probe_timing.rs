//! Times the probes on the committed data's raw windows, standardised per channel and
//! flattened (768 features, or the first `D` of them), and prints their accuracies.
//!
//! `cargo run --release -p simsiam-hapt --example probe_timing -- [D [PARAMS.f64 [all]]]`:
//! writes the logistic fit's weights then intercepts (f64, little-endian) to PARAMS.f64 if
//! given, and with `all` also runs the six protocols on the 768 features (seed 0). CPU times
//! come from /proc/self/stat (Linux).
use simsiam_hapt::probe::{
    LogisticConfig, LogisticRegression, Protocols, Standardiser, accuracy, knn_predict,
};
use simsiam_hapt::{Hapt, Split, WindowSpec};
use std::time::Instant;

/// This process's user + system CPU time in seconds, from /proc/self/stat (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // fields after the name: state is 0, utime 11, stime 12 (in clock ticks, 100 per second)
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hapt = Hapt::load_committed()?;
    let mut train = hapt.windows(WindowSpec::RECIPE, Split::Train)?;
    let stats = train.channel_stats().ok_or("no windows")?;
    train.standardise(&stats);
    let train = train.labelled();
    let mut test = hapt.windows(WindowSpec::RECIPE, Split::Test)?;
    test.standardise(&stats);
    let test = test.labelled();
    let dim = 768;
    let args: Vec<String> = std::env::args().collect();
    let d: usize = args.get(1).map_or(Ok(768), |a| a.parse())?;
    let sub = |x: &[f32]| -> Vec<f32> {
        x.chunks_exact(dim)
            .flat_map(|r| r.iter().take(d).copied())
            .collect()
    };
    let (trx, tex) = (sub(train.data()), sub(test.data()));
    let s = Standardiser::fit(&trx, d)?;
    let (a, b) = (s.transform(&trx)?, s.transform(&tex)?);
    let (t, c) = (Instant::now(), cpu_seconds());
    let m = LogisticRegression::fit(&a, train.labels(), d, &LogisticConfig::RECIPE)?;
    let fit = t.elapsed().as_secs_f64();
    let fit_cpu = cpu_seconds() - c;
    let acc = accuracy(&m.predict(&b)?, test.labels())?;
    println!(
        "d {d}: logistic fit {fit:.2} s wall, {fit_cpu:.2} s CPU, {} iterations, converged {}, accuracy {acc:.4} %",
        m.iterations(),
        m.converged()
    );
    if let Some(path) = args.get(2) {
        let w: Vec<u8> = m
            .weights()
            .iter()
            .chain(m.intercepts())
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(path, w)?;
    }
    let (t, c) = (Instant::now(), cpu_seconds());
    let p = knn_predict(&a, train.labels(), &b, d, 5)?;
    println!(
        "d {d}: knn5 {:.2} s wall, {:.2} s CPU, accuracy {:.4} %",
        t.elapsed().as_secs_f64(),
        cpu_seconds() - c,
        accuracy(&p, test.labels())?
    );
    if args.len() > 3 {
        let (t, c) = (Instant::now(), cpu_seconds());
        let sc = Protocols::RECIPE.evaluate(
            train.data(),
            train.labels(),
            test.data(),
            test.labels(),
            dim,
            0,
        )?;
        println!(
            "all six protocols (768): {:.2} s wall, {:.2} s CPU {}",
            t.elapsed().as_secs_f64(),
            cpu_seconds() - c,
            sc.to_json()
        );
    }
    Ok(())
}
