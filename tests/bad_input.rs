//! Every bad-input class the fuzz targets (`fuzz/`) explore, as ordinary tests, each
//! asserting the exact `SslError`, so that a regression shows in `cargo test` without
//! the fuzzer: zero and overflowing dimensions, wrong parameter-slice lengths,
//! non-finite parameters, wrong input and output lengths, NaN/±inf inputs, huge finite
//! inputs that overflow, short workspaces, fixed capacities that are too small, the
//! identity predictor with the wrong dimensions, and kernel twins with mismatched
//! lengths. Every head call runs on both backends.

mod support;

use simsiam::kernels::{scalar, simd};
use simsiam::model::Architecture;
use simsiam::{Backend, LcgRng, SimSiamConfig, SimSiamHead, SslError, init_params};
use support::twin::twin;

const BACKENDS: [Backend; 2] = [Backend::Simd, Backend::Scalar];

fn config(d_encoder: usize, d_projector: usize, d_predictor: usize, d_out: usize) -> SimSiamConfig {
    SimSiamConfig {
        d_encoder,
        d_projector,
        d_predictor,
        d_out,
    }
}

/// A small valid config: `d_predictor == 2·d_out`, so the identity predictor fits.
const SMALL: SimSiamConfig = SimSiamConfig {
    d_encoder: 5,
    d_projector: 7,
    d_predictor: 6,
    d_out: 3,
};

fn seeded(config: SimSiamConfig) -> Vec<f32> {
    let mut params = vec![0.0; config.param_count().unwrap()];
    init_params(&config, &mut LcgRng::new(3), &mut params).unwrap();
    params
}

fn mismatch(expected: usize, got: usize) -> SslError {
    SslError::DimensionMismatch { expected, got }
}

fn non_finite(location: &'static str) -> SslError {
    SslError::NonFinite { location }
}

const OVERFLOW: SslError = SslError::InvalidParameter {
    name: "config",
    reason: "parameter count overflows usize",
};

/// A workspace length (`4·d_out`, times the pairs of a batch group) that overflows.
const WORKSPACE_OVERFLOW: SslError = SslError::InvalidParameter {
    name: "d_out",
    reason: "workspace length overflows usize",
};

fn zero(name: &'static str) -> SslError {
    SslError::InvalidParameter {
        name,
        reason: "must be > 0",
    }
}

/// Every constructor and size query reports `expected` for `config`.
fn assert_config_error(config: SimSiamConfig, expected: SslError) {
    assert_eq!(config.param_count(), Err(expected), "{config:?}");
    let mut params = [0.0_f32; 16];
    assert_eq!(
        init_params(&config, &mut LcgRng::new(0), &mut params),
        Err(expected)
    );
    assert_eq!(
        SimSiamHead::from_params(config, &params[..]).map(|_| ()),
        Err(expected)
    );
    assert_eq!(
        SimSiamHead::<heapless::Vec<f32, 64>>::from_seed(config, &mut LcgRng::new(0)).map(|_| ()),
        Err(expected)
    );
    #[cfg(feature = "alloc")]
    assert_eq!(
        simsiam::SimSiam::new(config, &mut LcgRng::new(0)).map(|_| ()),
        Err(expected)
    );
}

#[test]
fn zero_dimension_in_each_position() {
    let names = ["d_encoder", "d_projector", "d_predictor", "d_out"];
    for (position, name) in names.into_iter().enumerate() {
        let mut dims = [4, 4, 4, 4];
        dims[position] = 0;
        let c = config(dims[0], dims[1], dims[2], dims[3]);
        assert_eq!(c.validate(), Err(zero(name)));
        assert_eq!(c.loss_workspace_len(), Err(zero(name)));
        assert_eq!(c.batch_loss_workspace_len(3), Err(zero(name)));
        assert_config_error(c, zero(name));
    }
    // The first zero field is reported, in field order.
    assert_config_error(config(0, 0, 0, 0), zero("d_encoder"));
    assert_config_error(config(1, 0, 0, 0), zero("d_projector"));
    assert_config_error(config(1, 1, 0, 0), zero("d_predictor"));
    // A zero dimension is reported before an overflowing product.
    assert_config_error(config(usize::MAX, usize::MAX, 1, 0), zero("d_out"));
}

#[test]
fn overflowing_products_in_each_layer() {
    let big = usize::MAX / 2 + 1;
    // d_projector × d_encoder, d_out × d_projector, d_predictor × d_out, and the sums.
    for c in [
        config(big, 2, 1, 1),
        config(1, big, 1, 2),
        config(1, 1, big, 2),
        config(2, 1, 1, big),
        config(usize::MAX, usize::MAX, usize::MAX, usize::MAX),
        config(1, usize::MAX, 1, 1),
        // Each product fits, their sum does not.
        config(1, usize::MAX / 3 + 1, 1, 1),
    ] {
        assert_config_error(c, OVERFLOW);
    }
    assert_eq!(
        config(1, 1, 1, big).loss_workspace_len(),
        Err(WORKSPACE_OVERFLOW)
    );
    assert_eq!(SMALL.batch_loss_workspace_len(usize::MAX), Ok(4 * 3 * 8));
    assert_eq!(
        config(1, 1, 1, usize::MAX / 16).batch_loss_workspace_len(8),
        Err(WORKSPACE_OVERFLOW)
    );
}

#[cfg(feature = "alloc")]
#[test]
fn huge_valid_config_is_out_of_memory_not_an_abort() {
    // 3·(usize::MAX / 5) + 5 floats: the count fits in usize, its bytes do not, so the
    // reservation fails before anything is allocated.
    let c = config(1, usize::MAX / 5, 1, 1);
    let floats = c.param_count().unwrap();
    assert_eq!(
        simsiam::SimSiam::new(c, &mut LcgRng::new(0)).map(|_| ()),
        Err(SslError::OutOfMemory { floats })
    );
}

#[test]
fn wrong_parameter_slice_lengths() {
    let count = SMALL.param_count().unwrap();
    let params = seeded(SMALL);
    for len in [0, 1, count - 1, count + 1, 2 * count] {
        let mut longer = params.clone();
        longer.resize(len, 0.25);
        assert_eq!(
            SimSiamHead::from_params(SMALL, &longer[..]).map(|_| ()),
            Err(mismatch(count, len))
        );
        assert_eq!(
            init_params(&SMALL, &mut LcgRng::new(0), &mut longer),
            Err(mismatch(count, len))
        );
    }
}

#[test]
fn non_finite_parameters() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for position in [0, 40, SMALL.param_count().unwrap() - 1] {
            let mut params = seeded(SMALL);
            params[position] = bad;
            assert_eq!(
                SimSiamHead::from_params(SMALL, &params[..]).map(|_| ()),
                Err(non_finite("params"))
            );
        }
    }
}

#[test]
fn wrong_input_and_output_lengths() {
    let params = seeded(SMALL);
    let (d_encoder, d_out) = (SMALL.d_encoder, SMALL.d_out);
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(SMALL, &params[..]).unwrap();
        let head = twin(&owner, backend);
        let z = vec![0.5; d_encoder];
        let mut out = vec![0.0; d_out];
        for len in [0, d_encoder - 1, d_encoder + 1] {
            let bad = vec![0.5; len];
            assert_eq!(
                head.project_into(&bad, &mut out, &mut []),
                Err(mismatch(d_encoder, len))
            );
            let mut ws = vec![0.0; 4 * d_out];
            assert_eq!(head.loss(&bad, &z, &mut ws), Err(mismatch(d_encoder, len)));
            assert_eq!(head.loss(&z, &bad, &mut ws), Err(mismatch(d_encoder, len)));
        }
        for len in [0, d_out - 1, d_out + 1] {
            let mut bad_out = vec![0.0; len];
            assert_eq!(
                head.project_into(&z, &mut bad_out, &mut []),
                Err(mismatch(d_out, len))
            );
            assert_eq!(
                head.predict_into(&out, &mut bad_out, &mut []),
                Err(mismatch(d_out, len))
            );
            let bad_p = vec![0.5; len];
            assert_eq!(
                head.predict_into(&bad_p, &mut out, &mut []),
                Err(mismatch(d_out, len))
            );
        }
        // The input is checked before the output.
        assert_eq!(
            head.project_into(&[], &mut [], &mut []),
            Err(mismatch(d_encoder, 0))
        );
    }
}

#[test]
fn wrong_batch_lengths() {
    let params = seeded(SMALL);
    let (d_encoder, d_out) = (SMALL.d_encoder, SMALL.d_out);
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(SMALL, &params[..]).unwrap();
        let head = twin(&owner, backend);
        // Not a whole number of rows: expected is the largest whole multiple below.
        let zs = vec![0.5; 2 * d_encoder + 1];
        let mut out = vec![0.0; 2 * d_out];
        assert_eq!(
            head.project_batch_into(&zs, &mut out, &mut []),
            Err(mismatch(2 * d_encoder, 2 * d_encoder + 1))
        );
        let ps = vec![0.5; 2 * d_out + 2];
        assert_eq!(
            head.predict_batch_into(&ps, &mut out, &mut []),
            Err(mismatch(2 * d_out, 2 * d_out + 2))
        );
        // Whole rows, wrong output length.
        let zs = vec![0.5; 2 * d_encoder];
        let mut short = vec![0.0; 2 * d_out - 1];
        assert_eq!(
            head.project_batch_into(&zs, &mut short, &mut []),
            Err(mismatch(2 * d_out, 2 * d_out - 1))
        );
        let ps = vec![0.5; 2 * d_out];
        assert_eq!(
            head.predict_batch_into(&ps, &mut short, &mut []),
            Err(mismatch(2 * d_out, 2 * d_out - 1))
        );
        // Batch loss: z1s then z2s must be losses.len() rows.
        let mut losses = [0.0; 2];
        let mut ws = vec![0.0; SMALL.batch_loss_workspace_len(2).unwrap()];
        let one_row = vec![0.5; d_encoder];
        assert_eq!(
            head.loss_batch_into(&one_row, &zs, &mut losses, &mut ws),
            Err(mismatch(2 * d_encoder, d_encoder))
        );
        assert_eq!(
            head.loss_batch_into(&zs, &one_row, &mut losses, &mut ws),
            Err(mismatch(2 * d_encoder, d_encoder))
        );
    }
}

#[test]
fn non_finite_inputs() {
    let params = seeded(SMALL);
    let (d_encoder, d_out) = (SMALL.d_encoder, SMALL.d_out);
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(SMALL, &params[..]).unwrap();
        let head = twin(&owner, backend);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let good = vec![0.5; d_encoder];
            let mut z = good.clone();
            z[d_encoder - 1] = bad;
            let mut p = vec![0.5; d_out];
            p[0] = bad;
            let mut out = vec![0.0; d_out];
            let mut ws = vec![0.0; 4 * d_out];
            assert_eq!(
                head.project_into(&z, &mut out, &mut []),
                Err(non_finite("z"))
            );
            assert_eq!(
                head.predict_into(&p, &mut out, &mut []),
                Err(non_finite("p"))
            );
            assert_eq!(head.loss(&z, &good, &mut ws), Err(non_finite("z1")));
            assert_eq!(head.loss(&good, &z, &mut ws), Err(non_finite("z2")));
            // Lengths and workspace are checked before values.
            assert_eq!(
                head.loss(&z, &good, &mut ws[..1]),
                Err(SslError::CapacityTooSmall {
                    needed: 4 * d_out,
                    capacity: 1
                })
            );

            let zs = [good.clone(), z.clone()].concat();
            let mut outs = vec![0.0; 2 * d_out];
            assert_eq!(
                head.project_batch_into(&zs, &mut outs, &mut []),
                Err(non_finite("z"))
            );
            let ps = [vec![0.5; d_out], p.clone()].concat();
            assert_eq!(
                head.predict_batch_into(&ps, &mut outs, &mut []),
                Err(non_finite("p"))
            );
            let goods = [good.clone(), good.clone()].concat();
            let mut losses = [0.0; 2];
            let mut ws = vec![0.0; SMALL.batch_loss_workspace_len(2).unwrap()];
            assert_eq!(
                head.loss_batch_into(&zs, &goods, &mut losses, &mut ws),
                Err(non_finite("z1"))
            );
            assert_eq!(
                head.loss_batch_into(&goods, &zs, &mut losses, &mut ws),
                Err(non_finite("z2"))
            );
        }
    }
}

#[cfg(feature = "alloc")]
#[test]
fn non_finite_inputs_through_the_alloc_api() {
    let model = simsiam::SimSiam::new(SMALL, &mut LcgRng::new(1)).unwrap();
    let good = vec![0.5; SMALL.d_encoder];
    let mut z = good.clone();
    z[0] = f32::NAN;
    assert_eq!(model.project(&z), Err(non_finite("z")));
    assert_eq!(model.predict(&[f32::INFINITY; 3]), Err(non_finite("p")));
    assert_eq!(model.loss(&good, &z), Err(non_finite("z2")));
    assert_eq!(model.project(&z[1..]), Err(mismatch(SMALL.d_encoder, 4)));
}

/// All weights `w`, all biases 0.
fn uniform_params(config: SimSiamConfig, w: f32) -> Vec<f32> {
    let mut params = Vec::new();
    for layer in Architecture::reference(config).unwrap().layers() {
        params.extend(std::iter::repeat_n(w, layer.d_out * layer.d_in));
        params.extend(std::iter::repeat_n(0.0, layer.d_out));
    }
    params
}

#[test]
fn huge_finite_inputs_that_overflow() {
    let params = uniform_params(SMALL, 1.0);
    let (d_encoder, d_out) = (SMALL.d_encoder, SMALL.d_out);
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(SMALL, &params[..]).unwrap();
        let head = twin(&owner, backend);
        let z = vec![f32::MAX; d_encoder];
        let mut out = vec![0.0; d_out];
        assert_eq!(
            head.project_into(&z, &mut out, &mut []),
            Err(non_finite("projector output"))
        );
        let mut ws = vec![0.0; 4 * d_out];
        let good = vec![0.5; d_encoder];
        assert_eq!(
            head.loss(&good, &z, &mut ws),
            Err(non_finite("projector output"))
        );
        let zs = [good.clone(), z.clone()].concat();
        let mut outs = vec![0.0; 2 * d_out];
        assert_eq!(
            head.project_batch_into(&zs, &mut outs, &mut []),
            Err(non_finite("projector output"))
        );
    }
    // Huge predictor weights overflow on a unit input.
    let mut params = uniform_params(SMALL, 1.0);
    let start = Architecture::reference(SMALL)
        .unwrap()
        .layers()
        .take(2)
        .map(|l| l.d_out * l.d_in + l.d_out)
        .sum::<usize>();
    params[start..].iter_mut().for_each(|w| {
        if *w != 0.0 {
            *w = 1e30;
        }
    });
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(SMALL, &params[..]).unwrap();
        let head = twin(&owner, backend);
        let mut out = vec![0.0; d_out];
        assert_eq!(
            head.predict_into(&[1.0, 0.0, 0.0], &mut out, &mut []),
            Err(non_finite("predictor output"))
        );
        let mut ws = vec![0.0; 4 * d_out];
        let good = vec![0.5; d_encoder];
        assert_eq!(
            head.loss(&good, &good, &mut ws),
            Err(non_finite("predictor output"))
        );
    }
}

/// Found by the `forward` fuzz target: a hidden pre-activation whose products overflow
/// with both signs is `inf − inf = NaN`, and ReLU as `f32::max` turned that NaN into 0,
/// so the call returned a finite, wrong `Ok` where the exact hidden value (`2·f32::MAX`)
/// overflows. It must be `NonFinite { location: "… output" }`.
#[test]
fn hidden_overflow_is_not_masked_by_relu() {
    let c = config(2, 1, 1, 1);
    // proj_w1 = [4, −4], proj_b1 = 0, proj_w2 = 1, proj_b2 = 0, predictor: identity-like.
    let params = [4.0, -4.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    let z = [f32::MAX, f32::MAX / 2.0];
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(c, &params[..]).unwrap();
        let head = twin(&owner, backend);
        let mut out = [0.0];
        assert_eq!(
            head.project_into(&z, &mut out, &mut []),
            Err(non_finite("projector output")),
            "{backend:?}"
        );
        let mut ws = [0.0; 4];
        assert_eq!(
            head.loss(&z, &[1.0, 0.0], &mut ws),
            Err(non_finite("projector output"))
        );
        let mut outs = [0.0; 3];
        let zs = [1.0, 0.0, f32::MAX, f32::MAX / 2.0, 0.0, 1.0];
        assert_eq!(
            head.project_batch_into(&zs, &mut outs, &mut []),
            Err(non_finite("projector output"))
        );
        // The public ReLU kernels keep their documented NaN → 0.
        let mut v = [f32::NAN, -1.0, 2.0];
        simd::relu(&mut v);
        assert_eq!(v, [0.0, 0.0, 2.0]);
        let mut v = [f32::NAN, -1.0, 2.0];
        scalar::relu(&mut v);
        assert_eq!(v, [0.0, 0.0, 2.0]);
    }
}

/// Found by the `forward` fuzz target (batch path, after the fix above): a hidden partial
/// sum that overflows to `−inf` although the exact pre-activation is positive
/// (`−1.5·MAX + MAX + MAX = 0.5·MAX`); ReLU turned `−inf` into 0 and the call returned
/// `Ok([0.0])` where the exact, representable result is `[1.0]`. It must be
/// `NonFinite`: the `f32` evaluation cannot know the answer.
#[test]
fn negative_overflow_is_not_masked_by_relu() {
    let c = config(3, 1, 1, 1);
    let params = [-1.5, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    let z = [f32::MAX; 3];
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(c, &params[..]).unwrap();
        let head = twin(&owner, backend);
        let mut out = [0.0];
        assert_eq!(
            head.project_into(&z, &mut out, &mut []),
            Err(non_finite("projector output")),
            "{backend:?}"
        );
        let mut ws = [0.0; 4];
        assert_eq!(
            head.loss(&[1.0; 3], &z, &mut ws),
            Err(non_finite("projector output"))
        );
        // One row (pair path) and three rows (lanes path).
        for n in [1, 3] {
            let zs = z.repeat(n);
            let mut outs = vec![0.0; n];
            assert_eq!(
                head.project_batch_into(&zs, &mut outs, &mut []),
                Err(non_finite("projector output")),
                "{backend:?}, {n} rows"
            );
        }
    }
}

#[test]
fn short_workspaces() {
    let params = seeded(SMALL);
    let d_out = SMALL.d_out;
    let z = vec![0.5; SMALL.d_encoder];
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(SMALL, &params[..]).unwrap();
        let head = twin(&owner, backend);
        for len in [0, 1, 4 * d_out - 1] {
            let mut ws = vec![0.0; len];
            assert_eq!(
                head.loss(&z, &z, &mut ws),
                Err(SslError::CapacityTooSmall {
                    needed: 4 * d_out,
                    capacity: len
                })
            );
        }
        let zs = [z.clone(), z.clone(), z.clone()].concat();
        let mut losses = [0.0; 3];
        let needed = SMALL.batch_loss_workspace_len(3).unwrap();
        let mut ws = vec![0.0; needed - 1];
        assert_eq!(
            head.loss_batch_into(&zs, &zs, &mut losses, &mut ws),
            Err(SslError::CapacityTooSmall {
                needed,
                capacity: needed - 1
            })
        );
    }
}

#[test]
fn fixed_capacity_too_small() {
    let count = SMALL.param_count().unwrap();
    assert_eq!(
        SimSiamHead::<heapless::Vec<f32, 10>>::from_seed(SMALL, &mut LcgRng::new(0)).map(|_| ()),
        Err(SslError::CapacityTooSmall {
            needed: count,
            capacity: 10
        })
    );
    // An output buffer with too little room is a typed error on every call that writes
    // one (the `*_heapless` calls these checks were written for are gone: a fixed-size
    // output is now a slice of it).
    let params = seeded(SMALL);
    let z = vec![0.5; SMALL.d_encoder];
    let too_small = mismatch(SMALL.d_out, 2);
    for backend in BACKENDS {
        let owner = SimSiamHead::from_params(SMALL, &params[..]).unwrap();
        let head = twin(&owner, backend);
        let mut out = [0.0_f32; 2];
        assert_eq!(head.project_into(&z, &mut out, &mut []), Err(too_small));
        assert_eq!(
            head.predict_into(&[0.5; 3], &mut out, &mut []),
            Err(too_small)
        );
        // The input is checked first (the documented order): a bad input with a short
        // output is the input's error.
        assert_eq!(
            head.project_into(&[], &mut out, &mut []),
            Err(mismatch(SMALL.d_encoder, 0))
        );
    }
}

#[test]
fn identity_predictor_with_wrong_dimensions() {
    let expected = SslError::InvalidParameter {
        name: "d_predictor",
        reason: "identity predictor requires d_predictor == 2 * d_out",
    };
    for c in [config(5, 7, 5, 3), config(5, 7, 7, 3), config(2, 2, 1, 1)] {
        let mut head = SimSiamHead::from_params(c, seeded(c)).unwrap();
        let before = head.params().to_vec();
        assert_eq!(head.set_identity_predictor(), Err(expected));
        assert_eq!(
            head.params(),
            &before[..],
            "an error leaves the weights alone"
        );
    }
    #[cfg(feature = "alloc")]
    {
        let mut model = simsiam::SimSiam::new(config(4, 4, 4, 4), &mut LcgRng::new(0)).unwrap();
        assert_eq!(model.set_identity_predictor(), Err(expected));
    }
}

#[test]
fn kernel_twins_with_mismatched_lengths() {
    let (w, x, b) = ([0.5_f32; 12], [1.0_f32; 4], [0.0_f32; 3]);
    let mut y = [0.0_f32; 3];
    assert_eq!(simd::dot(&x, &x[..3]), Err(mismatch(4, 3)));
    assert_eq!(scalar::dot(&x, &x[..3]), Err(mismatch(4, 3)));
    assert_eq!(simd::dot(&[], &x), Err(mismatch(0, 4)));
    assert_eq!(scalar::dot(&[], &x), Err(mismatch(0, 4)));
    // Bias length, then weight length (rows × cols).
    assert_eq!(
        simd::matvec_bias(&w, &x, &b[..2], &mut y),
        Err(mismatch(3, 2))
    );
    assert_eq!(
        scalar::matvec_bias(&w, &x, &b[..2], &mut y),
        Err(mismatch(3, 2))
    );
    assert_eq!(
        simd::matvec_bias(&w[..11], &x, &b, &mut y),
        Err(mismatch(12, 11))
    );
    assert_eq!(
        scalar::matvec_bias(&w[..11], &x, &b, &mut y),
        Err(mismatch(12, 11))
    );
    assert_eq!(
        simd::matvec_bias_relu(&w, &x[..3], &b, &mut y),
        Err(mismatch(9, 12))
    );
    assert_eq!(
        scalar::matvec_bias_relu(&w, &x[..3], &b, &mut y),
        Err(mismatch(9, 12))
    );
    assert_eq!(
        simd::matvec_accumulate(&w, &x, &mut y[..2]),
        Err(mismatch(8, 12))
    );
    assert_eq!(
        scalar::matvec_accumulate(&w, &x, &mut y[..2]),
        Err(mismatch(8, 12))
    );
    assert_eq!(y, [0.0; 3], "an error leaves the output alone");
}
