//! The slice of HAPT the SSL firmware holds in flash, cut on the host: by the firmware's
//! build script (`build.rs`) and by its replay (`hapt/examples/mcu_replay.rs`), which
//! both include this file, so both run on the same windows.
//!
//! Windows: the recipe's (128 samples, stride 64) averaged over runs of 4 (32 samples at
//! 12.5 Hz, `Windows::downsampled`), as `hapt-mcu` trains on the host.
//! - the standardisation: every training window's per-channel statistics (the host's);
//! - training: every window (labelled or not) of [`TRAIN_SUBJECTS`];
//! - labelled: [`LABELLED_PER_CLASS`] windows of each class from those subjects, evenly
//!   spaced through the class's windows (the wearer labels a few of their own);
//! - test: [`TEST_PER_CLASS`] windows of each class from the 9 test subjects, evenly
//!   spaced through the class's windows.

use simsiam_hapt::{Hapt, HaptError, Split, WindowSpec, Windows};

/// The training subjects whose windows the device trains on.
pub const TRAIN_SUBJECTS: [u16; 4] = [1, 3, 5, 6];
/// Labelled windows per class.
pub const LABELLED_PER_CLASS: usize = 5;
/// Test windows per class.
pub const TEST_PER_CLASS: usize = 30;
/// Samples averaged into one.
pub const DOWNSAMPLE: usize = 4;

/// The slice, windows `[C, T]` channel-major one after another, classes 0–5.
pub struct Slice {
    /// Training windows.
    pub train: Vec<f32>,
    /// Labelled windows.
    pub labelled: Vec<f32>,
    /// Their classes.
    pub labelled_classes: Vec<u8>,
    /// Test windows.
    pub test: Vec<f32>,
    /// Their classes.
    pub test_classes: Vec<u8>,
    /// Per-channel mean of every training window.
    pub mean: [f32; 6],
    /// Per-channel standard deviation of every training window.
    pub std: [f32; 6],
}

/// `per_class` windows of each class 1–6 among `rows` of `windows`, evenly spaced.
fn pick(windows: &Windows, rows: &[usize], per_class: usize, x: &mut Vec<f32>, y: &mut Vec<u8>) {
    for class in 1..=6_i8 {
        let members: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&i| windows.labels().get(i) == Some(&class))
            .collect();
        for k in 0..per_class.min(members.len()) {
            let i = members[k * members.len() / per_class];
            x.extend_from_slice(windows.window(i).unwrap_or_default());
            y.push((class - 1) as u8);
        }
    }
}

/// Cuts the slice from the data set.
pub fn slice(hapt: &Hapt) -> Result<Slice, HaptError> {
    let train = hapt
        .windows(WindowSpec::RECIPE, Split::Train)?
        .downsampled(DOWNSAMPLE)?;
    let test = hapt
        .windows(WindowSpec::RECIPE, Split::Test)?
        .downsampled(DOWNSAMPLE)?;
    let stats = train.channel_stats().ok_or(HaptError::InvalidWindowSpec)?;
    let ours: Vec<usize> = (0..train.count())
        .filter(|&i| TRAIN_SUBJECTS.contains(&train.origins()[i].subject))
        .collect();
    let mut slice = Slice {
        train: Vec::new(),
        labelled: Vec::new(),
        labelled_classes: Vec::new(),
        test: Vec::new(),
        test_classes: Vec::new(),
        mean: stats.mean,
        std: stats.std,
    };
    for &i in &ours {
        slice
            .train
            .extend_from_slice(train.window(i).unwrap_or_default());
    }
    pick(
        &train,
        &ours,
        LABELLED_PER_CLASS,
        &mut slice.labelled,
        &mut slice.labelled_classes,
    );
    let every: Vec<usize> = (0..test.count()).collect();
    pick(
        &test,
        &every,
        TEST_PER_CLASS,
        &mut slice.test,
        &mut slice.test_classes,
    );
    Ok(slice)
}
