//! A streaming window buffer for any device: sensor samples in, overlapping windows out.
//!
//! [`WindowStream`] takes one sample (`channels` values) at a time. It first averages
//! runs of `factor` samples (a box filter, then every `factor`-th value: `factor = 1`
//! keeps every sample), then keeps the last `len` averaged samples in a ring. A window is
//! ready once `len` averaged samples have arrived, then after every `stride` more: the
//! windows start at averaged samples `0, stride, 2·stride, …`, as
//! `simsiam_hapt::Hapt::windows` cuts a recording. [`WindowStream::window_into`] writes
//! the newest window channel-major (`c·len + t`), the layout of the encoder's input and
//! of [`crate::augment`].
//!
//! An averaged value is `(((0 + x_0) + x_1) + …) + x_{f−1}) · (1/f)` in `f32`, left to
//! right, so every target gets the same bits (and `simsiam_hapt::Windows::downsampled`
//! the same values).
//!
//! # Memory
//! The caller's storage, [`WindowStream::storage_len`]`(channels, len)` =
//! `channels·(len + 1)` floats (the ring and the running sums); no heap.
//!
//! # Examples
//! ```
//! use simsiam::stream::WindowStream;
//! // 2 channels, windows of 3 averaged samples every 2, averaging pairs of samples.
//! let mut storage = [0.0_f32; 8];
//! let mut stream = WindowStream::new(2, 3, 2, 2, &mut storage[..])?;
//! let mut window = [0.0_f32; 6];
//! let mut ready = 0;
//! for t in 0..10 {
//!     let sample = [t as f32, -(t as f32)];
//!     if stream.push(&sample)? {
//!         stream.window_into(&mut window)?;
//!         ready += 1;
//!     }
//! }
//! // Averaged samples 0.5, 2.5, 4.5, 6.5, 8.5: windows at 0 and 2.
//! assert_eq!(ready, 2);
//! assert_eq!(window, [4.5, 6.5, 8.5, -4.5, -6.5, -8.5]);
//! # Ok::<(), simsiam::SslError>(())
//! ```

use crate::error::{SslError, SslResult, check_finite, check_len};
use crate::kernels::pieces_mut;

/// Overlapping windows from a stream of samples, over storage `S` (anything with
/// [`storage_len`](Self::storage_len) floats). See [the module](self).
#[derive(Debug, Clone)]
pub struct WindowStream<S> {
    channels: usize,
    len: usize,
    stride: usize,
    factor: usize,
    scale: f32,
    storage: S,
    /// Raw samples summed into the running sums so far (below `factor`).
    pending: usize,
    /// Ring position of the next averaged sample (the oldest once the ring is full).
    head: usize,
    /// Averaged samples stored, up to `len`.
    stored: usize,
    /// Averaged samples until the next window is ready.
    until_window: usize,
}

impl<S: AsRef<[f32]> + AsMut<[f32]>> WindowStream<S> {
    /// Floats of storage for `channels` channels and windows of `len` averaged samples:
    /// `channels·(len + 1)`.
    ///
    /// # Errors
    /// `InvalidParameter` for a zero `channels` or `len`, or a length overflowing `usize`.
    pub fn storage_len(channels: usize, len: usize) -> SslResult<usize> {
        if channels == 0 || len == 0 {
            return Err(SslError::InvalidParameter {
                name: if channels == 0 { "channels" } else { "len" },
                reason: "must be at least 1",
            });
        }
        len.checked_add(1)
            .and_then(|rows| rows.checked_mul(channels))
            .ok_or(SslError::InvalidParameter {
                name: "len",
                reason: "channels × (len + 1) overflows usize",
            })
    }

    /// An empty stream over `storage` (zeroed here): windows of `len` averaged samples
    /// of `channels` channels, one every `stride` averaged samples, each averaged sample
    /// the mean of `factor` pushed ones.
    ///
    /// # Errors
    /// [`storage_len`](Self::storage_len)'s errors; `InvalidParameter` for a zero
    /// `stride` or `factor`, or a `factor` above 2^24 (its reciprocal would round);
    /// `DimensionMismatch` when `storage` is not `storage_len` long.
    pub fn new(
        channels: usize,
        len: usize,
        stride: usize,
        factor: usize,
        storage: S,
    ) -> SslResult<Self> {
        let needed = Self::storage_len(channels, len)?;
        if stride == 0 {
            return Err(SslError::InvalidParameter {
                name: "stride",
                reason: "must be at least 1",
            });
        }
        if factor == 0 || factor > 1 << 24 {
            return Err(SslError::InvalidParameter {
                name: "factor",
                reason: "must be 1 to 2^24",
            });
        }
        let mut storage = storage;
        check_len(needed, storage.as_ref().len())?;
        storage.as_mut().fill(0.0);
        Ok(Self {
            channels,
            len,
            stride,
            factor,
            scale: 1.0 / factor as f32,
            storage,
            pending: 0,
            head: 0,
            stored: 0,
            until_window: len,
        })
    }

    /// Channels per sample.
    #[must_use]
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Averaged samples per window (`T`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no averaged sample is stored yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.stored == 0
    }

    /// Floats of one window, `channels·len`.
    #[must_use]
    pub fn window_len(&self) -> usize {
        self.channels.saturating_mul(self.len)
    }

    /// Forgets every sample (the next window needs `len` averaged samples again).
    pub fn clear(&mut self) {
        self.storage.as_mut().fill(0.0);
        self.pending = 0;
        self.head = 0;
        self.stored = 0;
        self.until_window = self.len;
    }

    /// Takes one sample (`channels` values); `Ok(true)` when a new window is ready (read
    /// it with [`window_into`](Self::window_into) before the next push that returns
    /// `true`).
    ///
    /// # Errors
    /// `DimensionMismatch` when `sample` is not `channels` long; `NonFinite`
    /// (`"sample"`) for a non-finite value. The stream is unchanged then.
    pub fn push(&mut self, sample: &[f32]) -> SslResult<bool> {
        check_len(self.channels, sample.len())?;
        check_finite(sample, "sample")?;
        let storage = self.storage.as_mut();
        let ring_len = self.channels.saturating_mul(self.len).min(storage.len());
        let (ring, sums) = storage.split_at_mut(ring_len);
        for (sum, &x) in sums.iter_mut().zip(sample) {
            *sum += x;
        }
        self.pending = self.pending.saturating_add(1);
        if self.pending < self.factor {
            return Ok(false);
        }
        self.pending = 0;
        let start = self.head.saturating_mul(self.channels);
        let slot = ring
            .get_mut(start..start.saturating_add(self.channels))
            .unwrap_or_default();
        for (value, sum) in slot.iter_mut().zip(sums.iter_mut()) {
            *value = *sum * self.scale;
            *sum = 0.0;
        }
        self.head = match self.head.saturating_add(1) {
            next if next >= self.len => 0,
            next => next,
        };
        self.stored = self.len.min(self.stored.saturating_add(1));
        self.until_window = self.until_window.saturating_sub(1);
        if self.until_window == 0 {
            self.until_window = self.stride;
            return Ok(true);
        }
        Ok(false)
    }

    /// The last `len` averaged samples, channel-major (`out[c·len + t]`, `t = 0` the
    /// oldest), into `out`.
    ///
    /// # Errors
    /// `DimensionMismatch` when `out` is not `channels·len` long; `InvalidParameter`
    /// (`"stream"`) before `len` averaged samples have arrived.
    pub fn window_into(&self, out: &mut [f32]) -> SslResult<()> {
        check_len(self.window_len(), out.len())?;
        if self.stored < self.len {
            return Err(SslError::InvalidParameter {
                name: "stream",
                reason: "fewer than len averaged samples so far",
            });
        }
        let ring = self
            .storage
            .as_ref()
            .get(..self.window_len())
            .unwrap_or_default();
        // Ring slots from the oldest (`head`) on, wrapping once.
        let mut slot = self.head;
        for t in 0..self.len {
            let start = slot.saturating_mul(self.channels);
            let sample = ring
                .get(start..start.saturating_add(self.channels))
                .unwrap_or_default();
            for (row, &value) in pieces_mut(out, self.len).zip(sample) {
                if let Some(o) = row.get_mut(t) {
                    *o = value;
                }
            }
            slot = match slot.saturating_add(1) {
                next if next >= self.len => 0,
                next => next,
            };
        }
        Ok(())
    }
}
