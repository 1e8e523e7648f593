//! The host replay of the SSL firmware (`examples/firmware-ssl`, issue 22): the same
//! slice of HAPT (`examples/firmware-ssl/slice.rs`), the same run
//! (`examples/firmware-ssl/src/run.rs`, included here word for word) on the scalar
//! kernel twin, so every loss, parameter hash and prediction has the firmware's bits.
//!
//! ```text
//! cargo run --release -p simsiam-hapt --example mcu_replay            # print the lines
//! cargo run --release -p simsiam-hapt --example mcu_replay -- FIRMWARE_OUTPUT
//! ```
//! `--write-data DIR` writes the slice as little-endian files for the C image
//! (`examples/firmware-ssl-c`: train.f32, labelled.f32, test.f32, stats.f32 = mean then
//! std, labelled.u8, test.u8) and exits.
//!
//! With a file (the firmware's output), compares every `# params`, `# loss`,
//! `# predictions` and `mcu-ssl: few-shot` line with its own, in order, and fails on
//! any difference or a missing line. Also prints the run's RAM (the buffers' bytes).

#[path = "../../examples/firmware-ssl/src/run.rs"]
#[allow(dead_code)]
mod run;
#[path = "../../examples/firmware-ssl/slice.rs"]
mod slice;

use simsiam::kernels::Scalar;
use simsiam_hapt::Hapt;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The lines both sides must print identically.
fn compared(line: &str) -> bool {
    ["# params", "# loss", "# predictions", "mcu-ssl: few-shot"]
        .iter()
        .any(|prefix| line.starts_with(prefix))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir] = args.as_slice()
        && flag == "--write-data"
    {
        let hapt = Hapt::load_committed()?;
        let s = slice::slice(&hapt)?;
        let floats = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let dir = std::path::Path::new(dir);
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("train.f32"), floats(&s.train))?;
        std::fs::write(dir.join("labelled.f32"), floats(&s.labelled))?;
        std::fs::write(dir.join("test.f32"), floats(&s.test))?;
        std::fs::write(dir.join("stats.f32"), floats(&[s.mean, s.std].concat()))?;
        std::fs::write(dir.join("labelled.u8"), &s.labelled_classes)?;
        std::fs::write(dir.join("test.u8"), &s.test_classes)?;
        println!("slice written to {}", dir.display());
        return Ok(());
    }
    let firmware_output = args.first().cloned();
    let architecture = run::architecture()?;
    println!(
        "# sizes: params {} scratch_len({}) {} workspace_len(1) {}",
        architecture.param_count()?,
        run::BATCH,
        simsiam::train::scratch_len(&architecture, run::BATCH)?,
        architecture.workspace_len(1)?
    );
    let hapt = Hapt::load_committed()?;
    let s = slice::slice(&hapt)?;
    let data = run::Data {
        train: &s.train,
        labelled: &s.labelled,
        labelled_classes: &s.labelled_classes,
        test: &s.test,
        test_classes: &s.test_classes,
        mean: &s.mean,
        std: &s.std,
    };
    let windows = s.train.len() / run::WINDOW;
    let tests = s.test_classes.len();
    let mut params = vec![0.0_f32; run::PARAMS];
    let mut momentum = vec![0.0_f32; run::PARAMS];
    let mut scratch = vec![0.0_f32; run::SCRATCH];
    let mut views1 = vec![0.0_f32; run::BATCH * run::WINDOW];
    let mut views2 = vec![0.0_f32; run::BATCH * run::WINDOW];
    let mut order = vec![0_u16; windows];
    let mut window = vec![0.0_f32; run::WINDOW];
    let mut feature = vec![0.0_f32; run::FEATURE];
    let mut workspace = vec![0.0_f32; run::WORKSPACE];
    let mut classifier = vec![0.0_f32; run::CLASSIFIER];
    let mut predictions = vec![0_u8; tests];
    let mut buffers = run::Buffers {
        params: &mut params,
        momentum: &mut momentum,
        scratch: &mut scratch,
        views: [&mut views1, &mut views2],
        order: &mut order,
        window: &mut window,
        feature: &mut feature,
        workspace: &mut workspace,
        classifier: &mut classifier,
        predictions: &mut predictions,
    };
    let floats = 2 * run::PARAMS
        + run::SCRATCH
        + 2 * run::BATCH * run::WINDOW
        + run::WINDOW
        + run::FEATURE
        + run::WORKSPACE
        + run::CLASSIFIER;
    println!(
        "# host replay: {} training windows (subjects {:?}), {} labelled, {} test; buffers {} B \
         (parameters {} B, momentum {} B, step scratch {} B of which gradients {} B, views {} B, \
         order {} B, the rest {} B)",
        windows,
        slice::TRAIN_SUBJECTS,
        s.labelled_classes.len(),
        tests,
        4 * floats + 2 * windows + tests,
        4 * run::PARAMS,
        4 * run::PARAMS,
        4 * run::SCRATCH,
        4 * run::PARAMS,
        8 * run::BATCH * run::WINDOW,
        2 * windows,
        4 * (run::WINDOW + run::FEATURE + run::WORKSPACE + run::CLASSIFIER) + tests
    );
    let mut lines: Vec<String> = Vec::new();
    let summary = run::run::<Scalar>(
        &data,
        &mut buffers,
        &mut |bytes| {
            let line = String::from_utf8_lossy(bytes).into_owned();
            println!("{line}");
            lines.push(line);
        },
        &mut |_| {},
    )
    .map_err(|e| format!("the run failed: {e}"))?;
    println!(
        "# correct before {} after {} of {}",
        summary.correct_before, summary.correct_after, summary.tests
    );
    if let Some(path) = firmware_output {
        let text = std::fs::read_to_string(&path)?;
        let theirs: Vec<&str> = text.lines().filter(|l| compared(l)).collect();
        let ours: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| compared(l))
            .collect();
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            if a != b {
                return Err(format!("line {i} differs:\n  host:     {a}\n  firmware: {b}").into());
            }
        }
        if ours.len() != theirs.len() {
            return Err(format!(
                "{} compared lines on the host, {} in {path}",
                ours.len(),
                theirs.len()
            )
            .into());
        }
        println!(
            "mcu-ssl replay: {} lines bit for bit equal to {path}",
            ours.len()
        );
    }
    Ok(())
}
