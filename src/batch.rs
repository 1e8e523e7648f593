//! Batch forward passes and batch loss: `n` inputs (or pairs) at once, as matrix × matrix.
//!
//! Inputs are taken [`BATCH_GROUP`] (16) at a time, one per lane of
//! [`Kernels::matmat_t_add`]: the group's inputs are packed transposed on the stack, and
//! every weight is loaded once per group and broadcast against sixteen inputs (on AVX2,
//! six rows × sixteen inputs per inner loop: 12 FMAs per 8 loads, no horizontal sums).
//! So the weights are read `⌈n / 16⌉` times instead of `n` times, and the work becomes
//! compute-bound where the single calls are bound by memory. A group of one or two inputs
//! takes the pair path of the two-view loss instead ([`Kernels::matvec2_add`]).
//!
//! Results equal `n` single calls up to summation order: on the scalar twin bit for bit
//! (every output is one running sum in the reference's order), on the SIMD twin within
//! [`sum_error_bound`](crate::kernels::sum_error_bound) per sum.
//!
//! # Memory per call
//! No heap. Stack, whatever `n`: when both layers of an MLP are at most 128 wide (the
//! default config, firmware-sized heads), 20 KiB for the lanes path (inputs packed 128
//! columns at a time, 8 KiB; 128 hidden units, 8 KiB; 64 output rows, 4 KiB); for wider
//! layers 68 KiB (512 columns, 32 KiB; 512 hidden units, 32 KiB; 4 KiB), in a frame of its
//! own, because the longer weight strips stream much faster from memory. Plus about
//! 1.5 KiB of slice bookkeeping; for one or two inputs the pair path's 2 KiB (8 KiB for
//! hidden layers wider than 256 units). `loss_batch_with_workspace` also needs the
//! caller's workspace of [`SimSiamConfig::batch_loss_workspace_len`] floats
//! (`4·d_out·min(n, 8)`).

use crate::config::SimSiamConfig;
use crate::error::{BATCH_OVERFLOW, SslError, SslResult, check_finite, check_len};
use crate::head::{DenseLayer, SimSiamHead, debug_assert_layout, mlp2_pair, normalize_checked};
use crate::kernels::{
    BATCH_LANES, Backend, Kernels, Scalar, Simd, pieces, pieces_mut, relu_in_place,
};

/// Inputs pushed through the weights together by the batch calls (pairs of views count
/// as two): the lanes of [`Kernels::matmat_t_add`].
pub const BATCH_GROUP: usize = BATCH_LANES;

/// Pairs of views per group in the batch loss.
pub(crate) const BATCH_PAIRS: usize = BATCH_GROUP / 2;

/// `n` when `len == n·width`, else `DimensionMismatch` (expected: the largest multiple
/// of `width` not above `len`).
fn row_count(len: usize, width: usize) -> SslResult<usize> {
    let n = len.checked_div(width).unwrap_or(0);
    let whole = n.saturating_mul(width);
    check_len(whole, len)?;
    Ok(n)
}

/// `n·width` or an overflow error.
fn area(n: usize, width: usize) -> SslResult<usize> {
    n.checked_mul(width).ok_or(BATCH_OVERFLOW)
}

/// Input columns packed (transposed) per step of the lanes path: 8 KiB of stack.
const PACK_COLUMNS: usize = 128;
/// Hidden units per block of the lanes path: 8 KiB of stack.
const LANES_HIDDEN: usize = 128;
/// Output rows per block of the lanes path: 4 KiB of stack.
const OUTPUT_ROWS: usize = 64;
/// [`PACK_COLUMNS`] for layers wider than the small blocks: 32 KiB of stack.
const WIDE_PACK_COLUMNS: usize = 512;
/// [`LANES_HIDDEN`] for layers wider than the small blocks: 32 KiB of stack.
const WIDE_LANES_HIDDEN: usize = 512;

/// `outs[j] = W2·ReLU(W1·xs[j] + b1) + b2` (not normalised) for up to [`BATCH_LANES`]
/// inputs, one per lane, through [`Kernels::matmat_t_add`]: the inputs are packed
/// transposed `PACK` columns at a time, the hidden layer is made `HIDDEN` units at a
/// time for all inputs, and each block is folded into the
/// outputs [`OUTPUT_ROWS`] rows at a time. Every weight is read once per call and feeds
/// sixteen lanes. Unused lanes carry finite padding and are discarded.
///
/// Each output is one running sum from its bias, column after column, block after block:
/// on the scalar twin exactly the single-vector path's order.
fn mlp2_lanes<K: Kernels, const PACK: usize, const HIDDEN: usize>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
) {
    debug_assert!(
        xs.len() == outs.len() && xs.len() <= BATCH_LANES,
        "group of the wrong size"
    );
    let count = xs.len().min(outs.len()).min(BATCH_LANES);
    let xs = xs.get(..count).unwrap_or_default();
    let outs = outs.get_mut(..count).unwrap_or_default();
    for (x, out) in xs.iter().zip(outs.iter_mut()) {
        debug_assert_layout(hidden, output, x.len(), out.len());
        out.iter_mut().zip(output.bias).for_each(|(o, b)| *o = *b);
    }
    let d_in = hidden.d_in;
    let d_hidden = hidden.bias.len();
    let block_rows = HIDDEN.min(d_hidden).max(1);
    // Both products are at most a weight count that `split_layers` proved fits in usize.
    let block_weights = block_rows.saturating_mul(d_in).max(1);
    let output_block = OUTPUT_ROWS.saturating_mul(d_hidden).max(1);
    let mut xt = [[0.0_f32; BATCH_LANES]; PACK];
    let mut ht = [[0.0_f32; BATCH_LANES]; HIDDEN];
    let mut yt = [[0.0_f32; BATCH_LANES]; OUTPUT_ROWS];
    let blocks = pieces(hidden.weights, block_weights).zip(pieces(hidden.bias, block_rows));
    let mut first_unit = 0_usize;
    for (w1, b1) in blocks {
        // `b1.len() ≤ block_rows ≤ HIDDEN` by `pieces`.
        debug_assert!(b1.len() <= HIDDEN, "hidden block overflows its buffer");
        let h = ht.get_mut(..b1.len()).unwrap_or_default();
        h.iter_mut()
            .zip(b1)
            .for_each(|(hi, bi)| *hi = [*bi; BATCH_LANES]);
        let mut k0 = 0_usize;
        while k0 < d_in {
            let k1 = k0.saturating_add(PACK).min(d_in);
            let columns = xt.get_mut(..k1.saturating_sub(k0)).unwrap_or_default();
            for (j, x) in xs.iter().enumerate() {
                let x = x.get(k0..k1).unwrap_or_default();
                for (column, v) in columns.iter_mut().zip(x) {
                    if let Some(slot) = column.get_mut(j) {
                        *slot = *v;
                    }
                }
            }
            K::matmat_t_add(w1, d_in, k0, columns, h);
            k0 = k1;
        }
        h.iter_mut().for_each(|hi| relu_in_place(hi));

        let mut o0 = 0_usize;
        for w2 in pieces(output.weights, output_block) {
            let rows = w2.len().checked_div(d_hidden).unwrap_or(0);
            // `w2.len() ≤ OUTPUT_ROWS·d_hidden` by `pieces`, in whole rows.
            debug_assert!(
                rows <= OUTPUT_ROWS && rows * d_hidden == w2.len(),
                "ragged output block"
            );
            let o1 = o0.saturating_add(rows);
            let y = yt.get_mut(..rows).unwrap_or_default();
            for (j, out) in outs.iter().enumerate() {
                let out = out.get(o0..o1).unwrap_or_default();
                for (yi, v) in y.iter_mut().zip(out) {
                    if let Some(slot) = yi.get_mut(j) {
                        *slot = *v;
                    }
                }
            }
            K::matmat_t_add(w2, d_hidden, first_unit, h, y);
            for (j, out) in outs.iter_mut().enumerate() {
                let out = out.get_mut(o0..o1).unwrap_or_default();
                for (yi, v) in y.iter().zip(out) {
                    if let Some(value) = yi.get(j) {
                        *v = *value;
                    }
                }
            }
            o0 = o1;
        }
        first_unit = first_unit.saturating_add(b1.len());
    }
}

/// [`mlp2_lanes`] with blocks four times as wide, for layers wider than the small blocks:
/// inputs packed [`WIDE_PACK_COLUMNS`] columns at a time (32 KiB) and
/// [`WIDE_LANES_HIDDEN`] hidden units per block (32 KiB), 68 KiB of stack in a frame of
/// its own. The weights are then read in 2 KiB strips per row instead of 512-byte ones:
/// measured 1.2–1.6× faster at the mid and paper dimensions on Zen 3.
#[inline(never)]
fn mlp2_lanes_wide<K: Kernels>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
) {
    mlp2_lanes::<K, WIDE_PACK_COLUMNS, WIDE_LANES_HIDDEN>(hidden, output, xs, outs);
}

/// A group of up to [`BATCH_GROUP`] inputs through one two-layer MLP: one or two
/// inputs take the pair path (as the single two-view loss), more take the lanes path.
fn mlp2_many<K: Kernels>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
) {
    if xs.len() > 2 {
        if hidden.d_in > PACK_COLUMNS || hidden.bias.len() > LANES_HIDDEN {
            mlp2_lanes_wide::<K>(hidden, output, xs, outs);
        } else {
            mlp2_lanes::<K, PACK_COLUMNS, LANES_HIDDEN>(hidden, output, xs, outs);
        }
    } else {
        mlp2_pair::<K>(hidden, output, xs, outs);
    }
}

/// `outs` row `j` = `L2(mlp2(xs row j))` for every row, [`BATCH_GROUP`] rows at a time.
fn batch_mlp2<K: Kernels>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    xs: &[f32],
    outs: &mut [f32],
    location: &'static str,
) -> SslResult<()> {
    // `pieces`, not `chunks_exact`: `zip` asks for the length, a division by the chunk
    // size that keeps a panic path where it is not inlined (the no-panic check at
    // opt-level "z"). The lengths are whole multiples, checked by the callers.
    let mut inputs = pieces(xs, hidden.d_in);
    let mut outputs = pieces_mut(outs, output.bias.len());
    loop {
        let mut group_x: [&[f32]; BATCH_GROUP] = [&[]; BATCH_GROUP];
        let mut group_y: [&mut [f32]; BATCH_GROUP] = Default::default();
        // The slots come first in the zip, so a full group takes nothing more from the
        // input iterators.
        let count = group_x
            .iter_mut()
            .zip(group_y.iter_mut())
            .zip(inputs.by_ref().zip(outputs.by_ref()))
            .map(|((gx, gy), (x, y))| {
                *gx = x;
                *gy = y;
            })
            .count();
        if count == 0 {
            return Ok(());
        }
        let group_x = group_x.get(..count).unwrap_or_default();
        let group_y = group_y.get_mut(..count).unwrap_or_default();
        mlp2_many::<K>(hidden, output, group_x, group_y);
        for y in group_y.iter_mut() {
            normalize_checked::<K>(y, location)?;
        }
    }
}

impl<S: AsRef<[f32]>> SimSiamHead<S> {
    /// Projects `n` encoder outputs at once: row `j` of `out` is
    /// [`project_into`](Self::project_into) of row `j` of `zs`.
    ///
    /// `zs` is `n × d_encoder` row-major (`n = zs.len() / d_encoder`, possibly 0) and `out`
    /// is `n × d_out`. The weights are read once per [`BATCH_GROUP`] inputs. On error,
    /// `out` may be partly written.
    ///
    /// # Errors
    /// `DimensionMismatch` when `zs.len()` is not a multiple of `d_encoder`, then when
    /// `out.len() != n·d_out`; `NonFinite { location: "z" }` for a NaN/infinite input,
    /// `NonFinite { location: "projector output" }` when a result overflows.
    ///
    /// # Examples
    /// ```
    /// use simsiam::{LcgRng, SimSiamConfig, SimSiamHead};
    /// let config = SimSiamConfig::default();
    /// let head = SimSiamHead::<heapless::Vec<f32, 16_640>>::from_seed(config, &mut LcgRng::new(0))?;
    /// let zs = [0.5_f32; 3 * 64];
    /// let mut out = [0.0_f32; 3 * 32];
    /// head.project_batch_into(&zs, &mut out)?;
    /// let mut single = [0.0_f32; 32];
    /// head.project_into(&zs[..64], &mut single)?;
    /// assert!(out[..32].iter().zip(&single).all(|(a, b)| (a - b).abs() < 1e-5));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn project_batch_into(&self, zs: &[f32], out: &mut [f32]) -> SslResult<()> {
        match self.backend() {
            Backend::Simd => self.project_batch_into_with::<Simd>(zs, out),
            Backend::Scalar => self.project_batch_into_with::<Scalar>(zs, out),
        }
    }

    /// [`project_batch_into`](Self::project_batch_into) on the kernels `K` chosen at
    /// compile time.
    ///
    /// # Errors
    /// As [`project_batch_into`](Self::project_batch_into).
    pub fn project_batch_into_with<K: Kernels>(
        &self,
        zs: &[f32],
        out: &mut [f32],
    ) -> SslResult<()> {
        let config = self.config();
        let n = row_count(zs.len(), config.d_encoder)?;
        check_len(area(n, config.d_out)?, out.len())?;
        check_finite(zs, "z")?;
        let [w1, w2, _, _] = self.layers()?;
        batch_mlp2::<K>(&w1, &w2, zs, out, "projector output")
    }

    /// Applies the predictor to `n` projections at once: row `j` of `out` is
    /// [`predict_into`](Self::predict_into) of row `j` of `ps`. Both are `n × d_out`
    /// row-major. On error, `out` may be partly written.
    ///
    /// # Errors
    /// `DimensionMismatch` when `ps.len()` is not a multiple of `d_out`, then when
    /// `out.len() != ps.len()`; `NonFinite { location: "p" }` or
    /// `{ location: "predictor output" }`.
    pub fn predict_batch_into(&self, ps: &[f32], out: &mut [f32]) -> SslResult<()> {
        match self.backend() {
            Backend::Simd => self.predict_batch_into_with::<Simd>(ps, out),
            Backend::Scalar => self.predict_batch_into_with::<Scalar>(ps, out),
        }
    }

    /// [`predict_batch_into`](Self::predict_batch_into) on the kernels `K` chosen at
    /// compile time.
    ///
    /// # Errors
    /// As [`predict_batch_into`](Self::predict_batch_into).
    pub fn predict_batch_into_with<K: Kernels>(
        &self,
        ps: &[f32],
        out: &mut [f32],
    ) -> SslResult<()> {
        let config = self.config();
        let n = row_count(ps.len(), config.d_out)?;
        check_len(area(n, config.d_out)?, out.len())?;
        check_finite(ps, "p")?;
        let [_, _, w1, w2] = self.layers()?;
        batch_mlp2::<K>(&w1, &w2, ps, out, "predictor output")
    }

    /// The SimSiam loss of `n = losses.len()` pairs of views at once: `losses[j]` is
    /// [`loss_with_workspace`](Self::loss_with_workspace) of row `j` of `z1s` and of
    /// `z2s` (both `n × d_encoder` row-major).
    ///
    /// Pairs are taken eight at a time (sixteen inputs, one per lane); a batch of one pair
    /// takes the two-view path and gives exactly the single call's result. `workspace`
    /// must hold at least [`SimSiamConfig::batch_loss_workspace_len`]`(n)` =
    /// `4·d_out·min(n, 8)` floats.
    /// On error, `losses` may be partly written.
    ///
    /// # Errors
    /// `DimensionMismatch` when `z1s` or then `z2s` is not `n·d_encoder` long;
    /// `CapacityTooSmall` for a short workspace; `NonFinite` with locations `"z1"`,
    /// `"z2"`, `"projector output"`, `"predictor output"`; `InvalidParameter` when a
    /// size overflows `usize`.
    ///
    /// # Examples
    /// ```
    /// use simsiam::{LcgRng, SimSiamConfig, SimSiamHead};
    /// let config = SimSiamConfig::default();
    /// let head = SimSiamHead::<heapless::Vec<f32, 16_640>>::from_seed(config, &mut LcgRng::new(0))?;
    /// let (z1s, z2s) = ([0.5_f32; 2 * 64], [0.25_f32; 2 * 64]);
    /// let mut losses = [0.0_f32; 2];
    /// let mut workspace = [0.0_f32; 4 * 32 * 2];
    /// assert_eq!(config.batch_loss_workspace_len(2)?, workspace.len());
    /// head.loss_batch_with_workspace(&z1s, &z2s, &mut losses, &mut workspace)?;
    /// let single = head.loss_with_workspace(&z1s[..64], &z2s[..64], &mut workspace)?;
    /// assert!((losses[0] - single).abs() < 1e-5);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn loss_batch_with_workspace(
        &self,
        z1s: &[f32],
        z2s: &[f32],
        losses: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        match self.backend() {
            Backend::Simd => {
                self.loss_batch_with_workspace_with::<Simd>(z1s, z2s, losses, workspace)
            }
            Backend::Scalar => {
                self.loss_batch_with_workspace_with::<Scalar>(z1s, z2s, losses, workspace)
            }
        }
    }

    /// [`loss_batch_with_workspace`](Self::loss_batch_with_workspace) on the kernels `K`
    /// chosen at compile time.
    ///
    /// # Errors
    /// As [`loss_batch_with_workspace`](Self::loss_batch_with_workspace).
    pub fn loss_batch_with_workspace_with<K: Kernels>(
        &self,
        z1s: &[f32],
        z2s: &[f32],
        losses: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        let config: &SimSiamConfig = self.config();
        let (d_encoder, d_out) = (config.d_encoder, config.d_out);
        let n = losses.len();
        let input_len = area(n, d_encoder)?;
        check_len(input_len, z1s.len())?;
        check_len(input_len, z2s.len())?;
        let needed = config.batch_loss_workspace_len(n)?;
        let too_small = SslError::CapacityTooSmall {
            needed,
            capacity: workspace.len(),
        };
        let capacity = workspace.len();
        let workspace = workspace.get_mut(..needed).ok_or(too_small)?;
        check_finite(z1s, "z1")?;
        check_finite(z2s, "z2")?;
        if n == 0 {
            return Ok(());
        }
        let [pw1, pw2, qw1, qw2] = self.layers()?;
        // Workspace: `2·min(n, 8)` projections, then as many predictions, each `d_out`,
        // interleaved by view (z1 of pair a, z2 of pair a, z1 of pair b, ...).
        let (projections, predictions) = workspace
            .split_at_mut_checked(needed / 2)
            .ok_or(SslError::CapacityTooSmall { needed, capacity })?;
        // Rows pulled with `next()`, not zipped: see the note on `parts` below.
        // `z1s` and `z2s` hold exactly `n = losses.len()` rows (checked above), so every
        // `next()` is `Some`.
        let mut z1_rows = z1s.chunks_exact(d_encoder.max(1));
        let mut z2_rows = z2s.chunks_exact(d_encoder.max(1));
        let pairs = losses.iter_mut().map(|loss| {
            let (z1, z2) = (z1_rows.next(), z2_rows.next());
            debug_assert!(z1.is_some() && z2.is_some(), "fewer input rows than losses");
            ((z1.unwrap_or_default(), z2.unwrap_or_default()), loss)
        });
        let mut pairs = pairs.peekable();
        while pairs.peek().is_some() {
            let mut xs: [&[f32]; BATCH_GROUP] = [&[]; BATCH_GROUP];
            let mut group_losses: [Option<&mut f32>; BATCH_PAIRS] = Default::default();
            let count = xs
                .as_chunks_mut::<2>()
                .0
                .iter_mut()
                .zip(group_losses.iter_mut())
                .zip(pairs.by_ref())
                .map(|(([a, b], loss_slot), ((z1, z2), loss))| {
                    *a = z1;
                    *b = z2;
                    *loss_slot = Some(loss);
                })
                .count();
            let inputs = count.saturating_mul(2);
            let xs = xs.get(..inputs).unwrap_or_default();

            // `next()` rather than `zip`: `Zip::new` asks `ChunksExactMut` for its length,
            // a division by the chunk size that the optimiser cannot prove non-zero once
            // `Zip::new` is not inlined (found by the link-time no-panic check).
            let mut parts = projections.chunks_exact_mut(d_out.max(1));
            let mut zp: [&mut [f32]; BATCH_GROUP] = Default::default();
            zp.iter_mut()
                .for_each(|slot| *slot = parts.next().unwrap_or_default());
            let zp = zp.get_mut(..inputs).unwrap_or_default();
            debug_assert!(
                zp.iter().all(|z| z.len() == d_out),
                "workspace slots too few"
            );
            mlp2_many::<K>(&pw1, &pw2, xs, zp);
            for z in zp.iter_mut() {
                normalize_checked::<K>(z, "projector output")?;
            }

            let mut zp_views: [&[f32]; BATCH_GROUP] = [&[]; BATCH_GROUP];
            zp_views.iter_mut().zip(zp.iter()).for_each(|(v, z)| *v = z);
            let zp_views = zp_views.get(..inputs).unwrap_or_default();
            let mut parts = predictions.chunks_exact_mut(d_out.max(1));
            let mut pp: [&mut [f32]; BATCH_GROUP] = Default::default();
            pp.iter_mut()
                .for_each(|slot| *slot = parts.next().unwrap_or_default());
            let pp = pp.get_mut(..inputs).unwrap_or_default();
            debug_assert!(
                pp.iter().all(|p| p.len() == d_out),
                "workspace slots too few"
            );
            mlp2_many::<K>(&qw1, &qw2, zp_views, pp);
            for p in pp.iter_mut() {
                normalize_checked::<K>(p, "predictor output")?;
            }

            // `as_chunks`, not `chunks_exact(2)`: no chunk-size division for `Zip::new`.
            let ((z_pairs, _), (p_pairs, _)) = (zp_views.as_chunks::<2>(), pp.as_chunks::<2>());
            let groups = z_pairs.iter().zip(p_pairs);
            for ((z_pair, p_pair), loss) in groups.zip(group_losses.iter_mut()) {
                if let ([z1p, z2p], [p1, p2], Some(loss)) = (z_pair, p_pair, loss) {
                    **loss = (-K::dot_add(0.0, p1, z2p) + -K::dot_add(0.0, p2, z1p)) * 0.5;
                }
            }
        }
        Ok(())
    }
}
