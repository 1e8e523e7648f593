//! The forward pass of a stack of layers, for one input, the two views of the loss, or a
//! small group (the batch calls' pair path), generic over the kernel twin.
//!
//! A stack runs as at most two *stages*. A stage is one layer, or two fused: the first
//! layer's output is made [`HIDDEN_BLOCK`] units at a time on the stack and folded into
//! the second layer's sums at once, so it is never stored whole and the weights are
//! read once per call. Stacks of two layers are one fused stage (no workspace); three
//! layers are a single layer, then a fused pair; four are two fused pairs. Between two
//! stages the intermediate vector lives in the caller's workspace.

use super::architecture::Layer;
use super::layout::{DenseView, LayerOffsets};
use crate::kernels::{Kernels, SumEnds, matvec_layer_group, pieces};

/// Hidden units computed per block on the stack: the hidden vector of a fused stage is
/// never stored whole, so a single forward pass needs `HIDDEN_BLOCK·4` bytes (1 KiB) of
/// stack whatever the dimensions.
pub const HIDDEN_BLOCK: usize = 256;

/// Hidden units per block of the two-input path for wide hidden layers (more than
/// [`HIDDEN_BLOCK`] units): the second layer reads its weights in strips of this many
/// columns, one strip per row: at the paper's dimensions the weights stream from DRAM, and
/// longer strips keep the hardware prefetcher running (BENCHMARKS.md, "Measurements
/// behind design choices").
const WIDE_HIDDEN_BLOCK: usize = 1024;

/// One layer, or two fused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage<'a> {
    pub(crate) first: DenseView<'a>,
    pub(crate) second: Option<DenseView<'a>>,
}

impl Stage<'_> {
    /// The stage's output width.
    pub(crate) fn d_out(&self) -> usize {
        self.second.as_ref().unwrap_or(&self.first).d_out
    }
}

/// A stack viewed in the parameters, as its stages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StackView<'a> {
    /// The first stage, present for stacks of three or four layers.
    pub(crate) leading: Option<Stage<'a>>,
    /// The stage that writes the stack's output.
    pub(crate) last: Stage<'a>,
}

impl<'a> StackView<'a> {
    /// Sets the stages of a stack of `count` layers (one to
    /// [`MAX_STACK_LAYERS`](super::architecture::MAX_STACK_LAYERS), chained) from its
    /// layers and their offsets in `params`, in order, each view set in its place
    /// ([`DenseView::set`]); `false` for another count or a missing or short layer (never
    /// for a validated head). Set in place rather than built as values and moved, which
    /// copied them several times a call (BENCHMARKS.md, "Measurements behind design
    /// choices").
    pub(crate) fn fill<'l>(
        &mut self,
        count: usize,
        mut layers: impl Iterator<Item = (&'l Layer, &'l LayerOffsets)>,
        params: &'a [f32],
    ) -> bool {
        let mut set = |view: &mut DenseView<'a>| {
            layers
                .next()
                .is_some_and(|(layer, offsets)| view.set(layer, offsets, params))
        };
        let leading_set = match count {
            1 | 2 => {
                self.leading = None;
                true
            }
            3 | 4 => {
                let leading = self.leading.insert(Stage {
                    first: DenseView::EMPTY,
                    second: None,
                });
                set(&mut leading.first)
                    && (count == 3 || set(leading.second.insert(DenseView::EMPTY)))
            }
            _ => false,
        };
        let last = &mut self.last;
        leading_set
            && set(&mut last.first)
            && (count == 1 || set(last.second.insert(DenseView::EMPTY)))
    }

    /// The stack's input width.
    pub(crate) fn d_in(&self) -> usize {
        self.leading.unwrap_or(self.last).first.d_in
    }

    /// The width of the vector between the stages (0 for a single stage): the
    /// workspace each input needs.
    pub(crate) fn intermediate_len(&self) -> usize {
        self.leading.map_or(0, |stage| stage.d_out())
    }
}

/// Debug builds check the shapes a validated head guarantees, so that a layout bug in
/// the model fails the tests instead of returning a plausible wrong `Ok` (the kernels cut
/// mismatched slices to their common prefix). Release builds compile it away and keep
/// the no-panic proof.
#[inline]
pub(crate) fn debug_assert_stage(stage: &Stage<'_>, x_len: usize, out_len: usize) {
    debug_assert_eq!(
        x_len, stage.first.d_in,
        "input length is not the stage's d_in"
    );
    debug_assert_eq!(
        out_len,
        stage.d_out(),
        "output length is not the stage's d_out"
    );
    for layer in core::iter::once(&stage.first).chain(stage.second.as_ref()) {
        debug_assert_eq!(
            Some(layer.weights.len()),
            layer.d_out.checked_mul(layer.d_in),
            "weights are not d_out × d_in"
        );
    }
    if let Some(second) = &stage.second {
        debug_assert_eq!(second.d_in, stage.first.d_out, "layers do not chain");
    }
}

/// `out = stage(x)` for one input. A fused stage makes its hidden vector
/// [`HIDDEN_BLOCK`] units at a time (1 KiB of stack). The scalar twin adds in exactly
/// the reference's order (bias first, then left to right).
pub(crate) fn stage_into<K: Kernels>(stage: &Stage<'_>, x: &[f32], out: &mut [f32]) {
    let mut hidden = [[0.0; HIDDEN_BLOCK]; 1];
    stage_group::<K, 1, HIDDEN_BLOCK>(stage, &[x], &mut [out], &mut hidden);
}

/// `outs[j] = stack(xs[j])` for a group of up to `G` inputs, each stage run by `stage`,
/// the intermediate vectors in `scratch` (one per input,
/// [`StackView::intermediate_len`] long; unused for a single stage).
pub(crate) fn stack_group<const G: usize>(
    stack: &StackView<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
    scratch: &mut [&mut [f32]],
    mut stage: impl FnMut(&Stage<'_>, &[&[f32]], &mut [&mut [f32]]),
) {
    match &stack.leading {
        None => stage(&stack.last, xs, outs),
        Some(leading) => {
            let count = xs.len().min(scratch.len()).min(G);
            let scratch = scratch.get_mut(..count).unwrap_or_default();
            stage(leading, xs.get(..count).unwrap_or_default(), scratch);
            let mut views: [&[f32]; G] = [&[]; G];
            views
                .iter_mut()
                .zip(scratch.iter())
                .for_each(|(v, s)| *v = s);
            let views = views.get(..count).unwrap_or_default();
            stage(&stack.last, views, outs);
        }
    }
}

/// [`stack_group`] for one or two inputs through [`stage_pair_in`] (the two-view loss),
/// the hidden blocks in `hidden`.
pub(crate) fn stack_pair<K: Kernels>(
    stack: &StackView<'_>,
    (xs, outs): (&[&[f32]], &mut [&mut [f32]]),
    scratch: &mut [&mut [f32]],
    hidden: &mut PairHidden,
) {
    stack_group::<2>(stack, xs, outs, scratch, |stage, xs, outs| {
        stage_pair_in::<K>(stage, xs, outs, hidden);
    });
}

/// `out = stack(x)` for one input, the intermediate vector in `scratch`.
pub(crate) fn stack_into<K: Kernels>(
    stack: &StackView<'_>,
    x: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) {
    match &stack.leading {
        None => stage_into::<K>(&stack.last, x, out),
        Some(leading) => {
            stage_into::<K>(leading, x, scratch);
            stage_into::<K>(&stack.last, scratch, out);
        }
    }
}

/// The hidden blocks of the two-input path ([`stage_pair_in`]): 2 KiB, made once by a
/// caller that runs several stages (a `loss` zeroes it once instead of once per stack:
/// 800 instructions on the Cortex-M4F).
pub(crate) type PairHidden = [[f32; HIDDEN_BLOCK]; 2];

/// Two inputs through one stage ([`stage_group`]), with hidden blocks of its own.
pub(crate) fn stage_pair<K: Kernels>(stage: &Stage<'_>, xs: &[&[f32]], outs: &mut [&mut [f32]]) {
    stage_pair_in::<K>(stage, xs, outs, &mut [[0.0; HIDDEN_BLOCK]; 2]);
}

/// Two inputs through one stage ([`stage_group`]), with the hidden blocks in `hidden`
/// ([`HIDDEN_BLOCK`] units) or, for hidden layers wider than that, [`WIDE_HIDDEN_BLOCK`]
/// units (8 KiB, in a frame of its own so that narrow heads never reserve it).
pub(crate) fn stage_pair_in<K: Kernels>(
    stage: &Stage<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
    hidden: &mut PairHidden,
) {
    if stage.second.is_some() && stage.first.d_out > HIDDEN_BLOCK {
        stage_pair_wide::<K>(stage, xs, outs);
    } else {
        stage_group::<K, 2, HIDDEN_BLOCK>(stage, xs, outs, hidden);
    }
}

#[inline(never)]
fn stage_pair_wide<K: Kernels>(stage: &Stage<'_>, xs: &[&[f32]], outs: &mut [&mut [f32]]) {
    let mut hidden = [[0.0; WIDE_HIDDEN_BLOCK]; 2];
    stage_group::<K, 2, WIDE_HIDDEN_BLOCK>(stage, xs, outs, &mut hidden);
}

/// [`stage_into`] for one or two inputs at once (`G` is 1 or 2), sharing every weight
/// load between them. A fused stage makes its hidden layer `B` units at a time for all
/// inputs (in `hidden_blocks`), then folds it into the outputs, so each weight is
/// read from memory once per call. Inputs beyond `G` (or beyond the shorter of `xs`,
/// `outs`) are ignored.
///
/// The layers' biases are the start values of their sums and a ReLU that follows the
/// sums directly is applied as the kernel stores them ([`DenseView::sum_ends`]); a
/// BatchNorm and the ReLU after it run over the finished block. Every output is summed
/// in the same order whatever `G`: on the scalar twin the reference's order, bit for bit.
pub(crate) fn stage_group<K: Kernels, const G: usize, const B: usize>(
    stage: &Stage<'_>,
    xs: &[&[f32]],
    outs: &mut [&mut [f32]],
    hidden_blocks: &mut [[f32; B]; G],
) {
    const { assert!(G == 1 || G == 2, "stage_group runs one or two inputs") };
    debug_assert!(
        xs.len() == outs.len() && xs.len() <= G,
        "group of the wrong size"
    );
    let count = xs.len().min(outs.len()).min(G);
    let xs = xs.get(..count).unwrap_or_default();
    let outs = outs.get_mut(..count).unwrap_or_default();
    let first = &stage.first;
    for (x, out) in xs.iter().zip(outs.iter()) {
        debug_assert_stage(stage, x.len(), out.len());
    }
    let out_len = outs.iter().map(|out| out.len()).min().unwrap_or(0);
    let Some(second) = &stage.second else {
        matvec_layer_group::<K>(
            first.weights,
            first.d_in,
            0,
            xs,
            (first.sum_ends(0, out_len), outs),
        );
        first.finish_fused(outs, 0);
        return;
    };
    let block_rows = B.min(first.d_out).max(1);
    // `block_rows·d_in ≤ d_out·d_in`, which the layout proved fits in `usize`.
    let block_weights = block_rows.saturating_mul(first.d_in).max(1);
    // The output sums start at the second layer's bias with the first hidden block and
    // continue from there.
    let mut out_ends = SumEnds {
        start: second.sum_start(0, out_len),
        relu: false,
    };
    let mut first_unit = 0_usize;
    for w1 in pieces(first.weights, block_weights) {
        let units = w1.len().checked_div(first.d_in).unwrap_or(0);
        debug_assert!(units <= B, "hidden block overflows its buffer");
        let mut hs = hidden_blocks
            .each_mut()
            .map(|h| h.get_mut(..units).unwrap_or_default());
        let hs = hs.get_mut(..count).unwrap_or_default();
        let hidden_ends = first.sum_ends(first_unit, units);
        matvec_layer_group::<K>(w1, first.d_in, 0, xs, (hidden_ends, hs));
        first.finish_fused(hs, first_unit);
        let mut views: [&[f32]; G] = [&[]; G];
        views.iter_mut().zip(hs.iter()).for_each(|(v, h)| *v = h);
        let views = views.get(..count).unwrap_or_default();
        matvec_layer_group::<K>(
            second.weights,
            first.d_out,
            first_unit,
            views,
            (out_ends, outs),
        );
        out_ends = SumEnds::ACCUMULATE;
        first_unit = first_unit.saturating_add(units);
    }
    if first_unit == 0 {
        // No hidden block ran (never for a validated head): the outputs still start at
        // the bias.
        outs.iter_mut().for_each(|out| second.init(out, 0));
    }
    second.finish_group(outs, 0);
}
