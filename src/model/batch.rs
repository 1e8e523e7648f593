//! Batch forward passes and batch loss: `n` inputs (or pairs) at once, as matrix × matrix.
//!
//! Inputs are taken [`BATCH_GROUP`] (16) at a time, one per lane of
//! [`Kernels::matmat_t_add`]: the group's inputs are packed transposed in the caller's
//! workspace (the *lane blocks*), and
//! every weight is loaded once per group and broadcast against sixteen inputs (on AVX2,
//! six rows × sixteen inputs per inner loop: 12 FMAs per 8 loads, no horizontal sums).
//! So the weights are read `⌈n / 16⌉` times instead of `n` times, and the work becomes
//! compute-bound where the single calls are bound by memory. A group of one or two inputs
//! takes the pair path of the two-view loss instead ([`Kernels::matvec2_add`]).
//!
//! Each stage of a stack (one layer, or two fused: see `forward`) runs this way; between
//! two stages the group's intermediate vectors live in the caller's workspace.
//!
//! Results equal `n` single calls up to summation order: on the scalar twin bit for bit
//! (every output is one running sum in the reference's order), on the SIMD twin within
//! [`sum_error_bound`](crate::kernels::sum_error_bound) per sum.
//!
//! # Memory per call
//! No heap. Workspace: see each call and
//! [`Architecture::workspace_len`](crate::model::Architecture::workspace_len); groups of
//! three to sixteen inputs (the lanes path) also take their lane blocks from it,
//! [`Architecture::lanes_len`](crate::model::Architecture::lanes_len) floats sized from
//! the head: 14 KiB for the default config, 52 KiB for 256/512/128/64, 272 KiB at most
//! (wide heads such as the paper's). Stack, whatever `n`: no blocks on the lanes path,
//! only slice bookkeeping (groups of sixteen slices: about 1.5 KiB); a group of one or
//! two inputs takes the pair path of the two-view loss, with 2 KiB of hidden blocks
//! (8 KiB for hidden layers wider than 256 units).

use super::architecture::Architecture;
use super::forward::{StackView, Stage, stack_group, stage_pair};
use super::head::{SimSiamHead, Which, finish_output, symmetric_loss};
use super::layout::DenseView;
use super::sizes::{BATCH_GROUP, BATCH_PAIRS, lane_blocks};
use crate::error::{BATCH_OVERFLOW, SslError, SslResult, check_finite, check_len};
use crate::kernels::{BATCH_LANES, Kernels, pieces, pieces_mut};

/// One value per input of a group, in transposed layout.
type Lanes = [f32; BATCH_LANES];

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

/// The blocks of the lanes path, carved from the caller's workspace.
#[derive(Default)]
pub(crate) struct LaneBlocks<'w> {
    /// Input columns, packed transposed.
    xt: &'w mut [Lanes],
    /// Hidden units of a fused stage.
    ht: &'w mut [Lanes],
    /// Output rows.
    yt: &'w mut [Lanes],
}

/// `(head, tail)` of `lanes` with `head` at most `count` long.
fn split_lanes(lanes: &mut [Lanes], count: usize) -> (&mut [Lanes], &mut [Lanes]) {
    let at = count.min(lanes.len());
    lanes.split_at_mut_checked(at).unwrap_or_default()
}

impl<'w> LaneBlocks<'w> {
    /// The blocks of `[pack, hidden, rows]` lane rows from `area` (cut short when it
    /// is), starting at its first 64-byte line.
    fn new(area: &'w mut [f32], [pack, hidden, rows]: [usize; 3]) -> Self {
        let skip = area.as_ptr().addr().wrapping_neg() % 64 / size_of::<f32>();
        let area = area.get_mut(skip..).unwrap_or_default();
        let (lanes, _) = area.as_chunks_mut::<BATCH_LANES>();
        let (xt, rest) = split_lanes(lanes, pack);
        let (ht, rest) = split_lanes(rest, hidden);
        let (yt, _) = split_lanes(rest, rows);
        Self { xt, ht, yt }
    }

    /// The blocks `architecture`'s head needs, from `area`.
    fn of(area: &'w mut [f32], architecture: &Architecture) -> Self {
        let [d_in, hidden, d_out] = architecture.lane_widths();
        Self::new(area, lane_blocks(d_in, hidden, d_out))
    }

    /// Whether every block `stage` uses holds at least one row (always, when sized by
    /// [`Architecture::lanes_len`] for the head; else the stage takes the pair path).
    fn fit(&self, stage: &Stage<'_>) -> bool {
        !self.xt.is_empty()
            && !self.yt.is_empty()
            && (stage.second.is_none() || !self.ht.is_empty())
    }
}

/// Columns `k0..k1` of every input, packed transposed into the front of `xt` (one input
/// per lane): the packed columns (cut short when `xt` is).
fn pack_columns<'x>(xs: &[&[f32]], k0: usize, k1: usize, xt: &'x mut [Lanes]) -> &'x [Lanes] {
    let columns = xt.get_mut(..k1.saturating_sub(k0)).unwrap_or_default();
    for (j, x) in xs.iter().enumerate() {
        let x = x.get(k0..k1).unwrap_or_default();
        for (column, v) in columns.iter_mut().zip(x) {
            if let Some(slot) = column.get_mut(j) {
                *slot = *v;
            }
        }
    }
    columns
}

/// `rows[r][j] += Σ_c W[r, c]·xs[j][c]` for the rows of `w` (`d_in` columns each): the
/// inputs packed transposed into `xt`, `xt.len()` (at least 1) columns at a time.
fn rows_add<K: Kernels>(
    w: &[f32],
    d_in: usize,
    xs: &[&[f32]],
    xt: &mut [Lanes],
    rows: &mut [Lanes],
) {
    let pack = xt.len().max(1);
    let mut k0 = 0_usize;
    while k0 < d_in {
        let k1 = k0.saturating_add(pack).min(d_in);
        let columns = pack_columns(xs, k0, k1, xt);
        K::matmat_t_add(w, d_in, k0, columns, rows);
        k0 = k1;
    }
}

/// For each block of `yt.len()` (at least 1) rows of `w` (`d_in` columns each): moves
/// those rows of every output into `yt` (transposed, one input per lane), lets
/// `accumulate` add the block's sums into them, and moves them back.
fn for_output_blocks(
    w: &[f32],
    d_in: usize,
    outs: &mut [&mut [f32]],
    yt: &mut [Lanes],
    mut accumulate: impl FnMut(&[f32], &mut [Lanes]),
) {
    let block_rows = yt.len().max(1);
    let mut o0 = 0_usize;
    for block in pieces(w, block_rows.saturating_mul(d_in).max(1)) {
        let rows = block.len().checked_div(d_in).unwrap_or(0);
        debug_assert!(
            rows <= yt.len() && rows * d_in == block.len(),
            "ragged output block"
        );
        let o1 = o0.saturating_add(rows);
        let y = yt.get_mut(..rows).unwrap_or_default();
        for (j, out) in outs.iter().enumerate() {
            for (yi, v) in y.iter_mut().zip(out.get(o0..o1).unwrap_or_default()) {
                if let Some(slot) = yi.get_mut(j) {
                    *slot = *v;
                }
            }
        }
        accumulate(block, y);
        for (j, out) in outs.iter_mut().enumerate() {
            for (yi, v) in y.iter().zip(out.get_mut(o0..o1).unwrap_or_default()) {
                if let Some(value) = yi.get(j) {
                    *v = *value;
                }
            }
        }
        o0 = o1;
    }
}

/// `outs[j] = stage(xs[j])` for up to [`BATCH_LANES`] inputs, one per lane, through
/// [`Kernels::matmat_t_add`], in the caller's `blocks` (each at least one row: see
/// [`LaneBlocks::fit`]). A single layer packs the inputs `xt.len()` columns at a time
/// against blocks of `yt.len()` rows. A fused pair makes its hidden layer `ht.len()`
/// units at a time for all inputs (bias, sums, BatchNorm, ReLU per unit) and folds each
/// block into the outputs `yt.len()` rows at a time. Every weight is read once per call
/// and feeds sixteen lanes. Unused lanes carry zeros (finite padding) and are discarded.
///
/// Each output is one running sum from its bias, column after column, block after block:
/// on the scalar twin exactly the single-input path's order. In a frame of its own, so
/// that the pair path's callers keep theirs small.
#[inline(never)]
fn stage_lanes<K: Kernels>(
    stage: &Stage<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
    blocks: &mut LaneBlocks<'_>,
) {
    debug_assert!(
        xs.len() == outs.len() && xs.len() <= BATCH_LANES,
        "group of the wrong size"
    );
    let count = xs.len().min(outs.len()).min(BATCH_LANES);
    let xs = xs.get(..count).unwrap_or_default();
    let outs = outs.get_mut(..count).unwrap_or_default();
    let first = &stage.first;
    let last = stage.second.as_ref().unwrap_or(first);
    for (x, out) in xs.iter().zip(outs.iter_mut()) {
        super::forward::debug_assert_stage(stage, x.len(), out.len());
        last.init(out, 0);
    }
    let LaneBlocks { xt, ht, yt } = blocks;
    if count < BATCH_LANES {
        // The lanes no input fills: zeros, whatever the workspace held (a full group
        // overwrites every lane it reads).
        let used_columns = xt.len().min(first.d_in);
        let used_rows = yt.len().min(last.d_out);
        for block in [
            xt.get_mut(..used_columns).unwrap_or_default(),
            yt.get_mut(..used_rows).unwrap_or_default(),
        ] {
            block.fill([0.0; BATCH_LANES]);
        }
    }
    match &stage.second {
        None => {
            // One layer: output rows in blocks, each summed over all input columns,
            // packed once when they all fit in `xt`.
            if xt.len() >= first.d_in {
                let columns = pack_columns(xs, 0, first.d_in, xt);
                for_output_blocks(first.weights, first.d_in, outs, yt, |block, y| {
                    K::matmat_t_add(block, first.d_in, 0, columns, y);
                });
            } else {
                for_output_blocks(first.weights, first.d_in, outs, yt, |block, y| {
                    rows_add::<K>(block, first.d_in, xs, xt, y);
                });
            }
        }
        Some(second) => {
            let block_rows = ht.len().min(first.d_out).max(1);
            // `block_rows·d_in ≤ d_out·d_in`, which the layout proved fits in `usize`.
            let block_weights = block_rows.saturating_mul(first.d_in).max(1);
            let mut first_unit = 0_usize;
            for w1 in pieces(first.weights, block_weights) {
                let units = w1.len().checked_div(first.d_in).unwrap_or(0);
                debug_assert!(units <= ht.len(), "hidden block overflows its buffer");
                let h = ht.get_mut(..units).unwrap_or_default();
                init_lanes(first, h, first_unit);
                rows_add::<K>(w1, first.d_in, xs, xt, h);
                finish_lanes(first, h, first_unit);
                // The block's units are columns `first_unit..` of the second layer.
                let h = &*h;
                for_output_blocks(second.weights, first.d_out, outs, yt, |block, y| {
                    K::matmat_t_add(block, first.d_out, first_unit, h, y);
                });
                first_unit = first_unit.saturating_add(units);
            }
        }
    }
    last.finish_group(outs, 0);
}

/// Every lane of row `u` starts at unit `first_unit + u`'s bias (or 0).
fn init_lanes(layer: &DenseView<'_>, rows: &mut [Lanes], first_unit: usize) {
    // A running counter, not `zip(first_unit..)`: `RangeFrom` panics on overflow when
    // overflow checks are on (the no-panic proof builds with them).
    let mut unit = first_unit;
    for row in rows.iter_mut() {
        let bias = layer.bias.and_then(|b| b.get(unit)).copied().unwrap_or(0.0);
        *row = [bias; BATCH_LANES];
        unit = unit.saturating_add(1);
    }
}

/// [`DenseView::finish_group`] per row: the BatchNorm and ReLU of unit `first_unit + u` on
/// every lane of row `u`.
fn finish_lanes(layer: &DenseView<'_>, rows: &mut [Lanes], first_unit: usize) {
    let mut unit = first_unit;
    for row in rows.iter_mut() {
        if let Some(batch_norm) = &layer.batch_norm {
            let (alpha, shift) = batch_norm.scale_shift(unit);
            row.iter_mut().for_each(|x| *x = *x * alpha + shift);
        }
        if layer.relu {
            crate::kernels::relu_in_place(row);
        }
        unit = unit.saturating_add(1);
    }
}

/// A group of up to [`BATCH_GROUP`] inputs through one stage: more than two inputs take
/// the lanes path in `blocks`, one or two the pair path (as the single two-view loss).
fn stage_many<K: Kernels>(
    stage: &Stage<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
    blocks: &mut LaneBlocks<'_>,
) {
    if xs.len() <= 2 {
        stage_pair::<K>(stage, xs, outs);
    } else if blocks.fit(stage) {
        stage_lanes::<K>(stage, xs, outs, blocks);
    } else {
        stage_in_pairs::<K>(stage, xs, outs);
    }
}

/// [`stage_many`] when a lane block it needs is empty (never for a workspace sized by the
/// head's lengths; the unit test `inputs_go_in_pairs_without_lane_blocks` forces it): the
/// group through the pair path, two inputs at a time.
#[cold]
#[inline(never)]
fn stage_in_pairs<K: Kernels>(stage: &Stage<'_>, xs: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (x_pairs, x_rest) = xs.as_chunks::<2>();
    let (out_pairs, out_rest) = outs.as_chunks_mut::<2>();
    for (x, out) in x_pairs.iter().zip(out_pairs.iter_mut()) {
        stage_pair::<K>(stage, x, out);
    }
    if !x_rest.is_empty() {
        stage_pair::<K>(stage, x_rest, out_rest);
    }
}

/// [`stack_group`] for up to [`BATCH_GROUP`] inputs through [`stage_many`].
fn stack_many<K: Kernels>(
    stack: &StackView<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
    scratch: &mut [&mut [f32]],
    blocks: &mut LaneBlocks<'_>,
) {
    stack_group::<BATCH_GROUP>(stack, xs, outs, scratch, |stage, xs, outs| {
        stage_many::<K>(stage, xs, outs, blocks);
    });
}

/// `count` slots of `len` floats from the front of `area`, as a group of slices.
fn slots(area: &mut [f32], len: usize, count: usize) -> [&mut [f32]; BATCH_GROUP] {
    let mut group: [&mut [f32]; BATCH_GROUP] = Default::default();
    if len > 0 {
        let mut parts = pieces_mut(area, len);
        for slot in group.iter_mut().take(count) {
            *slot = parts.next().unwrap_or_default();
        }
    }
    group
}

/// `outs` row `j` = `stack(xs row j)`, finished, for every row, [`BATCH_GROUP`] rows
/// at a time; `scratch` holds a group's intermediate vectors, `blocks` the lanes.
fn batch_stack<K: Kernels>(
    stack: &StackView<'_>,
    normalize: bool,
    xs: &[f32],
    outs: &mut [f32],
    scratch: &mut [f32],
    blocks: &mut LaneBlocks<'_>,
    location: &'static str,
) -> SslResult<()> {
    // `pieces`, not `chunks_exact`: `zip` asks for the length, a division by the chunk
    // size that keeps a panic path where it is not inlined (the no-panic check at
    // opt-level "z"). The lengths are whole multiples, checked by the callers.
    let mut inputs = pieces(xs, stack.d_in());
    let mut outputs = pieces_mut(outs, stack.last.d_out());
    let inter = stack.intermediate_len();
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
        let mut group_s = slots(scratch, inter, count);
        stack_many::<K>(
            stack,
            group_x,
            group_y,
            group_s.get_mut(..count).unwrap_or_default(),
            blocks,
        );
        for y in group_y.iter_mut() {
            finish_output::<K>(y, normalize, location)?;
        }
    }
}

/// `workspace[..needed]` or `CapacityTooSmall`.
fn take_workspace(workspace: &mut [f32], needed: usize) -> SslResult<&mut [f32]> {
    let capacity = workspace.len();
    workspace
        .get_mut(..needed)
        .ok_or(SslError::CapacityTooSmall { needed, capacity })
}

impl<S: AsRef<[f32]>, K: Kernels> SimSiamHead<S, K> {
    /// Projects `n` encoder outputs at once: row `j` of `out` is
    /// [`project_into`](Self::project_into) of row `j` of `zs`.
    ///
    /// With an [encoder](crate::model::Architecture::with_encoder), `zs` is `n` network
    /// inputs (`n × d_input`), encoded as one batch first (eval mode), and `workspace`
    /// must hold
    /// [`Architecture::workspace_len`](crate::model::Architecture::workspace_len)`(n)`
    /// (linear in `n`); the input's location is `"x"`. The same holds for
    /// [`loss_batch_into`](Self::loss_batch_into) (`"x1"`, `"x2"`).
    ///
    /// `zs` is `n × d_encoder` row-major (`n = zs.len() / d_encoder`, possibly 0) and `out`
    /// is `n × d_out`. The weights are read once per [`BATCH_GROUP`] inputs. `workspace`
    /// holds the intermediate vectors of a group, `min(n, 16)` times the projector's
    /// (none for stacks of up to two layers, as the reference's), and for `n > 2` the
    /// lane blocks: `min(n, 16)·intermediate +`
    /// [`Architecture::lanes_len`](crate::model::Architecture::lanes_len) floats (so
    /// `&mut []` for `n ≤ 2` on the reference's head;
    /// [`Architecture::workspace_len`](crate::model::Architecture::workspace_len)`(n)`
    /// always suffices). Stack: a few KiB (slice bookkeeping; a group of one or two
    /// inputs takes the pair path's 2 KiB of hidden blocks, 8 KiB for hidden layers wider
    /// than 256). On error, `out` may be partly written.
    ///
    /// # Errors
    /// `DimensionMismatch` when `zs.len()` is not a multiple of `d_encoder`, then when
    /// `out.len() != n·d_out`; `CapacityTooSmall` for a short workspace;
    /// `NonFinite { location: "z" }` for a NaN/infinite input,
    /// `NonFinite { location: "projector output" }` when a result overflows.
    ///
    /// # Examples
    /// ```
    /// use simsiam::{LcgRng, SimSiamConfig, SimSiamHead};
    /// let config = SimSiamConfig::default();
    /// let head = SimSiamHead::<heapless::Vec<f32, 16_640>>::from_seed(config, &mut LcgRng::new(0))?;
    /// let zs = [0.5_f32; 3 * 64];
    /// let mut out = [0.0_f32; 3 * 32];
    /// let mut workspace = [0.0_f32; 16 * (64 + 128 + 32) + 15];
    /// assert_eq!(head.architecture().lanes_len(), workspace.len());
    /// head.project_batch_into(&zs, &mut out, &mut workspace)?;
    /// let mut single = [0.0_f32; 32];
    /// head.project_into(&zs[..64], &mut single, &mut [])?;
    /// assert!(out[..32].iter().zip(&single).all(|(a, b)| (a - b).abs() < 1e-5));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn project_batch_into(
        &self,
        zs: &[f32],
        out: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        if let Some(encoder) = self.architecture().active_encoder() {
            let n = super::head::rows_of(zs.len(), self.d_input())?;
            check_len(n.saturating_mul(self.d_out()), out.len())?;
            let (head, [features, _], work) = self.split_workspace(n, workspace)?;
            check_finite(zs, "x")?;
            self.encode_unchecked(encoder, n, zs, features, work)?;
            return self.project_features_batch(features, out, head);
        }
        self.project_features_batch(zs, out, workspace)
    }

    /// [`project_batch_into`](Self::project_batch_into) on encoder outputs.
    #[inline]
    fn project_features_batch(
        &self,
        zs: &[f32],
        out: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        let Some(projector) = &self.stack(Which::Projector) else {
            return Err(self.storage_changed());
        };
        let normalize = self.architecture().normalize_projection;
        batch_forward::<K>(
            self.architecture(),
            projector,
            normalize,
            zs,
            out,
            workspace,
            ["z", "projector output"],
        )
    }

    /// Applies the predictor to `n` projections at once: row `j` of `out` is
    /// [`predict_into`](Self::predict_into) of row `j` of `ps`. Both are `n × d_out`
    /// row-major. `workspace`: as [`project_batch_into`](Self::project_batch_into), for
    /// the predictor (`min(n, 16)·intermediate`, plus
    /// [`Architecture::lanes_len`](crate::model::Architecture::lanes_len) for `n > 2`).
    /// On error, `out` may be partly written.
    ///
    /// # Errors
    /// `DimensionMismatch` when `ps.len()` is not a multiple of `d_out`, then when
    /// `out.len() != ps.len()`; `CapacityTooSmall`; `NonFinite { location: "p" }` or
    /// `{ location: "predictor output" }`.
    pub fn predict_batch_into(
        &self,
        ps: &[f32],
        out: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        let Some(predictor) = &self.stack(Which::Predictor) else {
            return Err(self.storage_changed());
        };
        let normalize = self.architecture().normalize_prediction;
        batch_forward::<K>(
            self.architecture(),
            predictor,
            normalize,
            ps,
            out,
            workspace,
            ["p", "predictor output"],
        )
    }

    /// The SimSiam loss of `n = losses.len()` pairs of views at once: `losses[j]` is
    /// [`loss`](Self::loss) of row `j` of `z1s` and of `z2s` (both `n × d_encoder`
    /// row-major).
    ///
    /// Pairs are taken eight at a time (sixteen inputs, one per lane); a batch of one pair
    /// takes the two-view path and gives exactly the single call's result. `workspace`
    /// must hold at least
    /// [`Architecture::workspace_len`](crate::model::Architecture::workspace_len)`(n)` =
    /// `min(n, 8)·(4·d_out + 2·intermediate)` floats, plus the lane blocks
    /// ([`Architecture::lanes_len`](crate::model::Architecture::lanes_len)) for `n ≥ 2`
    /// (for the reference's head
    /// [`SimSiamConfig::batch_loss_workspace_len`](crate::SimSiamConfig::batch_loss_workspace_len),
    /// a `const fn`). Stack: a few KiB, as [`project_batch_into`](Self::project_batch_into).
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
    /// // Two pairs: four outputs each, then the lane blocks (pack 64, hidden 128, rows 32).
    /// let mut workspace = [0.0_f32; 4 * 32 * 2 + 16 * (64 + 128 + 32) + 15];
    /// assert_eq!(head.architecture().workspace_len(2)?, workspace.len());
    /// assert_eq!(config.batch_loss_workspace_len(2)?, workspace.len());
    /// head.loss_batch_into(&z1s, &z2s, &mut losses, &mut workspace)?;
    /// let single = head.loss(&z1s[..64], &z2s[..64], &mut workspace)?;
    /// assert!((losses[0] - single).abs() < 1e-5);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn loss_batch_into(
        &self,
        z1s: &[f32],
        z2s: &[f32],
        losses: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        if let Some(encoder) = self.architecture().active_encoder() {
            let n = losses.len();
            let input_len = area(n, self.d_input())?;
            check_len(input_len, z1s.len())?;
            check_len(input_len, z2s.len())?;
            let (head, [f1, f2], work) = self.split_workspace(n, workspace)?;
            check_finite(z1s, "x1")?;
            check_finite(z2s, "x2")?;
            self.encode_unchecked(encoder, n, z1s, f1, work)?;
            self.encode_unchecked(encoder, n, z2s, f2, work)?;
            return self.loss_features_batch(f1, f2, losses, head);
        }
        self.loss_features_batch(z1s, z2s, losses, workspace)
    }

    /// [`loss_batch_into`](Self::loss_batch_into) on encoder outputs.
    #[inline]
    fn loss_features_batch(
        &self,
        z1s: &[f32],
        z2s: &[f32],
        losses: &mut [f32],
        workspace: &mut [f32],
    ) -> SslResult<()> {
        let architecture = *self.architecture();
        let (d_encoder, d_out) = (architecture.d_encoder(), architecture.d_out());
        let n = losses.len();
        let input_len = area(n, d_encoder)?;
        check_len(input_len, z1s.len())?;
        check_len(input_len, z2s.len())?;
        let needed = architecture.head_workspace_len(n)?;
        let workspace = take_workspace(workspace, needed)?;
        check_finite(z1s, "z1")?;
        check_finite(z2s, "z2")?;
        if n == 0 {
            return Ok(());
        }
        let (Some(projector), Some(predictor)) =
            (&self.stack(Which::Projector), &self.stack(Which::Predictor))
        else {
            return Err(self.storage_changed());
        };
        let inputs = n.min(BATCH_PAIRS).saturating_mul(2);
        // Workspace: the group's projections, then its predictions (each `d_out`,
        // interleaved by view: z1 of pair a, z2 of pair a, z1 of pair b, ...), then its
        // intermediate vectors, then the lane blocks (for two pairs or more). `needed`
        // is exactly their sum, so no split fails.
        let too_small = SslError::CapacityTooSmall {
            needed,
            capacity: workspace.len(),
        };
        let outputs_len = inputs.saturating_mul(d_out);
        let (projections, rest) = workspace
            .split_at_mut_checked(outputs_len)
            .ok_or(too_small)?;
        let (predictions, rest) = rest.split_at_mut_checked(outputs_len).ok_or(too_small)?;
        let scratch_len = inputs.saturating_mul(architecture.intermediate_len());
        let (scratch, lanes) = rest.split_at_mut_checked(scratch_len).ok_or(too_small)?;
        let mut blocks = LaneBlocks::of(lanes, &architecture);
        // Rows pulled with `next()`, not zipped: see the note on `slots`. `z1s` and `z2s`
        // hold exactly `n = losses.len()` rows (checked above), so every `next()` is
        // `Some`.
        let mut z1_rows = pieces(z1s, d_encoder.max(1));
        let mut z2_rows = pieces(z2s, d_encoder.max(1));
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

            let mut zp = slots(projections, d_out, inputs);
            let zp = zp.get_mut(..inputs).unwrap_or_default();
            debug_assert!(
                zp.iter().all(|z| z.len() == d_out),
                "workspace slots too few"
            );
            let mut group_s = slots(scratch, projector.intermediate_len(), inputs);
            let group_s = group_s.get_mut(..inputs).unwrap_or_default();
            stack_many::<K>(projector, xs, zp, group_s, &mut blocks);
            let normalize = architecture.normalize_projection;
            for z in zp.iter_mut() {
                finish_output::<K>(z, normalize, "projector output")?;
            }

            let mut zp_views: [&[f32]; BATCH_GROUP] = [&[]; BATCH_GROUP];
            zp_views.iter_mut().zip(zp.iter()).for_each(|(v, z)| *v = z);
            let zp_views = zp_views.get(..inputs).unwrap_or_default();
            let mut pp = slots(predictions, d_out, inputs);
            let pp = pp.get_mut(..inputs).unwrap_or_default();
            debug_assert!(
                pp.iter().all(|p| p.len() == d_out),
                "workspace slots too few"
            );
            let mut group_s = slots(scratch, predictor.intermediate_len(), inputs);
            let group_s = group_s.get_mut(..inputs).unwrap_or_default();
            stack_many::<K>(predictor, zp_views, pp, group_s, &mut blocks);
            let normalize = architecture.normalize_prediction;
            for p in pp.iter_mut() {
                finish_output::<K>(p, normalize, "predictor output")?;
            }

            // `as_chunks_mut`, not `chunks_exact_mut(2)`: no chunk-size division for
            // `Zip::new`. The loss normalises a copy-free pair of views in place, so the
            // projections are taken again as mutable slots.
            let mut zp = slots(projections, d_out, inputs);
            let zp = zp.get_mut(..inputs).unwrap_or_default();
            let ((z_pairs, _), (p_pairs, _)) = (zp.as_chunks_mut::<2>(), pp.as_chunks_mut::<2>());
            let groups = z_pairs.iter_mut().zip(p_pairs.iter_mut());
            for ((z_pair, p_pair), loss) in groups.zip(group_losses.iter_mut()) {
                if let ([z1p, z2p], [p1, p2], Some(loss)) = (z_pair, p_pair, loss) {
                    **loss = symmetric_loss::<K>(
                        &architecture,
                        [&mut **z1p, &mut **z2p, &mut **p1, &mut **p2],
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The shared body of the batch forward calls.
fn batch_forward<K: Kernels>(
    architecture: &Architecture,
    stack: &StackView<'_>,
    normalize: bool,
    xs: &[f32],
    out: &mut [f32],
    workspace: &mut [f32],
    [input, output]: [&'static str; 2],
) -> SslResult<()> {
    let n = row_count(xs.len(), stack.d_in())?;
    check_len(area(n, stack.last.d_out())?, out.len())?;
    let needed = batch_forward_len(architecture, stack.intermediate_len(), n)?;
    let workspace = take_workspace(workspace, needed)?;
    check_finite(xs, input)?;
    let scratch_len = n.min(BATCH_GROUP).saturating_mul(stack.intermediate_len());
    let (scratch, lanes) = workspace
        .split_at_mut_checked(scratch_len)
        .unwrap_or_default();
    let mut blocks = LaneBlocks::of(lanes, architecture);
    batch_stack::<K>(stack, normalize, xs, out, scratch, &mut blocks, output)
}

/// The workspace of a batch forward call on `n` inputs through a stack with
/// `intermediate`-long vectors between its stages: `min(n, 16)·intermediate`, plus
/// [`Architecture::lanes_len`] when `n > 2`.
fn batch_forward_len(
    architecture: &Architecture,
    intermediate: usize,
    n: usize,
) -> SslResult<usize> {
    let lanes = if n > 2 { architecture.lanes_len() } else { 0 };
    area(n.min(BATCH_GROUP), intermediate)?
        .checked_add(lanes)
        .ok_or(BATCH_OVERFLOW)
}

#[cfg(test)]
mod tests {
    use super::{BATCH_LANES, DenseView, LaneBlocks, Stage, lane_blocks, stage_many, stage_pair};
    use crate::kernels::Scalar;
    use crate::model::sizes::lanes_len;

    /// Five inputs through a fused stage (7 → 9, ReLU → 6) with no lane blocks take the
    /// pair path two at a time: the scalar twin's outputs, bit for bit, are those of each
    /// input alone and those of the lanes path.
    #[test]
    fn inputs_go_in_pairs_without_lane_blocks() {
        const INPUTS: usize = 5;
        let value = |i: usize| ((i * 37 % 23) as f32 - 11.0) / 8.0;
        let params: [f32; 9 * 7 + 9 + 6 * 9 + 6] = core::array::from_fn(value);
        let (w1, rest) = params.split_at(9 * 7);
        let (b1, rest) = rest.split_at(9);
        let (w2, b2) = rest.split_at(6 * 9);
        let layer = |weights, d_in, d_out, bias, relu| DenseView {
            weights,
            d_in,
            d_out,
            bias: Some(bias),
            batch_norm: None,
            relu,
        };
        let stage = Stage {
            first: layer(w1, 7, 9, b1, true),
            second: Some(layer(w2, 9, 6, b2, false)),
        };
        let inputs: [[f32; 7]; INPUTS] =
            core::array::from_fn(|j| core::array::from_fn(|c| value(100 + 7 * j + c)));
        let xs = inputs.each_ref().map(|x| &x[..]);

        let mut alone = [[0.0_f32; 6]; INPUTS];
        for (x, out) in xs.iter().zip(alone.iter_mut()) {
            stage_pair::<Scalar>(&stage, &[x], &mut [&mut out[..]]);
        }
        let mut in_pairs = [[f32::NAN; 6]; INPUTS];
        let mut outs = in_pairs.each_mut().map(|o| &mut o[..]);
        let mut no_blocks = LaneBlocks::new(&mut [], lane_blocks(7, 9, 6));
        assert!(!no_blocks.fit(&stage));
        stage_many::<Scalar>(&stage, &xs, &mut outs, &mut no_blocks);
        assert_eq!(in_pairs, alone);

        let mut area = [0.0_f32; lanes_len(7, 9, 6)];
        let mut blocks = LaneBlocks::new(&mut area, lane_blocks(7, 9, 6));
        assert!(blocks.fit(&stage));
        let mut in_lanes = [[f32::NAN; 6]; INPUTS];
        let mut outs = in_lanes.each_mut().map(|o| &mut o[..]);
        stage_many::<Scalar>(&stage, &xs, &mut outs, &mut blocks);
        assert_eq!(in_lanes, alone);
    }

    /// A workspace of exactly `lanes_len` floats gives every block its full size, the
    /// first starting on a 64-byte line, wherever the workspace starts.
    #[test]
    fn lane_blocks_fit_exactly_at_every_start() {
        for [d_in, hidden, d_out] in [[64, 128, 32], [256, 512, 64], [2048, 2048, 2048], [3, 0, 5]]
        {
            let want = lane_blocks(d_in, hidden, d_out);
            let len = lanes_len(d_in, hidden, d_out);
            // Room for any start within a 64-byte line, then the exact length from it.
            let mut backing = [0.0_f32; 16 * 4352 + 15 + BATCH_LANES];
            for start in 0..BATCH_LANES {
                let area = &mut backing[start..start + len];
                let blocks = LaneBlocks::new(area, want);
                assert_eq!(
                    [blocks.xt.len(), blocks.ht.len(), blocks.yt.len()],
                    want,
                    "{d_in}/{hidden}/{d_out} from float {start}"
                );
                assert_eq!(blocks.xt.as_ptr().addr() % 64, 0, "xt not on a line");
            }
        }
    }
}
