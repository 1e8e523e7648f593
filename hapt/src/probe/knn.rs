//! k-nearest-neighbour classification, as scikit-learn's `KNeighborsClassifier`.

use wide::f32x8;

use super::{ProbeError, check_features, classes_of};

/// Test rows handled together, so each training row is read once per block.
const BLOCK: usize = 4;

/// `Σ (aᵢ − bᵢ)²` of `BLOCK` rows `a` against one row `b`, all in `f32x8` lanes (padded
/// with zeros alike), in `f32` lane by lane, then totalled across the lanes in `f64`.
fn squared_distances(a: [&[f32x8]; BLOCK], b: &[f32x8]) -> [f64; BLOCK] {
    let mut acc = [f32x8::ZERO; BLOCK];
    let [a0, a1, a2, a3] = a;
    for ((((b, a0), a1), a2), a3) in b.iter().zip(a0).zip(a1).zip(a2).zip(a3) {
        let d = [*a0 - *b, *a1 - *b, *a2 - *b, *a3 - *b];
        for (acc, d) in acc.iter_mut().zip(d) {
            *acc += d * d;
        }
    }
    acc.map(|v| v.to_array().iter().map(|&x| f64::from(x)).sum())
}

/// The rows of `x` (`dim` wide) in `f32x8` lanes, each padded with zeros to `chunks` lanes.
fn pack(x: &[f32], dim: usize, chunks: usize) -> Vec<f32x8> {
    let mut out = Vec::with_capacity(x.len() / dim.max(1) * chunks);
    for row in x.chunks_exact(dim.max(1)) {
        for v in row.chunks(8) {
            let mut lanes = [0.0; 8];
            lanes.iter_mut().zip(v).for_each(|(l, &v)| *l = v);
            out.push(f32x8::from(lanes));
        }
    }
    out
}

/// Inserts `(distance, index)` into `best`, kept sorted by distance and then index (a new
/// row has a larger index than every row already there, so it goes after equal distances).
fn insert(best: &mut Vec<(f64, usize)>, k: usize, candidate: (f64, usize)) {
    if best.len() == k && best.last().is_some_and(|last| last.0 <= candidate.0) {
        return;
    }
    let at = best.partition_point(|b| b.0 <= candidate.0);
    best.insert(at, candidate);
    best.truncate(k);
}

/// The class of each test row by a majority vote of its `k` nearest training rows.
///
/// Distances are Euclidean (squared differences summed in `f32`, 8 partial sums, totalled
/// in `f64`). Among training rows at equal distance the one of smaller index is nearer; among
/// classes with equal votes the smallest label wins (scikit-learn's `mode`). `train_x` is
/// `n × dim`, `test_x` is `m × dim`, row-major. Time `O(n·m·dim)`; memory `O(m + k)` beside
/// the output and a copy of both matrices in lanes of 8.
///
/// # Errors
/// [`ProbeError::ZeroDimension`], [`ProbeError::ShapeMismatch`], [`ProbeError::NonFinite`];
/// [`ProbeError::TooFewNeighbours`] if `k` is 0 or more than `n`.
///
/// # Examples
/// ```
/// use simsiam_hapt::probe::knn_predict;
/// let train = [0.0, 1.0, 10.0];
/// assert_eq!(knn_predict(&train, &[1, 1, 2], &[9.0, 2.0], 1, 1)?, vec![2, 1]);
/// // two votes for 1 against one for 2
/// assert_eq!(knn_predict(&train, &[1, 1, 2], &[9.0], 1, 3)?, vec![1]);
/// # Ok::<(), simsiam_hapt::probe::ProbeError>(())
/// ```
pub fn knn_predict(
    train_x: &[f32],
    train_y: &[i8],
    test_x: &[f32],
    dim: usize,
    k: usize,
) -> Result<Vec<i8>, ProbeError> {
    let n = check_features(train_x, dim, train_y.len())?;
    check_features(test_x, dim, test_x.len() / dim)?;
    if k == 0 || k > n {
        return Err(ProbeError::TooFewNeighbours { k, available: n });
    }
    let classes = classes_of(train_y);
    let mut votes = vec![0_usize; classes.len()];
    let mut best: Vec<Vec<(f64, usize)>> = (0..BLOCK).map(|_| Vec::with_capacity(k + 1)).collect();
    let mut out = Vec::with_capacity(test_x.len() / dim);
    let chunks = dim.div_ceil(8);
    let train = pack(train_x, dim, chunks);
    let test = pack(test_x, dim, chunks);
    let rows: Vec<&[f32x8]> = test.chunks_exact(chunks).collect();
    for block in rows.chunks(BLOCK) {
        best.iter_mut().for_each(Vec::clear);
        // a short last block repeats its first row; the repeats are not output
        let first = block.first().copied().unwrap_or(&[]);
        let mut group = [first; BLOCK];
        group.iter_mut().zip(block).for_each(|(g, row)| *g = row);
        for (index, train) in train.chunks_exact(chunks).enumerate() {
            let distances = squared_distances(group, train);
            for (best, &distance) in best.iter_mut().zip(&distances) {
                insert(best, k, (distance, index));
            }
        }
        for best in best.iter().take(block.len()) {
            votes.iter_mut().for_each(|v| *v = 0);
            for &(_, index) in best {
                let label = train_y.get(index).copied().unwrap_or(0);
                if let Some(v) = classes
                    .binary_search(&label)
                    .ok()
                    .and_then(|c| votes.get_mut(c))
                {
                    *v += 1;
                }
            }
            // the first class with the most votes: the smallest label among ties
            let winner = votes
                .iter()
                .enumerate()
                .fold(
                    (0, 0),
                    |(bc, bv), (c, &v)| if v > bv { (c, v) } else { (bc, bv) },
                )
                .0;
            out.push(classes.get(winner).copied().unwrap_or(0));
        }
    }
    Ok(out)
}
