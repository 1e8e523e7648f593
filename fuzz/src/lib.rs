//! Input decoding and oracles shared by the fuzz targets.
//!
//! Every target decodes its input with [`arbitrary::Unstructured`] through the helpers
//! here, so that the interesting classes (zero, one, huge and overflowing dimensions;
//! NaN, ±inf, subnormal and huge floats; wrong lengths) come up often, not only when
//! the fuzzer happens to hit their bit patterns.

use arbitrary::{Result, Unstructured};
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

/// Unit roundoff of `f32`.
pub const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
/// Smallest positive subnormal `f32`: the absolute error a product can take on underflow.
pub const SUBNORMAL: f64 = 1.401_298_464_324_817e-45;

/// `γ(k) = k·u / (1 − k·u)`.
#[must_use]
pub fn gamma(k: usize) -> f64 {
    let ku = k as f64 * UNIT_ROUNDOFF;
    if ku >= 1.0 {
        f64::INFINITY
    } else {
        ku / (1.0 - ku)
    }
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

/// What exact (`f64`) arithmetic says about `L2(W2·ReLU(W1·x + b1) + b2)`.
#[derive(Debug, Clone)]
pub struct Mlp2Oracle {
    /// The exact pre-normalisation output `o`.
    pub output: Vec<f64>,
    /// ‖o‖₂.
    pub norm: f64,
    /// A bound on ‖ô − o‖₂ for the `f32` output `ô` of either kernel twin, in any
    /// summation order, with or without FMA (first order in `u`, doubled, plus the
    /// absolute error of products that underflow).
    pub error: f64,
    /// Whether an `f32` evaluation can overflow: some hidden unit, output or the sum of
    /// squares of the output could exceed `f32::MAX / 2` in absolute-value arithmetic.
    pub may_overflow: bool,
    /// Whether an `f32` evaluation must overflow: ‖o‖² is far above `f32::MAX` and the
    /// rounding error cannot bring it back.
    pub must_overflow: bool,
}

/// Runs the two layers in `f64` on `x`, exact values and absolute values side by side.
#[must_use]
pub fn mlp2_oracle(hidden: Layer<'_>, output: Layer<'_>, x: &[f32]) -> Mlp2Oracle {
    let dot = |row: &[f32], v: &[f64]| -> (f64, f64) {
        row.iter().zip(v).fold((0.0, 0.0), |(s, a), (&w, &x)| {
            let p = f64::from(w) * x;
            (s + p, a + p.abs())
        })
    };
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let mut h = Vec::new();
    let mut h_abs = Vec::new();
    for (row, &b) in hidden.w.chunks(hidden.d_in.max(1)).zip(hidden.b) {
        let (s, a) = dot(row, &x);
        h.push((f64::from(b) + s).max(0.0));
        h_abs.push(f64::from(b).abs() + a);
    }
    let d_hidden = hidden.b.len();
    let (g1, g2) = (gamma(hidden.d_in + 1), gamma(d_hidden + 1));
    let limit = f64::from(f32::MAX) / 2.0;
    let (mut norm2, mut error2, mut abs2) = (0.0, 0.0, 0.0);
    let mut exact = Vec::with_capacity(output.b.len());
    for (row, &b) in output.w.chunks(d_hidden.max(1)).zip(output.b) {
        let (s, _) = dot(row, &h);
        let (_, a) = dot(row, &h_abs);
        let o = f64::from(b) + s;
        let o_abs = f64::from(b).abs() + a;
        let w_abs: f64 = row.iter().map(|w| f64::from(w.abs())).sum();
        let underflow = ((hidden.d_in + 1) as f64 * w_abs + (d_hidden + 1) as f64) * SUBNORMAL;
        let e = 2.0 * (g1 + g2 + g1 * g2) * o_abs + 2.0 * underflow;
        norm2 += o * o;
        exact.push(o);
        error2 += e * e;
        abs2 += o_abs * o_abs;
    }
    let (norm, error) = (norm2.sqrt(), error2.sqrt());
    let max_h = h_abs.iter().fold(0.0_f64, |m, &a| m.max(a));
    let may_overflow = max_h >= limit || abs2 >= limit || !abs2.is_finite();
    let low = (norm - error).max(0.0);
    let must_overflow = low * low > 2.0 * f64::from(f32::MAX);
    Mlp2Oracle {
        output: exact,
        norm,
        error,
        may_overflow,
        must_overflow,
    }
}

/// How far ‖out‖₂ of a normalised output may be from 1 (the sum of squares, square root
/// and division in `f32`, for `d_out ≤ 64`).
pub const UNIT_TOL: f64 = 1e-5;

/// The reference's norm floor as the library uses it (`1e-12_f32`).
pub const FLOOR: f64 = 1e-12_f32 as f64;

/// Checks a normalised output against the oracle: finite, never above `1 + UNIT_TOL`;
/// when the exact pre-normalisation norm is clearly above the floor, of unit norm and
/// within `2·error/‖o‖ + UNIT_TOL` of the exact direction `o/‖o‖`; clearly below it,
/// `out·1e-12` within `error + UNIT_TOL·‖o‖` of `o` (so ‖out‖ < 1, zero for `o = 0`).
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
    assert!(n <= 1.0 + UNIT_TOL, "{what}: norm {n} > 1 ({oracle:?})");
    let distance = |scale: f64, target: f64| -> f64 {
        out.iter()
            .zip(&oracle.output)
            .map(|(&v, &o)| (f64::from(v) * scale - o / target).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    if oracle.norm - oracle.error > FLOOR * (1.0 + 1e-6) {
        assert!(
            (n - 1.0).abs() <= UNIT_TOL,
            "{what}: norm {n}, expected 1 ({oracle:?})"
        );
        let d = distance(1.0, oracle.norm);
        let bound = 2.0 * oracle.error / oracle.norm + UNIT_TOL;
        assert!(
            d <= bound,
            "{what}: {d} from the exact direction > {bound}: {out:?} ({oracle:?})"
        );
    } else if oracle.norm + oracle.error < FLOOR * (1.0 - 1e-6) {
        let d = distance(FLOOR, 1.0);
        let slack = oracle.error + UNIT_TOL * oracle.norm + 4.0 * SUBNORMAL * out.len() as f64;
        assert!(
            n < 1.0 && d <= slack,
            "{what}: below the floor, norm {n}, {d} from o ({oracle:?})"
        );
    }
}
