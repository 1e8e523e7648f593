//! Input decoding and oracles shared by the fuzz targets.
//!
//! Every target decodes its input with [`arbitrary::Unstructured`] through the helpers
//! here, so that the interesting classes (zero, one, huge and overflowing dimensions;
//! NaN, ±inf, subnormal and huge floats; wrong lengths) come up often, not only when
//! the fuzzer happens to hit their bit patterns.

use arbitrary::{Result, Unstructured};

/// The head on the kernel twin chosen at run time: the test suite's helper.
#[path = "../../tests/support/twin.rs"]
pub mod twin;
use simsiam::kernels::{NORM_FLOOR, sum_error_bound};
use simsiam::{SimSiamConfig, SslError};

/// A dimension from the classes that matter: 0, 1, small, 16/32/64-bit, `usize::MAX`,
/// large powers of two and values whose products overflow.
pub fn any_dim(u: &mut Unstructured<'_>) -> Result<usize> {
    Ok(match u.int_in_range(0_u8..=9)? {
        0 => 0,
        1 => 1,
        2 | 3 => u.int_in_range(2..=40)?,
        4 => usize::from(u.arbitrary::<u16>()?),
        5 => u.arbitrary::<u32>()? as usize,
        6 => usize::MAX,
        7 => usize::MAX / u.int_in_range(2..=1_000_usize)?,
        8 => 1_usize << u.int_in_range(0..=63_u32)?,
        _ => u.arbitrary::<usize>()?,
    })
}

/// A config with each dimension from [`any_dim`].
pub fn any_config(u: &mut Unstructured<'_>) -> Result<SimSiamConfig> {
    Ok(SimSiamConfig {
        d_encoder: any_dim(u)?,
        d_projector: any_dim(u)?,
        d_predictor: any_dim(u)?,
        d_out: any_dim(u)?,
    })
}

/// The parameter count computed in `u128`, or `None` when even that overflows.
#[must_use]
pub fn exact_param_count(c: &SimSiamConfig) -> Option<u128> {
    let [e, p, q, o] = [c.d_encoder, c.d_projector, c.d_predictor, c.d_out].map(|d| d as u128);
    let layer = |d_in: u128, d_out: u128| d_out.checked_mul(d_in)?.checked_add(d_out);
    layer(e, p)?
        .checked_add(layer(p, o)?)?
        .checked_add(layer(o, q)?)?
        .checked_add(layer(q, o)?)
}

/// What `SimSiamConfig::param_count` must return, derived independently: the first zero
/// field, else the exact count or the overflow error.
pub fn expected_param_count(c: &SimSiamConfig) -> std::result::Result<usize, SslError> {
    expected_validate(c)?;
    exact_param_count(c)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(SslError::InvalidParameter {
            name: "config",
            reason: "parameter count overflows usize",
        })
}

/// What `SimSiamConfig::validate` must return.
pub fn expected_validate(c: &SimSiamConfig) -> std::result::Result<(), SslError> {
    let fields = [
        ("d_encoder", c.d_encoder),
        ("d_projector", c.d_projector),
        ("d_predictor", c.d_predictor),
        ("d_out", c.d_out),
    ];
    match fields.into_iter().find(|&(_, d)| d == 0) {
        Some((name, _)) => Err(SslError::InvalidParameter {
            name,
            reason: "must be > 0",
        }),
        None => Ok(()),
    }
}

/// One float from a class: raw bits (anything, NaN payloads included), a special value,
/// a moderate value, a huge finite value or a tiny (subnormal or near) one.
pub fn any_f32(u: &mut Unstructured<'_>) -> Result<f32> {
    const SPECIAL: [f32; 12] = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        1e-45,
        -1e-45,
        f32::MAX,
        f32::MIN,
        1e30,
        -1e30,
    ];
    Ok(match u.int_in_range(0_u8..=7)? {
        0 => f32::from_bits(u.arbitrary()?),
        1 => *u.choose(&SPECIAL)?,
        2 => finite_huge(u)?,
        3 => f32::from_bits(u.int_in_range(0_u32..=0x00ff_ffff)?) * sign(u)?,
        _ => moderate(u)?,
    })
}

/// A finite value in `[-16, 16]` on a 1/64 grid.
pub fn moderate(u: &mut Unstructured<'_>) -> Result<f32> {
    Ok(f32::from(u.int_in_range(-1024_i16..=1024)?) / 64.0)
}

/// A finite value of magnitude `1e15 ..= f32::MAX`.
pub fn finite_huge(u: &mut Unstructured<'_>) -> Result<f32> {
    let bits = u.int_in_range(0x5863_5fa9_u32..=0x7f7f_ffff)?;
    Ok(f32::from_bits(bits) * sign(u)?)
}

fn sign(u: &mut Unstructured<'_>) -> Result<f32> {
    Ok(if u.arbitrary()? { -1.0 } else { 1.0 })
}

/// A finite float from raw bits (non-finite ones become their bits' low part, scaled).
pub fn any_finite_f32(u: &mut Unstructured<'_>) -> Result<f32> {
    let x = any_f32(u)?;
    Ok(if x.is_finite() { x } else { 0.5 })
}

/// `len` floats: all moderate, moderate with rare specials, all from [`any_f32`], all
/// huge, or all tiny; the class is chosen once per vector.
pub fn floats(u: &mut Unstructured<'_>, len: usize) -> Result<Vec<f32>> {
    let mode = u.int_in_range(0_u8..=5)?;
    (0..len)
        .map(|_| match mode {
            0 | 1 => moderate(u),
            2 => {
                if u.ratio(1_u8, 16)? {
                    any_f32(u)
                } else {
                    moderate(u)
                }
            }
            3 => any_f32(u),
            4 => finite_huge(u),
            _ => Ok(f32::from_bits(u.int_in_range(0_u32..=0x0d00_0000)?) * sign(u)?),
        })
        .collect()
}

/// Usually `expected`, sometimes one off, empty, or anything up to `2·expected + 2`.
pub fn length(u: &mut Unstructured<'_>, expected: usize) -> Result<usize> {
    Ok(match u.int_in_range(0_u8..=9)? {
        0 => expected.saturating_add(1),
        1 => expected.saturating_sub(1),
        2 => 0,
        3 => u.int_in_range(0..=expected.saturating_mul(2).saturating_add(2))?,
        _ => expected,
    })
}

/// Machine epsilon of `f32` (`2⁻²³`), as `EPS` in tests/batch.rs.
pub const EPS: f64 = f32::EPSILON as f64;
/// Smallest positive subnormal `f32` (`2⁻¹⁴⁹`): the absolute error a product can take on
/// underflow, which the relative [`sum_error_bound`] does not cover.
pub const SUBNORMAL: f64 = 1.401_298_464_324_817e-45;
/// The norm floor the library divides by at least (`NORM_FLOOR`, `1e-12_f32`), exactly.
pub const FLOOR: f64 = NORM_FLOOR as f64;

/// The bound for one sum of `terms` terms whose absolute values add up to `sum_abs`:
/// [`sum_error_bound`] (`2·γ(terms)·sum_abs`) plus `2·terms·2⁻¹⁴⁹` for products that
/// underflow (the allowance the kernels module documents).
///
/// It bounds the difference between two `f32` evaluations in any orders (the tests'
/// claim), and so also, with a factor 2 to spare, one evaluation's distance from the
/// exact value: that spare factor is what absorbs the second-order terms below (the
/// rounding of the division, the `f64` rounding of the oracle itself).
#[must_use]
pub fn sum_bound(terms: usize, sum_abs: f64) -> f64 {
    sum_error_bound(terms, sum_abs) + 2.0 * terms as f64 * SUBNORMAL
}

/// The tolerance on the norm of a normalised vector of `len` entries:
/// `sum_error_bound(len, 1) + 4·EPS`, the relative norm bound of tests/batch.rs (the sum
/// of squares, its square root and the divisions).
#[must_use]
pub fn unit_tolerance(len: usize) -> f64 {
    sum_error_bound(len, 1.0) + 4.0 * EPS
}

/// The largest `|loss|` an `f32` evaluation can give: the dot product of two vectors of
/// norm at most `1 + unit_tolerance(d_out)`, rounded, then the mean of two such.
#[must_use]
pub fn loss_limit(d_out: usize) -> f64 {
    let norm = 1.0 + unit_tolerance(d_out);
    norm * norm * (1.0 + sum_error_bound(d_out, 1.0)) + 2.0 * d_out as f64 * SUBNORMAL + 2.0 * EPS
}

/// One dense layer of the flat parameters: `W [rows × d_in]` row-major, then `b [rows]`.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// Row-major weights.
    pub w: &'a [f32],
    /// Bias.
    pub b: &'a [f32],
    /// Input width.
    pub d_in: usize,
}

/// The four layers of a valid config's parameters (projector 1, 2, predictor 1, 2).
#[must_use]
pub fn layers<'a>(c: &SimSiamConfig, params: &'a [f32]) -> [Layer<'a>; 4] {
    let shapes = [
        (c.d_encoder, c.d_projector),
        (c.d_projector, c.d_out),
        (c.d_out, c.d_predictor),
        (c.d_predictor, c.d_out),
    ];
    let mut rest = params;
    shapes.map(|(d_in, rows)| {
        let (w, tail) = rest.split_at(rows * d_in);
        let (b, tail) = tail.split_at(rows);
        rest = tail;
        Layer { w, b, d_in }
    })
}

/// Exact (`f64`) `y = W·x + b` and, per row, the bound on an `f32` evaluation's error
/// given inputs known to within `dx`: what `dense` in tests/batch.rs computes (the
/// carried `Σ|w|·dx` plus [`sum_error_bound`] over `|w|·(|x| + dx)`), plus the underflow
/// allowance of [`sum_bound`].
#[must_use]
pub fn dense(layer: Layer<'_>, x: &[f64], dx: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let rows = layer.w.chunks(layer.d_in.max(1)).zip(layer.b);
    rows.map(|(row, b)| {
        let b = f64::from(*b);
        let terms = row.iter().zip(x.iter().zip(dx));
        let (value, sum_abs, carried) = terms.fold(
            (b, b.abs(), 0.0),
            |(value, sum_abs, carried), (w, (x, dx))| {
                let w = f64::from(*w);
                (
                    value + w * x,
                    sum_abs + w.abs() * (x.abs() + dx),
                    carried + w.abs() * dx,
                )
            },
        );
        (value, carried + sum_bound(layer.d_in + 1, sum_abs))
    })
    .unzip()
}

/// What exact (`f64`) arithmetic says about `L2(W2·ReLU(W1·x + b1) + b2)` and how far an
/// `f32` evaluation (either twin, any summation order, with or without FMA) may be from
/// it, entry by entry.
#[derive(Debug, Clone)]
pub struct Mlp2Oracle {
    /// The exact pre-normalisation output `o`.
    pub output: Vec<f64>,
    /// Per entry, the bound on `|ô_i − o_i|` ([`dense`] through both layers; ReLU is
    /// 1-Lipschitz).
    pub output_bound: Vec<f64>,
    /// ‖o‖₂.
    pub norm: f64,
    /// The bound on `|n̂ − ‖o‖|` for the computed norm `n̂`: `‖δo‖` plus the relative
    /// [`unit_tolerance`] of `‖ô‖ ≤ ‖o‖ + ‖δo‖`, plus `√(2·len·2⁻¹⁴⁹)` for squares that
    /// underflow.
    pub norm_bound: f64,
    /// The exact normalised output `u = o / max(‖o‖, 1e-12)`, as the library defines it.
    pub unit: Vec<f64>,
    /// Per entry, the bound on `|û_i − u_i|`: with `M = max(‖o‖, F)` and the divisor
    /// `D = max(n̂, F)`, `|D − M| ≤ δD = min(δn, max(0, ‖o‖ + δn − F))` and `D ≥ F`, so
    /// `|ô_i/D − o_i/M| ≤ (δo_i + |u_i|·δD) / max(M − δD, F)`; plus `4·EPS·|u_i|` for the
    /// division, as in `propagate` of tests/batch.rs, and `2⁻¹⁴⁹` for a quotient that
    /// underflows.
    pub unit_bound: Vec<f64>,
    /// Whether an `f32` evaluation can overflow: some hidden unit, output or the sum of
    /// squares of the output could exceed `f32::MAX / 2` in absolute-value arithmetic
    /// (which bounds every partial sum for any input of at most these magnitudes).
    pub may_overflow: bool,
    /// Whether an `f32` evaluation must overflow: ‖o‖² is far above `f32::MAX` and the
    /// rounding error cannot bring it back.
    pub must_overflow: bool,
}

/// The exact normalisation of `o` (known to within `d_o` per entry) and its bounds.
fn normalise(o: &[f64], d_o: &[f64]) -> (f64, f64, Vec<f64>, Vec<f64>) {
    let norm = o.iter().map(|v| v * v).sum::<f64>().sqrt();
    let d_len = d_o.iter().map(|v| v * v).sum::<f64>().sqrt();
    let len = o.len();
    let d_norm =
        d_len + (norm + d_len) * unit_tolerance(len) + (2.0 * len as f64 * SUBNORMAL).sqrt();
    let scale = norm.max(FLOOR);
    let d_scale = d_norm.min((norm + d_norm - FLOOR).max(0.0));
    let low = (scale - d_scale).max(FLOOR);
    let unit: Vec<f64> = o.iter().map(|v| v / scale).collect();
    let bound = unit
        .iter()
        .zip(d_o)
        .map(|(u, d)| (d + u.abs() * d_scale) / low + 4.0 * EPS * u.abs() + SUBNORMAL)
        .collect();
    (norm, d_norm, unit, bound)
}

/// Runs the two layers in `f64` on `x` (known to within `dx`): exact values, the
/// propagated bounds, and absolute values for the overflow test.
#[must_use]
pub fn mlp2_oracle(hidden: Layer<'_>, output: Layer<'_>, x: &[f64], dx: &[f64]) -> Mlp2Oracle {
    let (h, dh) = dense(hidden, x, dx);
    let h: Vec<f64> = h.iter().map(|v| v.max(0.0)).collect();
    let (o, d_o) = dense(output, &h, &dh);
    let (norm, norm_bound, unit, unit_bound) = normalise(&o, &d_o);

    // Overflow: absolute values only (no cancellation, no ReLU), so that the answer holds
    // for every input whose entries are at most these in magnitude.
    let abs_dot = |row: &[f32], v: &[f64]| -> f64 {
        row.iter()
            .zip(v)
            .map(|(&w, &x)| (f64::from(w) * x).abs())
            .sum()
    };
    let x_abs: Vec<f64> = x.iter().zip(dx).map(|(v, d)| v.abs() + d).collect();
    let h_abs: Vec<f64> = hidden
        .w
        .chunks(hidden.d_in.max(1))
        .zip(hidden.b)
        .map(|(row, &b)| f64::from(b).abs() + abs_dot(row, &x_abs))
        .collect();
    let abs2: f64 = output
        .w
        .chunks(hidden.b.len().max(1))
        .zip(output.b)
        .map(|(row, &b)| (f64::from(b).abs() + abs_dot(row, &h_abs)).powi(2))
        .sum();
    let limit = f64::from(f32::MAX) / 2.0;
    let max_h = h_abs.iter().fold(0.0_f64, |m, &a| m.max(a));
    let may_overflow = max_h >= limit || abs2 >= limit || !abs2.is_finite();
    let d_len = d_o.iter().map(|v| v * v).sum::<f64>().sqrt();
    let low = (norm - d_len).max(0.0);
    let must_overflow = low * low > 2.0 * f64::from(f32::MAX);
    Mlp2Oracle {
        output: o,
        output_bound: d_o,
        norm,
        norm_bound,
        unit,
        unit_bound,
        may_overflow,
        must_overflow,
    }
}

/// [`mlp2_oracle`] on an exact `f32` input.
#[must_use]
pub fn mlp2_oracle_f32(hidden: Layer<'_>, output: Layer<'_>, x: &[f32]) -> Mlp2Oracle {
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    mlp2_oracle(hidden, output, &x, &vec![0.0; x.len()])
}

/// The exact two-view loss `−(p1·z2 + p2·z1)/2` and the bound on an `f32` evaluation's
/// distance from it: `loss_bound` of tests/batch.rs (the projector's bound carried into
/// the predictor, both into the dot products) with the underflow allowance of
/// [`sum_bound`].
#[derive(Debug, Clone, Copy)]
pub struct LossOracle {
    /// The exact loss.
    pub value: f64,
    /// The bound on `|loss − value|` (infinite when the oracle says nothing).
    pub bound: f64,
}

/// [`LossOracle`] for views `z1`, `z2` through the four layers.
#[must_use]
pub fn loss_oracle(
    [proj1, proj2, pred1, pred2]: [Layer<'_>; 4],
    z1: &[f32],
    z2: &[f32],
) -> LossOracle {
    let z1p = mlp2_oracle_f32(proj1, proj2, z1);
    let z2p = mlp2_oracle_f32(proj1, proj2, z2);
    let p1 = mlp2_oracle(pred1, pred2, &z1p.unit, &z1p.unit_bound);
    let p2 = mlp2_oracle(pred1, pred2, &z2p.unit, &z2p.unit_bound);
    let dot = |a: &Mlp2Oracle, b: &Mlp2Oracle| {
        let (a, da, b, db) = (&a.unit, &a.unit_bound, &b.unit, &b.unit_bound);
        let mut value = 0.0;
        let mut bound = 0.0;
        let mut sum_abs = 0.0;
        for i in 0..a.len() {
            value += a[i] * b[i];
            bound += da[i] * b[i].abs() + a[i].abs() * db[i] + da[i] * db[i];
            sum_abs += (a[i].abs() + da[i]) * (b[i].abs() + db[i]);
        }
        (value, bound + sum_bound(a.len(), sum_abs))
    };
    let (d1, b1) = dot(&p1, &z2p);
    let (d2, b2) = dot(&p2, &z1p);
    let bound = (b1 + b2) * 0.5 + 2.0 * EPS;
    LossOracle {
        value: -(d1 + d2) * 0.5,
        bound: if bound.is_nan() { f64::INFINITY } else { bound },
    }
}

/// Checks a normalised output against the oracle: finite; ‖out‖ ≤ 1 + [`unit_tolerance`];
/// every entry within [`Mlp2Oracle::unit_bound`] of the exact `o / max(‖o‖, 1e-12)`; and
/// ‖out‖ = 1 within the tolerance when the computed norm is surely above the floor, or
/// ‖out‖ < 1 when it is surely below.
///
/// # Panics
/// When the output breaks what the library guarantees (that is the fuzz failure).
pub fn assert_normalised(out: &[f32], oracle: &Mlp2Oracle, what: &str) {
    assert!(
        out.iter().all(|v| v.is_finite()),
        "{what}: non-finite Ok output {out:?}"
    );
    let n = out
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    let tolerance = unit_tolerance(out.len());
    assert!(
        n <= 1.0 + tolerance,
        "{what}: norm {n} > 1 + {tolerance} ({oracle:?})"
    );
    for (i, ((&v, &u), &bound)) in out
        .iter()
        .zip(&oracle.unit)
        .zip(&oracle.unit_bound)
        .enumerate()
    {
        let diff = (f64::from(v) - u).abs();
        assert!(
            diff <= bound,
            "{what}[{i}]: |{v:e} − {u:e}| = {diff:e} > {bound:e}: {out:?} ({oracle:?})"
        );
    }
    if oracle.norm - oracle.norm_bound > FLOOR {
        assert!(
            (n - 1.0).abs() <= tolerance,
            "{what}: norm {n}, expected 1 within {tolerance} ({oracle:?})"
        );
    } else if oracle.norm + oracle.norm_bound < FLOOR {
        assert!(n < 1.0, "{what}: below the floor, norm {n} ({oracle:?})");
    }
}
