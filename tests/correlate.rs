//! The correlation kernels (`simsiam::kernels::correlate`) against a plain `f64` loop, on
//! both twins, over shapes that reach every path of the SIMD twin: register blocks that
//! cross samples, blocks inside and beside the padding, strides above 1, output channels
//! that are not a multiple of a column group, several cache blocks of steps and several
//! panels of window columns (windows of more than 256 columns, more than 64 steps).
//!
//! The values are multiples of 1/8 below 4 in magnitude, so every product and every sum
//! here is exact in any order: both twins must equal the `f64` result exactly. A second
//! test checks the twins within `sum_error_bound` on values that round.

use simsiam::kernels::correlate::{
    Correlation, correlate, correlate_pack_len, correlate_weights_add,
};
use simsiam::kernels::{Kernels, Scalar, Simd, sum_error_bound};
use simsiam::{LcgRng, SslError};

/// Exact values: `((i·7 + seed·13) mod 29)/8 − 1.75`.
fn exact(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13) % 29) as f32 / 8.0 - 1.75)
        .collect()
}

fn shapes() -> Vec<Correlation> {
    let shape = |n, c_in, len, c_out, kernel, stride, left, out_len| Correlation {
        n,
        c_in,
        len,
        c_out,
        kernel,
        stride,
        left,
        out_len,
    };
    vec![
        // har-conv's second convolution, smaller batch: 2 × 53 steps, window 256.
        shape(2, 32, 60, 64, 8, 1, 0, 53),
        // Padding on both sides, 37 output channels, window of 5·7.
        shape(3, 5, 70, 37, 7, 1, 3, 70),
        // Window of 40·8 = 320 columns (two panels), 3 × 30 steps.
        shape(3, 40, 37, 9, 8, 1, 0, 30),
        // Stride 2, padding 2, output longer than the input covers.
        shape(2, 3, 21, 5, 5, 2, 2, 12),
        // One sample, one output position, one channel.
        shape(1, 1, 4, 1, 4, 1, 0, 1),
        // A flipped input gradient's shape: k − 1 zeros before, T outputs from T_out.
        shape(2, 16, 19, 24, 8, 1, 7, 26),
    ]
}

/// `x̃[s, c, i − left]`, 0 outside.
fn at(s: &Correlation, x: &[f32], sample: usize, c: usize, i: usize) -> f64 {
    match i.checked_sub(s.left) {
        Some(i) if i < s.len => f64::from(x[(sample * s.c_in + c) * s.len + i]),
        _ => 0.0,
    }
}

fn forward64(s: &Correlation, w: &[f32], start: Option<&[f32]>, x: &[f32]) -> Vec<f64> {
    let mut y = vec![0.0; s.n * s.c_out * s.out_len];
    for sample in 0..s.n {
        for o in 0..s.c_out {
            for t in 0..s.out_len {
                let mut sum = start.map_or(0.0, |b| f64::from(b[o]));
                for c in 0..s.c_in {
                    for j in 0..s.kernel {
                        let weight = f64::from(w[(o * s.c_in + c) * s.kernel + j]);
                        sum += weight * at(s, x, sample, c, t * s.stride + j);
                    }
                }
                y[(sample * s.c_out + o) * s.out_len + t] = sum;
            }
        }
    }
    y
}

fn weights64(s: &Correlation, dy: &[f32], x: &[f32], dw0: &[f32]) -> Vec<f64> {
    let mut dw: Vec<f64> = dw0.iter().map(|v| f64::from(*v)).collect();
    for sample in 0..s.n {
        for o in 0..s.c_out {
            for t in 0..s.out_len {
                let g = f64::from(dy[(sample * s.c_out + o) * s.out_len + t]);
                for c in 0..s.c_in {
                    for j in 0..s.kernel {
                        dw[(o * s.c_in + c) * s.kernel + j] +=
                            g * at(s, x, sample, c, t * s.stride + j);
                    }
                }
            }
        }
    }
    dw
}

fn lengths(s: &Correlation) -> (usize, usize, usize) {
    (
        s.c_out * s.c_in * s.kernel,
        s.n * s.c_in * s.len,
        s.n * s.c_out * s.out_len,
    )
}

fn exact_on<K: Kernels>() {
    for (seed, s) in shapes().iter().enumerate() {
        let (w_len, x_len, y_len) = lengths(s);
        let (w, x, dy) = (
            exact(w_len, seed),
            exact(x_len, seed + 1),
            exact(y_len, seed + 2),
        );
        let start = exact(s.c_out, seed + 3);
        let mut pack = vec![f32::NAN; correlate_pack_len(s).unwrap()];
        for start in [None, Some(&start[..])] {
            let mut y = vec![f32::NAN; y_len];
            correlate::<K>(s, &w, start, &x, &mut y, &mut pack).unwrap();
            let want: Vec<f32> = forward64(s, &w, start, &x)
                .iter()
                .map(|v| *v as f32)
                .collect();
            assert_eq!(y, want, "{s:?} start {}", start.is_some());
        }
        let dw0 = exact(w_len, seed + 4);
        let mut dw = dw0.clone();
        correlate_weights_add::<K>(s, &dy, &x, &mut dw).unwrap();
        let want: Vec<f32> = weights64(s, &dy, &x, &dw0)
            .iter()
            .map(|v| *v as f32)
            .collect();
        assert_eq!(dw, want, "{s:?} dW");
    }
}

#[test]
fn scalar_equals_exact_sums() {
    exact_on::<Scalar>();
}

#[test]
fn simd_equals_exact_sums() {
    exact_on::<Simd>();
}

/// On values that round, the SIMD twin is within `sum_error_bound(terms + 1, Σ|terms|)`
/// of the scalar twin, each element.
#[test]
fn twins_within_bound() {
    let mut rng = LcgRng::new(7);
    let mut normal = |len: usize| {
        let mut v = vec![0.0; len];
        rng.fill_normal(&mut v);
        v
    };
    let mut worst = 0.0_f64;
    for s in shapes() {
        let (w_len, x_len, y_len) = lengths(&s);
        let (w, x, dy, start) = (normal(w_len), normal(x_len), normal(y_len), normal(s.c_out));
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
        let mut pack = vec![0.0; correlate_pack_len(&s).unwrap()];
        let (mut y, mut y_s) = (vec![0.0; y_len], vec![0.0; y_len]);
        correlate::<Simd>(&s, &w, Some(&start), &x, &mut y, &mut pack).unwrap();
        correlate::<Scalar>(&s, &w, Some(&start), &x, &mut y_s, &mut pack).unwrap();
        let magnitude = forward64(&s, &abs(&w), Some(&abs(&start)), &abs(&x));
        let terms = s.c_in * s.kernel + 1;
        for ((a, b), m) in y.iter().zip(&y_s).zip(&magnitude) {
            let bound = sum_error_bound(terms, *m);
            let error = (f64::from(*a) - f64::from(*b)).abs();
            assert!(error <= bound, "{s:?} y: {a} vs {b}, bound {bound}");
            worst = worst.max(error / bound.max(f64::MIN_POSITIVE));
        }
        let dw0 = normal(w_len);
        let (mut dw, mut dw_s) = (dw0.clone(), dw0.clone());
        correlate_weights_add::<Simd>(&s, &dy, &x, &mut dw).unwrap();
        correlate_weights_add::<Scalar>(&s, &dy, &x, &mut dw_s).unwrap();
        let magnitude = weights64(&s, &abs(&dy), &abs(&x), &abs(&dw0));
        let terms = s.n * s.out_len + 1;
        for ((a, b), m) in dw.iter().zip(&dw_s).zip(&magnitude) {
            let bound = sum_error_bound(terms, *m);
            let error = (f64::from(*a) - f64::from(*b)).abs();
            assert!(error <= bound, "{s:?} dW: {a} vs {b}, bound {bound}");
        }
    }
    println!("correlate: worst {worst:.3} of the bound");
}

/// Typed errors, checked before anything is written.
#[test]
fn bad_calls_give_typed_errors() {
    let s = Correlation {
        n: 2,
        c_in: 2,
        len: 5,
        c_out: 3,
        kernel: 2,
        stride: 1,
        left: 0,
        out_len: 4,
    };
    let (w, x) = (vec![1.0; 12], vec![1.0; 20]);
    let mut y = vec![7.0; 24];
    let mut pack = vec![0.0; correlate_pack_len(&s).unwrap()];
    assert_eq!(correlate_pack_len(&s), Ok((32 + 8) * 4));
    assert_eq!(
        correlate::<Simd>(&s, &w[..11], None, &x, &mut y, &mut pack),
        Err(SslError::DimensionMismatch {
            expected: 12,
            got: 11
        })
    );
    assert_eq!(
        correlate::<Simd>(&s, &w, Some(&[0.0; 2]), &x, &mut y, &mut pack),
        Err(SslError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    );
    let short = pack.len() - 1;
    assert_eq!(
        correlate::<Scalar>(&s, &w, None, &x, &mut y, &mut pack[..short]),
        Err(SslError::CapacityTooSmall {
            needed: pack.len(),
            capacity: short
        })
    );
    assert!(y.iter().all(|v| *v == 7.0), "written on error");
    let zero = Correlation { kernel: 0, ..s };
    assert!(matches!(
        correlate_pack_len(&zero),
        Err(SslError::InvalidParameter { name: "shape", .. })
    ));
    let huge = Correlation {
        out_len: usize::MAX,
        stride: 2,
        ..s
    };
    assert!(matches!(
        correlate_weights_add::<Simd>(&huge, &[], &x, &mut [0.0; 12]),
        Err(SslError::InvalidParameter { name: "shape", .. })
    ));
    let mut dw = vec![5.0; 12];
    assert_eq!(
        correlate_weights_add::<Simd>(&s, &y[..23], &x, &mut dw),
        Err(SslError::DimensionMismatch {
            expected: 24,
            got: 23
        })
    );
    assert!(dw.iter().all(|v| *v == 5.0), "written on error");
}
