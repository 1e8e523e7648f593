//! The hapt recipes' windows, subject split and per-channel standardisation.

use crate::{CHANNELS, Hapt, HaptError};

/// UCI HAR's test subjects; the other 21 of the 30 are the training subjects.
pub const TEST_SUBJECTS: [u16; 9] = [2, 4, 9, 10, 12, 13, 18, 20, 24];

/// Which subjects a set of windows comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The 21 subjects not in [`TEST_SUBJECTS`].
    Train,
    /// The 9 subjects in [`TEST_SUBJECTS`].
    Test,
}

impl Split {
    /// The split `subject` belongs to.
    ///
    /// # Examples
    /// ```
    /// use simsiam_hapt::Split;
    /// assert_eq!(Split::of_subject(2), Split::Test);
    /// assert_eq!(Split::of_subject(1), Split::Train);
    /// ```
    #[must_use]
    pub fn of_subject(subject: u16) -> Self {
        if TEST_SUBJECTS.contains(&subject) {
            Self::Test
        } else {
            Self::Train
        }
    }
}

/// Window length and stride in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowSpec {
    /// Samples per window (`T`).
    pub len: usize,
    /// Samples from one window's start to the next one's.
    pub stride: usize,
}

impl WindowSpec {
    /// The hapt recipes' windows: 128 samples (2.56 s at 50 Hz), stride 64.
    pub const RECIPE: Self = Self {
        len: 128,
        stride: 64,
    };
}

/// Where a window was cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowOrigin {
    /// The subject of its recording.
    pub subject: u16,
    /// The experiment id of its recording.
    pub experiment: u16,
    /// Index of its first sample in the recording.
    pub start: usize,
}

/// A set of windows, each channel-major: window `i`, channel `c`, time `t` is at
/// `data()[(i * CHANNELS + c) * len + t]`, the layout of PyTorch's `x.view(N, C, T)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    len: usize,
    data: Vec<f32>,
    labels: Vec<i8>,
    origins: Vec<WindowOrigin>,
}

/// Per-channel mean and standard deviation, the recipe's standardisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelStats {
    /// Mean of each channel.
    pub mean: [f32; CHANNELS],
    /// Standard deviation of each channel (population: the mean square deviation's root).
    pub std: [f32; CHANNELS],
}

/// The label of a window: its activity (1–6) if every sample carries it, else −1.
fn window_label(labels: &[i8]) -> i8 {
    match labels.first() {
        Some(&first @ 1..=6) if labels.iter().all(|&l| l == first) => first,
        _ => -1,
    }
}

impl Hapt {
    /// The windows of the recordings of `split`, in experiment order and, within a
    /// recording, in time order.
    ///
    /// Windows start at samples 0, `stride`, 2·`stride`, … and end within the recording (a
    /// recording shorter than `len` gives none). A window's label is the activity 1–6 if
    /// all its samples carry it, else −1 (transitions, mixed or unlabelled samples).
    ///
    /// # Errors
    /// [`HaptError::InvalidWindowSpec`] if `spec.len` or `spec.stride` is 0;
    /// [`HaptError::WindowsTooLarge`] if the windows do not fit in memory.
    ///
    /// # Examples
    /// ```
    /// use simsiam_hapt::{Hapt, Split, WindowSpec};
    /// let hapt = Hapt::load_committed()?;
    /// let train = hapt.windows(WindowSpec::RECIPE, Split::Train)?;
    /// assert_eq!(train.count(), 12_400);
    /// assert_eq!(train.window(0).map(<[f32]>::len), Some(6 * 128));
    /// # Ok::<(), simsiam_hapt::HaptError>(())
    /// ```
    pub fn windows(&self, spec: WindowSpec, split: Split) -> Result<Windows, HaptError> {
        if spec.len == 0 || spec.stride == 0 {
            return Err(HaptError::InvalidWindowSpec);
        }
        let mut windows = Windows {
            len: spec.len,
            data: Vec::new(),
            labels: Vec::new(),
            origins: Vec::new(),
        };
        for recording in self.recordings() {
            if Split::of_subject(recording.subject()) != split {
                continue;
            }
            let Some(last_start) = recording.len().checked_sub(spec.len) else {
                continue; // shorter than one window
            };
            // From here spec.len <= n, so start + spec.len <= n and 6 * n fits (the signals do).
            let count = last_start / spec.stride + 1;
            count
                .checked_mul(CHANNELS * spec.len)
                .and_then(|more| windows.data.try_reserve(more).ok())
                .ok_or(HaptError::WindowsTooLarge)?;
            let samples = recording.signals();
            for start in (0..count).map(|i| i * spec.stride) {
                let rows = samples.get(start * CHANNELS..(start + spec.len) * CHANNELS);
                let labels = recording.labels().get(start..start + spec.len);
                let (Some(rows), Some(labels)) = (rows, labels) else {
                    break;
                };
                for channel in 0..CHANNELS {
                    let column = rows.iter().skip(channel).step_by(CHANNELS);
                    windows.data.extend(column);
                }
                windows.labels.push(window_label(labels));
                windows.origins.push(WindowOrigin {
                    subject: recording.subject(),
                    experiment: recording.experiment(),
                    start,
                });
            }
        }
        Ok(windows)
    }
}

impl Windows {
    /// The number of windows (`N`).
    #[must_use]
    pub fn count(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no windows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Samples per window (`T`).
    #[must_use]
    pub fn window_len(&self) -> usize {
        self.len
    }

    /// All windows, `[N, C, T]` flattened (see [`Windows`] for the index).
    #[must_use]
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Window `i`, `[C, T]` flattened, or `None` past the end.
    #[must_use]
    pub fn window(&self, i: usize) -> Option<&[f32]> {
        self.data.chunks_exact(CHANNELS * self.len).nth(i)
    }

    /// Each window's label: 1–6, or −1 for a window that is not one activity throughout.
    #[must_use]
    pub fn labels(&self) -> &[i8] {
        &self.labels
    }

    /// Where each window was cut from.
    #[must_use]
    pub fn origins(&self) -> &[WindowOrigin] {
        &self.origins
    }

    /// The number of windows with an activity label (1–6).
    #[must_use]
    pub fn labelled_count(&self) -> usize {
        self.labels.iter().filter(|&&l| l > 0).count()
    }

    /// The windows with an activity label (1–6), in order.
    #[must_use]
    pub fn labelled(&self) -> Self {
        let mut out = Self {
            len: self.len,
            data: Vec::new(),
            labels: Vec::new(),
            origins: Vec::new(),
        };
        let windows = self.data.chunks_exact(CHANNELS * self.len);
        for ((window, &label), origin) in windows.zip(&self.labels).zip(&self.origins) {
            if label > 0 {
                out.data.extend_from_slice(window);
                out.labels.push(label);
                out.origins.push(*origin);
            }
        }
        out
    }

    /// Every window averaged over runs of `factor` samples (a box filter, then every
    /// `factor`-th sample): window length `T / factor` (the last `T mod factor` samples
    /// dropped), labels and origins kept. Sample `j` of a channel is
    /// `(((x[f·j] + x[f·j+1]) + …) + x[f·j+f−1]) · (1/f)` in `f32`, left to right, so any
    /// target computes the same bits.
    ///
    /// # Errors
    /// [`HaptError::InvalidWindowSpec`] for a `factor` of 0 or above the window length.
    ///
    /// # Examples
    /// ```
    /// use simsiam_hapt::{Hapt, Split, WindowSpec};
    /// let hapt = Hapt::load_committed()?;
    /// let test = hapt.windows(WindowSpec::RECIPE, Split::Test)?;
    /// let slow = test.downsampled(4)?;
    /// assert_eq!((slow.count(), slow.window_len()), (test.count(), 32));
    /// # Ok::<(), simsiam_hapt::HaptError>(())
    /// ```
    pub fn downsampled(&self, factor: usize) -> Result<Self, HaptError> {
        if factor == 0 || factor > self.len {
            return Err(HaptError::InvalidWindowSpec);
        }
        let len = self.len / factor;
        let scale = 1.0 / factor as f32;
        let mut data = Vec::with_capacity(self.count() * CHANNELS * len);
        for row in self.data.chunks_exact(self.len) {
            for run in row.chunks_exact(factor) {
                data.push(run.iter().fold(0.0_f32, |sum, &x| sum + x) * scale);
            }
        }
        Ok(Self {
            len,
            data,
            labels: self.labels.clone(),
            origins: self.origins.clone(),
        })
    }

    /// Per-channel mean and standard deviation over every sample of every window (a
    /// sample in two overlapping windows counts twice), or `None` if there are no windows.
    ///
    /// Computed in `f64` in two passes, `mean = Σx / n` then `std = √(Σ(x − mean)² / n)`
    /// (population, not Bessel-corrected), each rounded to `f32` at the end.
    #[must_use]
    pub fn channel_stats(&self) -> Option<ChannelStats> {
        if self.is_empty() {
            return None;
        }
        let count = (self.count() * self.len) as f64;
        let mut sum = [0.0_f64; CHANNELS];
        let mut square_sum = [0.0_f64; CHANNELS];
        for window in self.data.chunks_exact(CHANNELS * self.len) {
            for (row, total) in window.chunks_exact(self.len).zip(&mut sum) {
                *total += row.iter().map(|&x| f64::from(x)).sum::<f64>();
            }
        }
        let mean = sum.map(|s| s / count);
        for window in self.data.chunks_exact(CHANNELS * self.len) {
            for ((row, total), &m) in window
                .chunks_exact(self.len)
                .zip(&mut square_sum)
                .zip(&mean)
            {
                *total += row.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>();
            }
        }
        Some(ChannelStats {
            mean: mean.map(|m| m as f32),
            std: square_sum.map(|s| (s / count).sqrt() as f32),
        })
    }

    /// Standardises every window in place: `x = (x − mean[c]) / std[c]` in `f32`.
    ///
    /// A channel whose `std` is 0 becomes non-finite (a constant channel cannot be scaled).
    pub fn standardise(&mut self, stats: &ChannelStats) {
        for window in self.data.chunks_exact_mut(CHANNELS * self.len) {
            for ((row, &mean), &std) in window
                .chunks_exact_mut(self.len)
                .zip(&stats.mean)
                .zip(&stats.std)
            {
                for x in row {
                    *x = (*x - mean) / std;
                }
            }
        }
    }
}
