//! Each error cause has one error with a true payload, including on paths that only a
//! broken invariant or a pathological storage type can reach.

use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, SslError, init_params};

const WORKSPACE_OVERFLOW: SslError = SslError::InvalidParameter {
    name: "d_out",
    reason: "workspace length overflows usize",
};

fn config(d_out: usize) -> SimSiamConfig {
    SimSiamConfig {
        d_encoder: 1,
        d_projector: 1,
        d_predictor: 1,
        d_out,
    }
}

#[test]
fn workspace_overflow_is_not_a_parameter_count_overflow() {
    assert_eq!(
        config(usize::MAX / 2).loss_workspace_len(),
        Err(WORKSPACE_OVERFLOW)
    );
    // `4·d_out` fits, eight pairs of it do not.
    let wide = config(usize::MAX / 16);
    assert_eq!(wide.loss_workspace_len(), Ok(usize::MAX / 16 * 4));
    assert_eq!(wide.batch_loss_workspace_len(1), Ok(usize::MAX / 16 * 4));
    assert_eq!(wide.batch_loss_workspace_len(8), Err(WORKSPACE_OVERFLOW));
    // A parameter count that overflows is the other cause, with its own words.
    let wider = SimSiamConfig {
        d_predictor: 17,
        ..wide
    };
    assert_eq!(wider.loss_workspace_len(), Ok(usize::MAX / 16 * 4));
    assert_eq!(
        wider.param_count(),
        Err(SslError::InvalidParameter {
            name: "config",
            reason: "parameter count overflows usize",
        })
    );
}

#[test]
fn init_params_reports_the_lengths() {
    let c = SimSiamConfig::default();
    let mut params = vec![0.0; 100];
    assert_eq!(
        init_params(&c, &mut LcgRng::new(1), &mut params),
        Err(SslError::DimensionMismatch {
            expected: 16_640,
            got: 100
        })
    );
}

/// Storage whose mutable view is one float shorter than its shared view: a contract
/// breach `SimSiamHead` cannot rule out at construction.
#[derive(Clone)]
struct ShrinksWhenMutated(Vec<f32>);

impl AsRef<[f32]> for ShrinksWhenMutated {
    fn as_ref(&self) -> &[f32] {
        &self.0
    }
}

impl AsMut<[f32]> for ShrinksWhenMutated {
    fn as_mut(&mut self) -> &mut [f32] {
        let len = self.0.len() - 1;
        &mut self.0[..len]
    }
}

#[test]
fn identity_predictor_on_storage_that_changed_length() {
    let c = SimSiamConfig {
        d_encoder: 3,
        d_projector: 5,
        d_predictor: 4,
        d_out: 2,
    };
    let count = c.param_count().unwrap();
    let mut params = vec![0.0; count];
    init_params(&c, &mut LcgRng::new(2), &mut params).unwrap();
    let mut head = SimSiamHead::from_params(c, ShrinksWhenMutated(params)).unwrap();
    assert_eq!(
        head.set_identity_predictor(),
        Err(SslError::DimensionMismatch {
            expected: count,
            got: count - 1
        })
    );
}

/// Training: each error of `scratch_len`, `param_grads`, `Sgd::new` and `Sgd::step` with
/// its true payload, and the `alloc` trainer giving exactly the core's errors.
mod training {
    use super::*;
    use simsiam::model::{Architecture, Layer, Stack};
    use simsiam::train::{Sgd, TrainConfig, param_grads, scratch_len};

    const SMALL: SimSiamConfig = SimSiamConfig {
        d_encoder: 3,
        d_projector: 5,
        d_predictor: 4,
        d_out: 2,
    };

    fn reference() -> Architecture {
        Architecture::reference(SMALL).unwrap()
    }

    fn params_for(architecture: &Architecture) -> Vec<f32> {
        let mut params = vec![0.0_f32; architecture.param_count().unwrap()];
        LcgRng::new(4).fill_normal(&mut params);
        params.iter_mut().for_each(|p| *p = p.abs() * 0.5 + 0.01);
        params
    }

    fn batch(architecture: &Architecture, n: usize, seed: u64) -> Vec<f32> {
        let mut x = vec![0.0_f32; n * architecture.d_encoder()];
        LcgRng::new(seed).fill_normal(&mut x);
        x
    }

    #[test]
    fn scratch_length_overflow_names_n() {
        let overflow = SslError::InvalidParameter {
            name: "n",
            reason: "training scratch length overflows usize",
        };
        let architecture = reference();
        for n in [usize::MAX, usize::MAX / 2, usize::MAX / 5] {
            assert_eq!(scratch_len(&architecture, n), Err(overflow), "n = {n}");
            assert_eq!(param_grads(&architecture, n, &[]), Err(overflow));
        }
        // The documented formula, exactly: 2·(Σ n·d_out + 3·n·d_out + 2·n)
        // + 2·n·max(d_encoder, widest) + param_count for a head without BatchNorm.
        let n = 3;
        let layers = n * (5 + 2 + 4 + 2);
        let expected = 2 * (layers + 3 * n * 2 + 2 * n) + 2 * n * 5 + 54;
        assert_eq!(architecture.param_count(), Ok(54));
        assert_eq!(scratch_len(&architecture, n), Ok(expected));
        // With BatchNorm: 2·n·d_out + 5·d_out per BatchNorm layer.
        let official = Architecture::official(3, 2, 2).unwrap();
        let per_view = (2 * n * 3 + 5 * 3) * 2
            + (2 * n * 2 + 5 * 2)
            + (2 * n * 2 + 5 * 2)
            + n * 2
            + 3 * n * 2
            + 2 * n;
        let count = official.param_count().unwrap();
        assert_eq!(
            scratch_len(&official, n),
            Ok(2 * per_view + 2 * n * 3 + count)
        );
    }

    #[test]
    fn short_scratch_reports_needed_and_capacity() {
        let architecture = reference();
        let needed = scratch_len(&architecture, 4).unwrap();
        for capacity in [0, 1, needed - 1] {
            let scratch = vec![0.0; capacity];
            assert_eq!(
                param_grads(&architecture, 4, &scratch),
                Err(SslError::CapacityTooSmall { needed, capacity })
            );
        }
        let scratch = vec![0.0; needed + 5];
        assert_eq!(
            param_grads(&architecture, 4, &scratch).map(<[f32]>::len),
            Ok(54)
        );
    }

    /// An architecture whose public fields were changed after validation: a projector
    /// whose layers do not chain.
    fn broken() -> Architecture {
        let mut architecture = reference();
        architecture.projector =
            Stack::new(&[Layer::linear(3, 5), Layer::linear(4, 2).with_bias()]).unwrap();
        architecture
    }

    /// `Sgd::new` and `scratch_len` document "the architecture's errors": an invalid
    /// architecture is refused with the error `Architecture::validate` gives.
    #[test]
    fn invalid_architecture_is_refused_with_its_own_error() {
        let architecture = broken();
        let expected = architecture.validate();
        assert_eq!(
            expected,
            Err(SslError::InvalidParameter {
                name: "layers",
                reason: "a layer's d_in must equal the previous layer's d_out",
            })
        );
        let count = architecture.param_count().unwrap();
        assert_eq!(
            Sgd::new(&architecture, TrainConfig::default(), vec![0.0; count]).map(|_| ()),
            expected
        );
        assert_eq!(scratch_len(&architecture, 2).map(|_| ()), expected);
    }

    /// A momentum buffer whose mutable view is shorter than its shared view (the
    /// contract breach of `ShrinksWhenMutated` above): the step fails with the true
    /// lengths and changes nothing.
    #[test]
    fn momentum_storage_that_changed_length() {
        let architecture = reference();
        let count = architecture.param_count().unwrap();
        let params = params_for(&architecture);
        let mut head = SimSiamHead::new(architecture, params.clone()).unwrap();
        let mut sgd = Sgd::new(
            &architecture,
            TrainConfig::default(),
            ShrinksWhenMutated(vec![0.0; count]),
        )
        .unwrap();
        let (x1s, x2s) = (batch(&architecture, 3, 1), batch(&architecture, 3, 2));
        let mut scratch = vec![0.0; scratch_len(&architecture, 3).unwrap()];
        assert_eq!(
            sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut [], &mut []]),
            Err(SslError::DimensionMismatch {
                expected: count,
                got: count - 1
            })
        );
        assert_eq!(head.params(), &params[..]);
        assert_eq!(sgd.steps(), 0);
    }

    /// Parameters whose mutable view is shorter: likewise.
    #[test]
    fn parameter_storage_that_changed_length() {
        let architecture = reference();
        let count = architecture.param_count().unwrap();
        let params = params_for(&architecture);
        let mut head = SimSiamHead::new(architecture, ShrinksWhenMutated(params.clone())).unwrap();
        let mut sgd = Sgd::new(&architecture, TrainConfig::default(), vec![0.0; count]).unwrap();
        let (x1s, x2s) = (batch(&architecture, 3, 1), batch(&architecture, 3, 2));
        let mut scratch = vec![0.0; scratch_len(&architecture, 3).unwrap()];
        assert_eq!(
            sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut [], &mut []]),
            Err(SslError::DimensionMismatch {
                expected: count,
                got: count - 1
            })
        );
        assert_eq!(head.params(), &params[..]);
        assert_eq!(sgd.steps(), 0);
        assert!(sgd.momentum().iter().all(|m| *m == 0.0));
    }

    /// `Trainer::step` gives exactly the error `Sgd::step` gives on the same model and
    /// batch (with a scratch and input gradients of the right length), on both
    /// backends, and changes nothing the core would not.
    #[cfg(feature = "alloc")]
    #[test]
    fn trainer_errors_are_the_cores() {
        use simsiam::kernels::{Scalar, Simd};
        use simsiam::train::Trainer;
        use simsiam::{Backend, SimSiam};
        let architectures = [reference(), Architecture::official(3, 4, 2).unwrap()];
        for architecture in architectures {
            let params = params_for(&architecture);
            let d = architecture.d_encoder();
            let x1s = batch(&architecture, 3, 1);
            let x2s = batch(&architecture, 3, 2);
            let mut nan = x1s.clone();
            nan[2] = f32::NAN;
            let mut inf = x2s.clone();
            inf[0] = f32::NEG_INFINITY;
            let huge: Vec<f32> = x1s.iter().map(|x| x * 1e30).collect();
            let cases: Vec<(Vec<f32>, Vec<f32>)> = vec![
                (vec![], vec![]),
                (x1s[..d - 1].to_vec(), x2s[..d - 1].to_vec()),
                (x1s[..d].to_vec(), x2s[..d].to_vec()),
                (x1s.clone(), x2s[..2 * d].to_vec()),
                (x1s.clone(), vec![]),
                (nan, x2s.clone()),
                (x1s.clone(), inf),
                (huge, x2s.clone()),
                (x1s.clone(), x2s.clone()),
            ];
            for backend in [Backend::Simd, Backend::Scalar] {
                let mut model = SimSiam::from_params(architecture, params.clone())
                    .unwrap()
                    .with_backend(backend);
                let mut trainer = Trainer::new(&model, TrainConfig::default()).unwrap();
                let mut sgd = Sgd::new(
                    &architecture,
                    TrainConfig::default(),
                    vec![0.0; params.len()],
                )
                .unwrap();
                let mut errors = 0;
                for (x1, x2) in &cases {
                    let n = x1.len() / d;
                    let mut scratch = vec![0.0; scratch_len(&architecture, n).unwrap()];
                    let (mut g1, mut g2) = (vec![0.0; x1.len()], vec![0.0; x1.len()]);
                    let mut head = model.head().clone();
                    let core = match backend {
                        Backend::Simd => {
                            let mut head = head.clone().with_kernels::<Simd>();
                            sgd.clone()
                                .step(&mut head, x1, x2, &mut scratch, [&mut g1, &mut g2])
                        }
                        Backend::Scalar => {
                            let mut head = head.clone().with_kernels::<Scalar>();
                            sgd.clone()
                                .step(&mut head, x1, x2, &mut scratch, [&mut g1, &mut g2])
                        }
                    };
                    let before = model.head().params().to_vec();
                    let trained = trainer.step(&mut model, x1, x2);
                    match (core, trained) {
                        (Err(core), Err(trained)) => {
                            assert_eq!(trained, core, "{architecture:?}, {backend:?}");
                            assert_eq!(model.head().params(), &before[..]);
                            errors += 1;
                        }
                        (Ok(core), Ok(trained)) => {
                            assert_eq!(trained.to_bits(), core.to_bits());
                            // Keep the core optimiser in step with the trainer.
                            match backend {
                                Backend::Simd => {
                                    let mut h = head.with_kernels::<Simd>();
                                    sgd.step(&mut h, x1, x2, &mut scratch, [&mut [], &mut []])
                                        .unwrap();
                                    head = h.with_kernels();
                                }
                                Backend::Scalar => {
                                    let mut h = head.with_kernels::<Scalar>();
                                    sgd.step(&mut h, x1, x2, &mut scratch, [&mut [], &mut []])
                                        .unwrap();
                                    head = h.with_kernels();
                                }
                            }
                            assert_eq!(head.params(), model.head().params());
                        }
                        (core, trained) => panic!("core {core:?}, trainer {trained:?}"),
                    }
                }
                // One pair is a batch without BatchNorm; the last case is good.
                let one_pair_ok = usize::from(architecture == reference());
                assert_eq!(errors, cases.len() - 1 - one_pair_ok);
                assert_eq!(trainer.steps(), 1 + one_pair_ok as u64);
            }
        }
    }
}

/// Every error prints its cause and its payload, on one line: each arm of `SslError`'s
/// and `ImageError`'s `Display`, exactly.
#[test]
fn every_error_displays_its_payload() {
    use simsiam::ImageError;
    let cases: [(SslError, &str); 15] = [
        (
            SslError::DimensionMismatch {
                expected: 3,
                got: 4,
            },
            "dimension mismatch: expected 3, got 4",
        ),
        (
            SslError::InvalidParameter {
                name: "d_out",
                reason: "must be > 0",
            },
            "invalid parameter `d_out`: must be > 0",
        ),
        (
            SslError::NonFinite {
                location: "projector output",
            },
            "non-finite value at: projector output",
        ),
        (
            SslError::CapacityTooSmall {
                needed: 10,
                capacity: 7,
            },
            "capacity too small: need 10 f32, have 7",
        ),
        (
            SslError::OutOfMemory { floats: 123 },
            "out of memory: could not allocate 123 f32",
        ),
        (
            ImageError::Truncated {
                needed: 256,
                got: 100,
            }
            .into(),
            "invalid parameter image: truncated: needs 256 bytes, has 100",
        ),
        (
            ImageError::BadMagic.into(),
            "invalid parameter image: not a simsiam parameter image (bad magic)",
        ),
        (
            ImageError::UnsupportedVersion { version: 7 }.into(),
            "invalid parameter image: unsupported format version 7",
        ),
        (
            ImageError::UnsupportedElementType { code: 2 }.into(),
            "invalid parameter image: unsupported element type 2",
        ),
        (
            ImageError::ChecksumMismatch {
                stored: 0x1234,
                computed: 0xCBF4_3926,
            }
            .into(),
            "invalid parameter image: checksum mismatch: stored 0x00001234, computed 0xcbf43926",
        ),
        (
            ImageError::Misaligned.into(),
            "invalid parameter image: parameters not 4-byte aligned (or big-endian target): \
             cannot view in place",
        ),
        (
            ImageError::BadLayer {
                index: 3,
                reason: "every layer width must be > 0",
            }
            .into(),
            "invalid parameter image: layer 3: every layer width must be > 0",
        ),
        (
            ImageError::Inconsistent { field: "padding" }.into(),
            "invalid parameter image: inconsistent header field `padding`",
        ),
        // `From<ImageError>` wraps, and the inner error prints alone.
        (
            SslError::Image(ImageError::BadMagic),
            "invalid parameter image: not a simsiam parameter image (bad magic)",
        ),
        (
            SslError::Image(ImageError::Inconsistent {
                field: "header_len",
            }),
            "invalid parameter image: inconsistent header field `header_len`",
        ),
    ];
    for (error, want) in cases {
        assert_eq!(error.to_string(), want, "{error:?}");
        if let SslError::Image(inner) = error {
            let inner_text = inner.to_string();
            assert_eq!(
                Some(inner_text.as_str()),
                want.strip_prefix("invalid parameter image: "),
                "{inner:?}"
            );
        }
    }
}
