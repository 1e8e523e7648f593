//! Batch forward passes and batch loss: `n` inputs (or pairs) at once, as matrix × matrix.
//!
//! Inputs are taken [`BATCH_GROUP`] at a time; for each group every weight panel is read
//! once and feeds every input of the group (two at a time through
//! [`Kernels::matvec2_add`], four rows × two inputs per inner loop on the SIMD twin). So
//! the weights are read `⌈n / BATCH_GROUP⌉` times instead of `n` times, and at the paper's
//! dimensions the work becomes compute-bound instead of memory-bound.
//!
//! Results equal `n` single calls up to summation order: on the scalar twin bit for bit,
//! on the SIMD twin within [`sum_error_bound`](crate::kernels::sum_error_bound) per sum
//! (the batch and single-vector paths block the rows differently).
//!
//! # Memory per call
//! No heap. Stack: `BATCH_GROUP·HIDDEN_BLOCK` floats (8 KiB) of hidden activations plus a
//! few hundred bytes of slice bookkeeping, whatever `n` and the dimensions.
//! `loss_batch_with_workspace` also needs the caller's workspace of
//! [`SimSiamConfig::batch_loss_workspace_len`] floats (`4·d_out·min(n, 4)`).

use crate::config::SimSiamConfig;
use crate::error::{SslError, SslResult, check_finite, check_len};
use crate::head::{DenseLayer, SimSiamHead, mlp2_group, normalize_checked};
use crate::kernels::{Backend, Kernels, Scalar, Simd};

/// Inputs pushed through the weights together by the batch calls (pairs of views count
/// as two). Sets the stack use: `BATCH_GROUP·HIDDEN_BLOCK·4` bytes = 8 KiB.
pub const BATCH_GROUP: usize = 8;

/// Pairs of views per group in the batch loss.
pub(crate) const BATCH_PAIRS: usize = BATCH_GROUP / 2;

const OVERFLOW: SslError = SslError::InvalidParameter {
    name: "n",
    reason: "batch size × dimension overflows usize",
};

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
    n.checked_mul(width).ok_or(OVERFLOW)
}

/// `outs` row `j` = `L2(mlp2(xs row j))` for every row, [`BATCH_GROUP`] rows at a time.
fn batch_mlp2<K: Kernels>(
    hidden: &DenseLayer<'_>,
    output: &DenseLayer<'_>,
    xs: &[f32],
    outs: &mut [f32],
    location: &'static str,
) -> SslResult<()> {
    let mut inputs = xs.chunks_exact(hidden.d_in.max(1));
    let mut outputs = outs.chunks_exact_mut(output.bias.len().max(1));
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
        mlp2_group::<K, BATCH_GROUP>(hidden, output, group_x, group_y);
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
    /// Pairs are taken four at a time (eight inputs); both views of a pair share every
    /// weight load, as in the single two-view loss, so a batch of one pair gives exactly
    /// the single call's result. `workspace` must hold at least
    /// [`SimSiamConfig::batch_loss_workspace_len`]`(n)` = `4·d_out·min(n, 4)` floats.
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
    /// assert_eq!(losses[0], single);
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
        let workspace = workspace.get_mut(..needed).ok_or(too_small)?;
        check_finite(z1s, "z1")?;
        check_finite(z2s, "z2")?;
        if n == 0 {
            return Ok(());
        }
        let [pw1, pw2, qw1, qw2] = self.layers()?;
        // Workspace: `2·min(n, 4)` projections, then as many predictions, each `d_out`,
        // interleaved by view (z1 of pair a, z2 of pair a, z1 of pair b, ...).
        let (projections, predictions) =
            workspace
                .split_at_mut_checked(needed / 2)
                .ok_or(SslError::CapacityTooSmall {
                    needed,
                    capacity: 0,
                })?;
        let pairs = z1s
            .chunks_exact(d_encoder.max(1))
            .zip(z2s.chunks_exact(d_encoder.max(1)))
            .zip(losses.iter_mut());
        let mut pairs = pairs.peekable();
        while pairs.peek().is_some() {
            let mut xs: [&[f32]; BATCH_GROUP] = [&[]; BATCH_GROUP];
            let mut group_losses: [Option<&mut f32>; BATCH_PAIRS] = Default::default();
            let count = xs
                .chunks_exact_mut(2)
                .zip(group_losses.iter_mut())
                .zip(pairs.by_ref())
                .map(|((slots, loss_slot), ((z1, z2), loss))| {
                    if let [a, b] = slots {
                        *a = z1;
                        *b = z2;
                    }
                    *loss_slot = Some(loss);
                })
                .count();
            let inputs = count.saturating_mul(2);
            let xs = xs.get(..inputs).unwrap_or_default();

            let mut zp: [&mut [f32]; BATCH_GROUP] = Default::default();
            zp.iter_mut()
                .zip(projections.chunks_exact_mut(d_out.max(1)))
                .for_each(|(slot, part)| *slot = part);
            let zp = zp.get_mut(..inputs).unwrap_or_default();
            mlp2_group::<K, BATCH_GROUP>(&pw1, &pw2, xs, zp);
            for z in zp.iter_mut() {
                normalize_checked::<K>(z, "projector output")?;
            }

            let mut zp_views: [&[f32]; BATCH_GROUP] = [&[]; BATCH_GROUP];
            zp_views.iter_mut().zip(zp.iter()).for_each(|(v, z)| *v = z);
            let zp_views = zp_views.get(..inputs).unwrap_or_default();
            let mut pp: [&mut [f32]; BATCH_GROUP] = Default::default();
            pp.iter_mut()
                .zip(predictions.chunks_exact_mut(d_out.max(1)))
                .for_each(|(slot, part)| *slot = part);
            let pp = pp.get_mut(..inputs).unwrap_or_default();
            mlp2_group::<K, BATCH_GROUP>(&qw1, &qw2, zp_views, pp);
            for p in pp.iter_mut() {
                normalize_checked::<K>(p, "predictor output")?;
            }

            let groups = zp_views.chunks_exact(2).zip(pp.chunks_exact(2));
            for ((z_pair, p_pair), loss) in groups.zip(group_losses.iter_mut()) {
                if let ([z1p, z2p], [p1, p2], Some(loss)) = (z_pair, p_pair, loss) {
                    **loss = (-K::dot_add(0.0, p1, z2p) + -K::dot_add(0.0, p2, z1p)) * 0.5;
                }
            }
        }
        Ok(())
    }
}
