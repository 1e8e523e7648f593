//! Sizes the model's parts share (a leaf: it imports nothing of the model, so
//! `architecture`, `config` and `batch` can all read it without an import cycle): the
//! batch calls' group, and the lane blocks of the batch path.

use crate::kernels::BATCH_LANES;

/// Inputs pushed through the weights together by the batch calls (pairs of views count
/// as two): the lanes of [`Kernels::matmat_t_add`](crate::kernels::Kernels::matmat_t_add).
pub const BATCH_GROUP: usize = BATCH_LANES;

/// Pairs of views per group in the batch loss.
pub(crate) const BATCH_PAIRS: usize = BATCH_GROUP / 2;

/// Input columns packed (transposed) per step of the lanes path, at most, for heads
/// whose stages are all at most this wide in and hidden.
const PACK_COLUMNS: usize = 128;
/// Hidden units per block of the lanes path, at most (same heads).
const LANES_HIDDEN: usize = 128;
/// Output rows per block of the lanes path, at most (same heads).
const OUTPUT_ROWS: usize = 64;
/// [`PACK_COLUMNS`] for heads with a stage wider than the small blocks.
const WIDE_PACK_COLUMNS: usize = 2048;
/// [`LANES_HIDDEN`] for heads with a stage wider than the small blocks.
const WIDE_LANES_HIDDEN: usize = 2048;
/// [`OUTPUT_ROWS`] for heads with a stage wider than the small blocks.
const WIDE_OUTPUT_ROWS: usize = 256;
/// Floats of slack in front of the blocks, so that they can start on a 64-byte line
/// wherever the workspace starts (each lane row is then one cache line).
const LANES_SLACK: usize = 15;

/// The blocks of the lanes path, in lane rows: `[pack columns, hidden units, output
/// rows]` for a head whose stages are at most `d_in` wide in, `hidden` wide between
/// the two layers of a fused stage (0 when none is fused) and `d_out` wide out. The
/// small blocks (128, 128, 64) cut to the head; the wide ones (2048, 2048, 256) when a
/// stage is wider in or hidden than 128. With the wide blocks a paper-sized head reads
/// each weight row whole (8 KiB) for a group: the weights stream from DRAM, and strips
/// would restart the prefetcher at every strip; the packed inputs serve 256 output rows
/// instead of 64 (BENCHMARKS.md, "Measurements behind design choices").
pub(crate) const fn lane_blocks(d_in: usize, hidden: usize, d_out: usize) -> [usize; 3] {
    let wide = d_in > PACK_COLUMNS || hidden > LANES_HIDDEN;
    let (pack, units, rows) = if wide {
        (WIDE_PACK_COLUMNS, WIDE_LANES_HIDDEN, WIDE_OUTPUT_ROWS)
    } else {
        (PACK_COLUMNS, LANES_HIDDEN, OUTPUT_ROWS)
    };
    [min(d_in, pack), min(hidden, units), min(d_out, rows)]
}

const fn min(a: usize, b: usize) -> usize {
    if a < b { a } else { b }
}

/// Floats of workspace the lanes path needs (see
/// [`Architecture::lanes_len`](crate::model::Architecture::lanes_len)): 16 per lane row
/// of [`lane_blocks`], plus 15 of slack. At most `16·4352 + 15`, so it cannot overflow.
pub(crate) const fn lanes_len(d_in: usize, hidden: usize, d_out: usize) -> usize {
    let [pack, units, rows] = lane_blocks(d_in, hidden, d_out);
    pack.saturating_add(units)
        .saturating_add(rows)
        .saturating_mul(BATCH_LANES)
        .saturating_add(LANES_SLACK)
}
