//! Continuing from kept buffers (what the C API does between calls, issue 22):
//! `Sgd::resume` and `NearestClassMean::from_storage` carry on exactly where the
//! optimiser and the classifier left off.
//! (The optimiser's case trains a network with an encoder: feature `encoder`.)
#![cfg(feature = "encoder")]

use simsiam::LcgRng;
use simsiam::SslError;
use simsiam::fewshot::NearestClassMean;
use simsiam::model::{Architecture, HarDense, SimSiamHead};
use simsiam::train::{Sgd, TrainConfig, scratch_len};

fn inputs(seed: u32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2000) as f32 / 1000.0 - 1.0)
        .collect()
}

/// Three steps with one optimiser, against one step then two optimisers resumed from
/// the kept momentum and step count: the same parameters and momentum, bit for bit.
#[test]
fn resumed_sgd_continues_bit_for_bit() {
    let sizes = HarDense {
        channels: 3,
        window: 4,
        hidden: 8,
        feature: 4,
        projector_hidden: 4,
        projection: 4,
        predictor_hidden: 2,
    };
    let architecture = Architecture::har_dense(&sizes).unwrap();
    let count = architecture.param_count().unwrap();
    let mut init = vec![0.0_f32; count];
    architecture
        .init_params(&mut LcgRng::new(5), &mut init)
        .unwrap();
    let n = 4;
    let d = architecture.d_input();
    let batches: Vec<[Vec<f32>; 2]> = (0..3)
        .map(|k| [inputs(2 * k, n * d), inputs(2 * k + 1, n * d)])
        .collect();
    let config = TrainConfig {
        fix_predictor_lr: false,
        ..TrainConfig::default()
    };
    let mut scratch = vec![0.0_f32; scratch_len(&architecture, n).unwrap()];

    let mut head = SimSiamHead::new(architecture, init.clone()).unwrap();
    let mut sgd = Sgd::new(&architecture, config, vec![0.0_f32; count]).unwrap();
    let mut losses = Vec::new();
    for (k, [x1, x2]) in batches.iter().enumerate() {
        sgd.set_lr(0.05 / (k as f32 + 1.0));
        losses.push(
            sgd.step(&mut head, x1, x2, &mut scratch, [&mut [], &mut []])
                .unwrap(),
        );
    }

    let mut params = init;
    // Garbage where step 0 writes the buffer; the entries of untrained values (running
    // statistics) are never written, zero as in `Sgd::new`'s buffer.
    let mut momentum: Vec<f32> = sgd
        .momentum()
        .iter()
        .map(|&m| if m == 0.0 { 0.0 } else { 7.0 })
        .collect();
    let mut resumed_losses = Vec::new();
    for (k, [x1, x2]) in batches.iter().enumerate() {
        let mut sgd = Sgd::resume(
            &architecture,
            config,
            &mut momentum[..],
            k as u64,
            0.05 / (k as f32 + 1.0),
        )
        .unwrap();
        let mut head = SimSiamHead::new(architecture, &mut params[..]).unwrap();
        resumed_losses.push(
            sgd.step(&mut head, x1, x2, &mut scratch, [&mut [], &mut []])
                .unwrap(),
        );
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&losses), bits(&resumed_losses));
    assert_eq!(bits(head.params()), bits(&params));
    assert_eq!(bits(sgd.momentum()), bits(&momentum));
}

/// A classifier rebuilt from its storage predicts as the original; storage with counts
/// that no classifier writes is refused.
#[test]
fn classifier_from_storage_continues() {
    let (dim, classes) = (3, 4);
    let len = NearestClassMean::<Vec<f32>>::storage_len(dim, classes).unwrap();
    let mut original = NearestClassMean::new(dim, classes, vec![0.0_f32; len]).unwrap();
    let mut storage = vec![0.0_f32; len];
    NearestClassMean::new(dim, classes, &mut storage[..]).unwrap();
    for (i, x) in inputs(9, 60).chunks_exact(dim).enumerate() {
        original.add(x, i % classes).unwrap();
        NearestClassMean::from_storage(dim, classes, &mut storage[..])
            .unwrap()
            .add(x, i % classes)
            .unwrap();
    }
    let rebuilt = NearestClassMean::from_storage(dim, classes, &mut storage[..]).unwrap();
    assert_eq!(rebuilt.count(), 20);
    for q in inputs(11, 30).chunks_exact(dim) {
        assert_eq!(rebuilt.predict(q).unwrap(), original.predict(q).unwrap());
    }
    let total = len - 1;
    let mut bad = storage.clone();
    bad[total] += 1.0; // the total no longer the sum of the class counts
    assert!(matches!(
        NearestClassMean::from_storage(dim, classes, &mut bad[..]),
        Err(SslError::InvalidParameter {
            name: "storage",
            ..
        })
    ));
    let mut bad = storage.clone();
    bad[total - 1] = 0.5; // a fractional count
    assert!(matches!(
        NearestClassMean::from_storage(dim, classes, &mut bad[..]),
        Err(SslError::InvalidParameter {
            name: "storage",
            ..
        })
    ));
    assert_eq!(
        NearestClassMean::from_storage(dim, classes, &mut storage[..len - 1]).err(),
        Some(SslError::DimensionMismatch {
            expected: len,
            got: len - 1
        })
    );
}
