//! The few-shot classifier (`simsiam::fewshot`) and the streaming window buffer
//! (`simsiam::stream`): against plain `f64` / index-arithmetic references, and their errors.

use proptest::prelude::*;
use simsiam::SslError;
use simsiam::fewshot::NearestClassMean;
use simsiam::stream::WindowStream;

/// `(mean, population variance)` of each feature over `rows` in `f64`.
fn reference_stats(rows: &[Vec<f32>], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..dim)
        .map(|j| rows.iter().map(|r| f64::from(r[j])).sum::<f64>() / n)
        .collect();
    let var = (0..dim)
        .map(|j| {
            rows.iter()
                .map(|r| (f64::from(r[j]) - mean[j]).powi(2))
                .sum::<f64>()
                / n
        })
        .collect();
    (mean, var)
}

fn labelled() -> impl Strategy<Value = (usize, Vec<(Vec<f32>, usize)>)> {
    (1_usize..6, 1_usize..5).prop_flat_map(|(dim, classes)| {
        (
            Just(classes),
            prop::collection::vec(
                (prop::collection::vec(-100.0_f32..100.0, dim), 0..classes),
                1..40,
            ),
        )
    })
}

proptest! {
    /// The class means and the standardised distances match an `f64` computation of the
    /// same formulas (Welford in `f32` over at most 40 values of at most 100 in
    /// magnitude: within 1e-3 relative to the data's scale).
    #[test]
    fn nearest_class_mean_matches_f64((classes, rows) in labelled()) {
        let dim = rows[0].0.len();
        let mut storage =
            vec![0.0_f32; NearestClassMean::<Vec<f32>>::storage_len(dim, classes).unwrap()];
        let mut classifier = NearestClassMean::new(dim, classes, &mut storage[..]).unwrap();
        for (x, c) in &rows {
            classifier.add(x, *c).unwrap();
        }
        prop_assert_eq!(classifier.count(), rows.len());
        let all: Vec<Vec<f32>> = rows.iter().map(|(x, _)| x.clone()).collect();
        let (_, var) = reference_stats(&all, dim);
        let mut means = vec![None; classes];
        for (c, slot) in means.iter_mut().enumerate() {
            let members: Vec<Vec<f32>> =
                rows.iter().filter(|(_, k)| *k == c).map(|(x, _)| x.clone()).collect();
            prop_assert_eq!(classifier.class_count(c), members.len());
            if members.is_empty() {
                continue;
            }
            let (mean, _) = reference_stats(&members, dim);
            for (got, want) in classifier.class_mean(c).unwrap().iter().zip(&mean) {
                prop_assert!((f64::from(*got) - want).abs() <= 1e-3, "{got} vs {want}");
            }
            *slot = Some(mean);
        }
        // Distances from each row to every class mean; the prediction is the argmin
        // whenever the runner-up is clearly farther.
        let mut distances = vec![0.0_f32; classes];
        for (x, _) in &rows {
            classifier.distances_into(x, &mut distances).unwrap();
            let want: Vec<f64> = means
                .iter()
                .map(|m| match m {
                    None => f64::INFINITY,
                    Some(m) => (0..dim)
                        .map(|j| {
                            let v = if var[j] > 1e-6 { var[j] } else { 1.0 };
                            (f64::from(x[j]) - m[j]).powi(2) / v
                        })
                        .sum(),
                })
                .collect();
            for (got, want) in distances.iter().zip(&want) {
                if want.is_infinite() {
                    prop_assert!(got.is_infinite());
                } else {
                    prop_assert!(
                        (f64::from(*got) - want).abs() <= 1e-2 * (1.0 + want),
                        "{got} vs {want}"
                    );
                }
            }
            let mut order: Vec<usize> = (0..classes).collect();
            order.sort_by(|&a, &b| want[a].total_cmp(&want[b]));
            if order.len() < 2 || want[order[1]] > 1.1 * want[order[0]] + 1e-3 {
                prop_assert_eq!(classifier.predict(x).unwrap(), order[0]);
            }
        }
    }

    /// Every window of the stream is the naive box filter then window cut of the whole
    /// signal, bit for bit, and the windows come exactly where they start.
    #[test]
    fn window_stream_matches_naive(
        channels in 1_usize..4,
        len in 1_usize..9,
        stride in 1_usize..6,
        factor in 1_usize..5,
        samples in 0_usize..120,
        seed in any::<u32>(),
    ) {
        let signal: Vec<f32> = (0..samples * channels)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / 4.0e8 - 5.0)
            .collect();
        // Averaged signal, channel c at averaged time u.
        let averaged_len = samples / factor;
        let averaged = |c: usize, u: usize| -> f32 {
            (0..factor).fold(0.0_f32, |s, k| s + signal[(u * factor + k) * channels + c])
                * (1.0 / factor as f32)
        };
        let mut storage =
            vec![0.0_f32; WindowStream::<Vec<f32>>::storage_len(channels, len).unwrap()];
        let mut stream = WindowStream::new(channels, len, stride, factor, &mut storage[..]).unwrap();
        let mut window = vec![0.0_f32; channels * len];
        let mut starts = Vec::new();
        for t in 0..samples {
            if stream.push(&signal[t * channels..(t + 1) * channels]).unwrap() {
                stream.window_into(&mut window).unwrap();
                let end = (t + 1) / factor; // averaged samples so far
                let start = end - len;
                starts.push(start);
                for c in 0..channels {
                    for u in 0..len {
                        prop_assert_eq!(
                            window[c * len + u].to_bits(),
                            averaged(c, start + u).to_bits()
                        );
                    }
                }
            }
        }
        let want: Vec<usize> = if averaged_len >= len {
            (0..=(averaged_len - len)).step_by(stride).collect()
        } else {
            Vec::new()
        };
        prop_assert_eq!(starts, want);
    }
}

#[test]
fn nearest_class_mean_errors() {
    assert!(matches!(
        NearestClassMean::<Vec<f32>>::storage_len(0, 3),
        Err(SslError::InvalidParameter { name: "dim", .. })
    ));
    assert!(matches!(
        NearestClassMean::<Vec<f32>>::storage_len(3, 0),
        Err(SslError::InvalidParameter {
            name: "classes",
            ..
        })
    ));
    assert!(matches!(
        NearestClassMean::<Vec<f32>>::storage_len(usize::MAX / 2, 3),
        Err(SslError::InvalidParameter { .. })
    ));
    assert_eq!(
        NearestClassMean::new(2, 3, vec![0.0_f32; 13]).err(),
        Some(SslError::DimensionMismatch {
            expected: 14,
            got: 13
        })
    );
    let mut classifier = NearestClassMean::new(2, 3, vec![7.0_f32; 14]).unwrap();
    assert_eq!(classifier.count(), 0, "new zeroes the storage");
    assert!(matches!(
        classifier.predict(&[0.0, 0.0]),
        Err(SslError::InvalidParameter {
            name: "classifier",
            ..
        })
    ));
    assert!(matches!(
        classifier.add(&[0.0, 0.0], 3),
        Err(SslError::InvalidParameter { name: "class", .. })
    ));
    assert!(matches!(
        classifier.add(&[0.0], 0),
        Err(SslError::DimensionMismatch { .. })
    ));
    assert_eq!(
        classifier.add(&[f32::NAN, 0.0], 0),
        Err(SslError::NonFinite {
            location: "feature"
        })
    );
    assert_eq!(classifier.count(), 0, "a failed add changes nothing");
    classifier.add(&[1.0, 1.0], 2).unwrap();
    // One window: zero variance everywhere (σ² = 1), only class 2 can win.
    assert_eq!(classifier.predict(&[-50.0, 9.0]).unwrap(), 2);
    let mut distances = [0.0_f32; 3];
    classifier
        .distances_into(&[3.0, 1.0], &mut distances)
        .unwrap();
    assert_eq!(distances, [f32::INFINITY, f32::INFINITY, 4.0]);
    assert_eq!(
        classifier.predict(&[f32::INFINITY, 0.0]),
        Err(SslError::NonFinite {
            location: "feature"
        })
    );
    classifier.clear();
    assert_eq!(classifier.count(), 0);
}

/// The standardisation matters: a feature of large spread no longer drowns a feature of
/// small spread that separates the classes.
#[test]
fn nearest_class_mean_standardises() {
    let mut classifier = NearestClassMean::new(2, 2, [0.0_f32; 11]).unwrap();
    // Feature 0: noise of spread 100; feature 1: the class, 0 or 1.
    for (x, c) in [
        ([-100.0, 0.0], 0),
        ([100.0, 0.0], 0),
        ([-100.0, 1.0], 1),
        ([100.0, 1.0], 1),
    ] {
        classifier.add(&x, c).unwrap();
    }
    // Class means (0, 0) and (0, 1); σ² = (10 000, 0.25). Feature 1 decides.
    assert_eq!(classifier.predict(&[60.0, 0.9]).unwrap(), 1);
    assert_eq!(classifier.predict(&[30.0, 0.1]).unwrap(), 0);
    let mut distances = [0.0_f32; 2];
    classifier
        .distances_into(&[100.0, 0.0], &mut distances)
        .unwrap();
    // Class 0 at 1 + 0, class 1 at 1 + 4 (Welford's f32 rounding aside).
    assert!((distances[0] - 1.0).abs() < 1e-5 && (distances[1] - 5.0).abs() < 1e-5);
    // Without the standardisation, feature 0 alone would decide: both classes at 10 000.
}

#[test]
fn window_stream_errors() {
    assert!(matches!(
        WindowStream::<Vec<f32>>::storage_len(0, 4),
        Err(SslError::InvalidParameter {
            name: "channels",
            ..
        })
    ));
    assert!(matches!(
        WindowStream::<Vec<f32>>::storage_len(2, 0),
        Err(SslError::InvalidParameter { name: "len", .. })
    ));
    assert!(matches!(
        WindowStream::new(2, 4, 0, 1, vec![0.0_f32; 10]),
        Err(SslError::InvalidParameter { name: "stride", .. })
    ));
    assert!(matches!(
        WindowStream::new(2, 4, 1, 0, vec![0.0_f32; 10]),
        Err(SslError::InvalidParameter { name: "factor", .. })
    ));
    assert_eq!(
        WindowStream::new(2, 4, 1, 1, vec![0.0_f32; 9]).err(),
        Some(SslError::DimensionMismatch {
            expected: 10,
            got: 9
        })
    );
    let mut stream = WindowStream::new(2, 2, 1, 1, vec![0.0_f32; 6]).unwrap();
    let mut window = [0.0_f32; 4];
    assert!(matches!(
        stream.window_into(&mut window),
        Err(SslError::InvalidParameter { name: "stream", .. })
    ));
    assert_eq!(
        stream.push(&[1.0, f32::NAN]),
        Err(SslError::NonFinite { location: "sample" })
    );
    assert!(stream.is_empty(), "a refused sample is not stored");
    assert!(matches!(
        stream.push(&[1.0]),
        Err(SslError::DimensionMismatch { .. })
    ));
    assert!(!stream.push(&[1.0, 2.0]).unwrap());
    assert!(stream.push(&[3.0, 4.0]).unwrap());
    assert!(matches!(
        stream.window_into(&mut [0.0; 3]),
        Err(SslError::DimensionMismatch { .. })
    ));
    stream.window_into(&mut window).unwrap();
    assert_eq!(window, [1.0, 3.0, 2.0, 4.0]);
    stream.clear();
    assert!(stream.is_empty());
    assert!(
        !stream.push(&[1.0, 2.0]).unwrap(),
        "clear restarts the count"
    );
}
