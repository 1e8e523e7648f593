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
    // Eight pairs' outputs, then the lane blocks (pack 5, hidden 7, rows 3, 15 of slack).
    assert_eq!(
        SMALL.batch_loss_workspace_len(usize::MAX),
        Ok(4 * 3 * 8 + 16 * (5 + 7 + 3) + 15)
    );
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
        // Three rows: the lanes path, whose blocks live in the workspace.
        let mut ws = vec![0.0; owner.architecture().lanes_len()];
        assert_eq!(
            head.project_batch_into(&zs, &mut outs, &mut ws),
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
            let mut ws = vec![0.0; owner.architecture().workspace_len(n).unwrap()];
            assert_eq!(
                head.project_batch_into(&zs, &mut outs, &mut ws),
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

/// Training (`simsiam::train`): every bad input of `TrainConfig`, `Sgd::new` and
/// `Sgd::step` with its exact error, on both kernel twins and on heads with and without
/// BatchNorm; after every failed step the head (parameters, BatchNorm counters) and the
/// optimiser (momentum, steps, lr) are bit for bit what they were.
///
/// Not under miri (~280 s there, and no path the interpreter would see that
/// `tests/no_alloc.rs` and `tests/train.rs` do not already run under it).
#[cfg(not(miri))]
mod training {
    use super::*;
    use simsiam::kernels::{Kernels, Scalar, Simd};
    use simsiam::model::{BatchNorm, Layer, MAX_LAYERS, Stack};
    use simsiam::train::{Sgd, TrainConfig, scratch_len};

    /// Pairs per batch in these tests.
    const N: usize = 3;

    fn invalid(name: &'static str, reason: &'static str) -> SslError {
        SslError::InvalidParameter { name, reason }
    }

    const WRONG_HEAD: SslError = SslError::InvalidParameter {
        name: "head",
        reason: "not the architecture this optimiser was made for",
    };
    const BAD_X1S: SslError = SslError::InvalidParameter {
        name: "x1s",
        reason: "must hold n ≥ 1 rows of d_encoder",
    };
    const ONE_PAIR: SslError = SslError::InvalidParameter {
        name: "n",
        reason: "BatchNorm in training mode needs at least 2 pairs per batch",
    };

    fn reference() -> Architecture {
        Architecture::reference(SMALL).unwrap()
    }

    fn official() -> Architecture {
        Architecture::official(5, 4, 3).unwrap()
    }

    /// Parameters for any architecture: small normal values, running variances positive.
    fn params_for(architecture: &Architecture, seed: u64) -> Vec<f32> {
        let mut params = vec![0.0_f32; architecture.param_count().unwrap()];
        LcgRng::new(seed).fill_normal(&mut params);
        params.iter_mut().for_each(|p| *p = p.abs() * 0.5 + 0.01);
        params
    }

    fn batch(architecture: &Architecture, n: usize, seed: u64) -> Vec<f32> {
        let mut x = vec![0.0_f32; n * architecture.d_encoder()];
        LcgRng::new(seed).fill_normal(&mut x);
        x
    }

    /// A head that took one good step (so the momentum, the counters and the step count
    /// are not at their initial values), with its optimiser.
    fn trained<K: Kernels>(
        architecture: &Architecture,
        config: TrainConfig,
    ) -> (SimSiamHead<Vec<f32>, K>, Sgd<Vec<f32>>) {
        let params = params_for(architecture, 5);
        let mut head = SimSiamHead::new(*architecture, params.clone())
            .unwrap()
            .with_kernels::<K>();
        let mut sgd = Sgd::new(architecture, config, vec![0.0; params.len()]).unwrap();
        let (x1s, x2s) = (batch(architecture, N, 1), batch(architecture, N, 2));
        let mut scratch = vec![0.0; scratch_len(architecture, N).unwrap()];
        sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut [], &mut []])
            .unwrap();
        assert_eq!(sgd.steps(), 1);
        (head, sgd)
    }

    /// Everything a step may change, bit for bit.
    #[derive(Debug, PartialEq)]
    struct State {
        params: Vec<u32>,
        batches_tracked: [u64; MAX_LAYERS],
        momentum: Vec<u32>,
        steps: u64,
        lr: u32,
    }

    fn state<K: Kernels>(head: &SimSiamHead<Vec<f32>, K>, sgd: &Sgd<Vec<f32>>) -> State {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect();
        State {
            params: bits(head.params()),
            batches_tracked: *head.batches_tracked(),
            momentum: bits(sgd.momentum()),
            steps: sgd.steps(),
            lr: sgd.lr().to_bits(),
        }
    }

    /// One step with these inputs fails with `expected` and changes nothing.
    fn assert_step_fails<K: Kernels>(
        head: &mut SimSiamHead<Vec<f32>, K>,
        sgd: &mut Sgd<Vec<f32>>,
        [x1s, x2s]: [&[f32]; 2],
        scratch_len: usize,
        [g1_len, g2_len]: [usize; 2],
        expected: SslError,
    ) {
        let before = state(head, sgd);
        let mut scratch = vec![0.0; scratch_len];
        let (mut g1, mut g2) = (vec![0.0; g1_len], vec![0.0; g2_len]);
        let result = sgd.step(head, x1s, x2s, &mut scratch, [&mut g1, &mut g2]);
        assert_eq!(result, Err(expected), "{:?}", head.architecture());
        assert_eq!(
            state(head, sgd),
            before,
            "a failed step ({expected:?}) changed the state"
        );
    }

    /// The good inputs of a step on `architecture`: `x1s`, `x2s`, the scratch length.
    fn good(architecture: &Architecture) -> (Vec<f32>, Vec<f32>, usize) {
        (
            batch(architecture, N, 3),
            batch(architecture, N, 4),
            scratch_len(architecture, N).unwrap(),
        )
    }

    #[test]
    fn train_config_fields_out_of_range() {
        let lr = invalid("lr", "must be finite and >= 0");
        let momentum = invalid("momentum", "must be finite and in [0, 1)");
        let weight_decay = invalid("weight_decay", "must be finite and >= 0");
        let bn_momentum = invalid("batch_norm_momentum", "must be finite and in [0, 1]");
        let base = TrainConfig::default();
        let mut cases = Vec::new();
        for bad in [-1e-3, -f32::MAX, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            cases.push((TrainConfig { lr: bad, ..base }, lr));
            cases.push((
                TrainConfig {
                    weight_decay: bad,
                    ..base
                },
                weight_decay,
            ));
        }
        for bad in [1.0, 1.5, -1e-3, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            cases.push((
                TrainConfig {
                    momentum: bad,
                    ..base
                },
                momentum,
            ));
        }
        for bad in [1.0 + f32::EPSILON, 2.0, -1e-3, f32::NAN, f32::INFINITY] {
            let config = TrainConfig {
                batch_norm_momentum: bad,
                ..base
            };
            cases.push((config, bn_momentum));
        }
        // The first field at fault, in the documented order.
        let all_bad = TrainConfig {
            lr: f32::NAN,
            momentum: 2.0,
            weight_decay: -1.0,
            batch_norm_momentum: 2.0,
            ..base
        };
        cases.push((all_bad, lr));
        cases.push((TrainConfig { lr: 0.1, ..all_bad }, momentum));
        cases.push((
            TrainConfig {
                lr: 0.1,
                momentum: 0.0,
                ..all_bad
            },
            weight_decay,
        ));
        for architecture in [reference(), official()] {
            let count = architecture.param_count().unwrap();
            for (config, expected) in cases.iter().copied() {
                assert_eq!(config.validate(), Err(expected), "{config:?}");
                assert_eq!(
                    Sgd::new(&architecture, config, vec![0.0; count]).map(|_| ()),
                    Err(expected),
                    "{config:?}"
                );
                // A config error comes before a wrong momentum length.
                assert_eq!(
                    Sgd::new(&architecture, config, vec![0.0; count + 1]).map(|_| ()),
                    Err(expected)
                );
            }
        }
        // The edges that are valid.
        for config in [
            TrainConfig { lr: 0.0, ..base },
            TrainConfig {
                momentum: 0.0,
                ..base
            },
            TrainConfig {
                momentum: 1.0 - f32::EPSILON,
                ..base
            },
            TrainConfig {
                weight_decay: 0.0,
                ..base
            },
            TrainConfig {
                batch_norm_momentum: 0.0,
                ..base
            },
            TrainConfig {
                batch_norm_momentum: 1.0,
                ..base
            },
            TrainConfig { lr: -0.0, ..base },
        ] {
            assert_eq!(config.validate(), Ok(()), "{config:?}");
        }
    }

    #[test]
    fn momentum_buffer_of_the_wrong_length() {
        for architecture in [reference(), official()] {
            let count = architecture.param_count().unwrap();
            for len in [0, 1, count - 1, count + 1, 2 * count] {
                assert_eq!(
                    Sgd::new(&architecture, TrainConfig::default(), vec![0.0; len]).map(|_| ()),
                    Err(mismatch(count, len))
                );
            }
            let mut short = [0.0_f32; 4];
            assert_eq!(
                Sgd::new(&architecture, TrainConfig::default(), &mut short[..]).map(|_| ()),
                Err(mismatch(count, 4))
            );
        }
    }

    fn step_on_another_architecture<K: Kernels>() {
        let (mut head, mut sgd) = trained::<K>(&reference(), TrainConfig::default());
        let others = [
            Architecture::reference(config(5, 7, 6, 4)).unwrap(),
            // Same widths and parameter count, another layer kind.
            Architecture::new(reference().projector, reference().predictor, true, false).unwrap(),
        ];
        for other in others {
            let mut sgd_other = Sgd::new(
                &other,
                TrainConfig::default(),
                vec![0.0; other.param_count().unwrap()],
            )
            .unwrap();
            let (x1s, x2s, len) = good(&reference());
            assert_step_fails(
                &mut head,
                &mut sgd_other,
                [&x1s, &x2s],
                len,
                [0, 0],
                WRONG_HEAD,
            );
            // The head of the other architecture on this optimiser, too.
            let mut other_head = SimSiamHead::new(other, params_for(&other, 1))
                .unwrap()
                .with_kernels::<K>();
            let (x1s, x2s, len) = good(&other);
            assert_step_fails(
                &mut other_head,
                &mut sgd,
                [&x1s, &x2s],
                len,
                [0, 0],
                WRONG_HEAD,
            );
        }
    }

    fn bad_learning_rates<K: Kernels>() {
        let lr = invalid("lr", "must be finite and >= 0");
        for architecture in [reference(), official()] {
            let (mut head, mut sgd) = trained::<K>(&architecture, TrainConfig::default());
            let (x1s, x2s, len) = good(&architecture);
            for bad in [-1e-6, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::MAX] {
                sgd.set_lr(bad);
                assert_eq!(sgd.lr().to_bits(), bad.to_bits());
                assert_step_fails(&mut head, &mut sgd, [&x1s, &x2s], len, [0, 0], lr);
                // The lr comes before the batch.
                assert_step_fails(&mut head, &mut sgd, [&[], &x2s], 0, [0, 0], lr);
            }
            sgd.set_lr(0.01);
            let mut scratch = vec![0.0; len];
            sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut [], &mut []])
                .unwrap();
            assert_eq!(sgd.steps(), 2);
        }
    }

    fn bad_batch_shapes<K: Kernels>() {
        for architecture in [reference(), official()] {
            let (mut head, mut sgd) = trained::<K>(&architecture, TrainConfig::default());
            let d = architecture.d_encoder();
            let (x1s, x2s, len) = good(&architecture);
            let n_d = x1s.len();
            // x1s empty or not a whole number of rows.
            for x1_len in [0, 1, d - 1, d + 1, n_d - 1, n_d + 1] {
                let x1 = batch(&architecture, 4, 9);
                let x1 = &x1[..x1_len];
                assert_step_fails(&mut head, &mut sgd, [x1, x1], len, [0, 0], BAD_X1S);
            }
            // x2s of another length than x1s.
            for x2_len in [0, 1, d, n_d - 1, n_d + 1, n_d + d] {
                let x2 = batch(&architecture, N + 1, 9);
                let x2 = &x2[..x2_len];
                assert_step_fails(
                    &mut head,
                    &mut sgd,
                    [&x1s, x2],
                    len,
                    [0, 0],
                    mismatch(n_d, x2_len),
                );
            }
            // Input gradients neither empty nor n·d_encoder long, either of them.
            for grad_len in [1, d, n_d - 1, n_d + 1, 2 * n_d] {
                for lens in [
                    [grad_len, 0],
                    [0, grad_len],
                    [n_d, grad_len],
                    [grad_len, n_d],
                ] {
                    assert_step_fails(
                        &mut head,
                        &mut sgd,
                        [&x1s, &x2s],
                        len,
                        lens,
                        mismatch(n_d, grad_len),
                    );
                }
            }
            // Lengths are checked before values and the scratch.
            let mut nan = x1s.clone();
            nan[0] = f32::NAN;
            assert_step_fails(
                &mut head,
                &mut sgd,
                [&nan, &x2s[1..]],
                0,
                [0, 0],
                mismatch(n_d, n_d - 1),
            );
            assert_step_fails(
                &mut head,
                &mut sgd,
                [&nan, &x2s],
                0,
                [1, 0],
                mismatch(n_d, 1),
            );
            // Right lengths: a good step.
            let mut scratch = vec![0.0; len];
            let (mut g1, mut g2) = (vec![0.0; n_d], vec![0.0; n_d]);
            sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut g1, &mut g2])
                .unwrap();
            sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut [], &mut g2])
                .unwrap();
        }
    }

    fn one_pair_with_batch_norm<K: Kernels>() {
        let custom = Architecture::new(
            Stack::new(&[Layer::linear(5, 3).with_bias().with_relu()]).unwrap(),
            Stack::new(&[Layer::linear(3, 3).with_batch_norm(BatchNorm::PLAIN)]).unwrap(),
            true,
            true,
        )
        .unwrap();
        for architecture in [
            official(),
            Architecture::lightly(5, 4, 3, 2).unwrap(),
            custom,
        ] {
            let (mut head, mut sgd) = trained::<K>(&architecture, TrainConfig::default());
            let x = batch(&architecture, 1, 3);
            let len = scratch_len(&architecture, 1).unwrap();
            assert_step_fails(&mut head, &mut sgd, [&x, &x], len, [0, 0], ONE_PAIR);
            // Before the x2s length and the input gradients.
            assert_step_fails(&mut head, &mut sgd, [&x, &[]], len, [1, 0], ONE_PAIR);
        }
        // Without BatchNorm one pair is a batch.
        let (mut head, mut sgd) = trained::<K>(&reference(), TrainConfig::default());
        let x = batch(&reference(), 1, 3);
        let mut scratch = vec![0.0; scratch_len(&reference(), 1).unwrap()];
        let loss = sgd
            .step(&mut head, &x, &x, &mut scratch, [&mut [], &mut []])
            .unwrap();
        assert!(loss.is_finite());
    }

    fn short_scratch<K: Kernels>() {
        for architecture in [reference(), official()] {
            let (mut head, mut sgd) = trained::<K>(&architecture, TrainConfig::default());
            let (x1s, x2s, needed) = good(&architecture);
            for capacity in [0, 1, needed / 2, needed - 1] {
                assert_step_fails(
                    &mut head,
                    &mut sgd,
                    [&x1s, &x2s],
                    capacity,
                    [0, 0],
                    SslError::CapacityTooSmall { needed, capacity },
                );
            }
            // Longer than needed is fine.
            let mut scratch = vec![0.0; needed + 7];
            sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut [], &mut []])
                .unwrap();
        }
    }

    fn non_finite_training_inputs<K: Kernels>() {
        for architecture in [reference(), official()] {
            let (mut head, mut sgd) = trained::<K>(&architecture, TrainConfig::default());
            let (x1s, x2s, len) = good(&architecture);
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for at in [0, x1s.len() / 2, x1s.len() - 1] {
                    let mut x1 = x1s.clone();
                    x1[at] = bad;
                    let mut x2 = x2s.clone();
                    x2[at] = bad;
                    let x1s_error = non_finite("x1s");
                    assert_step_fails(&mut head, &mut sgd, [&x1, &x2s], len, [0, 0], x1s_error);
                    assert_step_fails(
                        &mut head,
                        &mut sgd,
                        [&x1s, &x2],
                        len,
                        [0, 0],
                        non_finite("x2s"),
                    );
                    // x1s first; both before the scratch.
                    assert_step_fails(&mut head, &mut sgd, [&x1, &x2], 0, [0, 0], x1s_error);
                    assert_step_fails(
                        &mut head,
                        &mut sgd,
                        [&x1s, &x2],
                        0,
                        [0, 0],
                        non_finite("x2s"),
                    );
                }
            }
        }
    }

    /// Steps whose arithmetic overflows: each gives its documented `NonFinite` location
    /// and changes nothing.
    fn overflowing_steps<K: Kernels>() {
        // Huge parameters: the projector's output overflows.
        let architecture = reference();
        let (mut head, mut sgd) = trained::<K>(&architecture, TrainConfig::default());
        let (x1s, x2s, len) = good(&architecture);
        let huge = vec![1e30_f32; head.params().len()];
        head.params_mut().copy_from_slice(&huge);
        let location = non_finite("projector output");
        assert_step_fails(&mut head, &mut sgd, [&x1s, &x2s], len, [0, 0], location);
        // Huge predictor weights only: the predictor's output overflows.
        head.params_mut()
            .copy_from_slice(&params_for(&architecture, 5));
        let projector_len: usize = architecture
            .projector
            .layers()
            .iter()
            .map(|l| l.param_count().unwrap())
            .sum();
        head.params_mut()[projector_len..].fill(1e30);
        let location = non_finite("predictor output");
        assert_step_fails(&mut head, &mut sgd, [&x1s, &x2s], len, [0, 0], location);

        // A huge lr (or weight decay): the updated weights overflow.
        for config in [
            TrainConfig {
                lr: f32::MAX,
                weight_decay: 1.0,
                ..TrainConfig::default()
            },
            TrainConfig {
                lr: 1e10,
                weight_decay: 1e30,
                ..TrainConfig::default()
            },
        ] {
            for architecture in [reference(), official()] {
                // Its first step fails: a fresh head and optimiser.
                let params = params_for(&architecture, 5);
                let count = params.len();
                let mut head = SimSiamHead::new(architecture, params)
                    .unwrap()
                    .with_kernels::<K>();
                let mut sgd = Sgd::new(&architecture, config, vec![0.0; count]).unwrap();
                let (x1s, x2s, len) = good(&architecture);
                assert_step_fails(
                    &mut head,
                    &mut sgd,
                    [&x1s, &x2s],
                    len,
                    [0, 0],
                    non_finite("update"),
                );
            }
        }
        // A huge lr set later (a weight decay of 10 makes some |lr·buf| > f32::MAX).
        let decay = TrainConfig {
            weight_decay: 10.0,
            ..TrainConfig::default()
        };
        let (mut head, mut sgd) = trained::<K>(&official(), decay);
        let (x1s, x2s, len) = good(&official());
        sgd.set_lr(f32::MAX);
        assert_step_fails(
            &mut head,
            &mut sgd,
            [&x1s, &x2s],
            len,
            [0, 0],
            non_finite("update"),
        );

        // Inputs whose batch variance overflows: BatchNorm's output stays finite
        // (1/√∞ = 0), the running variance does not. At lr 0 without weight decay no
        // weight can overflow: the error is the running statistics'.
        let frozen = TrainConfig {
            lr: 0.0,
            weight_decay: 0.0,
            ..TrainConfig::default()
        };
        let (mut head, mut sgd) = trained::<K>(&official(), frozen);
        let (x1s, x2s, len) = good(&official());
        let x1: Vec<f32> = x1s.iter().map(|x| x * 1e19).collect();
        assert_step_fails(
            &mut head,
            &mut sgd,
            [&x1, &x2s],
            len,
            [0, 0],
            non_finite("update"),
        );

        // Parameter gradients that overflow: a BatchNorm γ of 1e38 on a batch of
        // variance far below eps.
        let architecture = Architecture::new(
            Stack::new(&[Layer::linear(1, 2)]).unwrap(),
            Stack::new(&[Layer::linear(2, 2).with_batch_norm(BatchNorm::AFFINE)]).unwrap(),
            false,
            false,
        )
        .unwrap();
        // W1, W2, γ, β, running mean, running variance.
        let params = vec![
            1.0, 2.0, 1.0, 0.5, -0.5, 1.0, 1e38, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0,
        ];
        let mut head = SimSiamHead::new(architecture, params)
            .unwrap()
            .with_kernels::<K>();
        let mut sgd = Sgd::new(&architecture, TrainConfig::default(), vec![0.0; 14]).unwrap();
        let len = scratch_len(&architecture, 2).unwrap();
        let (x1, x2) = ([1e-30, -1e-30], [2e-30, -1e-30]);
        assert_step_fails(
            &mut head,
            &mut sgd,
            [&x1, &x2],
            len,
            [2, 2],
            non_finite("gradients"),
        );
        // Without input gradients: the parameter gradients' own error, not the update's.
        assert_step_fails(
            &mut head,
            &mut sgd,
            [&x1, &x2],
            len,
            [0, 0],
            non_finite("gradients"),
        );
    }

    /// Input gradients `dL/dx1s` that overflow (huge weights on inputs whose projection
    /// is barely above the normalisation floor): the step must not report `Ok` with
    /// non-finite input gradients; like the parameter gradients it fails with
    /// `NonFinite { location: "gradients" }` and changes nothing.
    fn overflowing_input_gradients<K: Kernels>() {
        let architecture = Architecture::new(
            Stack::new(&[Layer::linear(2, 2)]).unwrap(),
            Stack::new(&[Layer::linear(2, 2)]).unwrap(),
            true,
            true,
        )
        .unwrap();
        // W1 = 1e29·I, W2 swaps the two coordinates.
        let params = vec![1e29, 0.0, 0.0, 1e29, 0.0, 1.0, 1.0, 0.0];
        let mut head = SimSiamHead::new(architecture, params)
            .unwrap()
            .with_kernels::<K>();
        let mut sgd = Sgd::new(&architecture, TrainConfig::default(), vec![0.0; 8]).unwrap();
        let len = scratch_len(&architecture, 1).unwrap();
        let x = [1e-40, 2e-40];
        // Without input gradients the step is finite.
        let mut scratch = vec![0.0; len];
        let mut copy = head.clone();
        let mut sgd_copy = sgd.clone();
        assert!(
            sgd_copy
                .step(&mut copy, &x, &x, &mut scratch, [&mut [], &mut []])
                .is_ok()
        );
        assert_step_fails(
            &mut head,
            &mut sgd,
            [&x, &x],
            len,
            [2, 2],
            non_finite("gradients"),
        );
        assert_step_fails(
            &mut head,
            &mut sgd,
            [&x, &x],
            len,
            [2, 0],
            non_finite("gradients"),
        );
    }

    macro_rules! on_both_twins {
        ($($name:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    super::training::$name::<Simd>();
                    super::training::$name::<Scalar>();
                }
            )*
        };
    }

    mod twins {
        use super::{Scalar, Simd};
        on_both_twins!(
            step_on_another_architecture,
            bad_learning_rates,
            bad_batch_shapes,
            one_pair_with_batch_norm,
            short_scratch,
            non_finite_training_inputs,
            overflowing_steps,
            overflowing_input_gradients,
        );
    }

    /// `Trainer::step` documents "on an error the model and the trainer are unchanged":
    /// what the trainer shows of the last step (`input_grads`, `projections`) is still
    /// the last good step's after a failed one, whether the failed batch had another
    /// size (checked before any arithmetic) or the same (failing in the update).
    #[cfg(feature = "alloc")]
    #[test]
    fn trainer_failed_step_keeps_the_last_steps_outputs() {
        use simsiam::SimSiam;
        use simsiam::train::Trainer;
        let architecture = official();
        let model_params = params_for(&architecture, 5);
        let mut model = SimSiam::from_params(architecture, model_params).unwrap();
        let config = TrainConfig {
            weight_decay: 10.0,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(&model, config).unwrap();
        let (x1s, x2s, _) = good(&architecture);
        trainer.step(&mut model, &x1s, &x2s).unwrap();
        let shown = |t: &Trainer| {
            let (g1, g2) = t.input_grads();
            let (z1, z2) = t.projections();
            [g1.to_vec(), g2.to_vec(), z1.to_vec(), z2.to_vec()]
        };
        let last = shown(&trainer);
        assert!(last.iter().all(|v| !v.is_empty()));
        let d = architecture.d_encoder();
        let mut nan = x1s[..2 * d].to_vec();
        nan[0] = f32::NAN;
        assert_eq!(
            trainer.step(&mut model, &nan, &x2s[..2 * d]),
            Err(non_finite("x1s"))
        );
        assert_eq!(shown(&trainer), last, "after a failed step of another size");
        trainer.set_lr(f32::MAX);
        assert_eq!(
            trainer.step(&mut model, &x2s, &x1s),
            Err(non_finite("update"))
        );
        assert_eq!(
            shown(&trainer),
            last,
            "after a step that failed in the update"
        );
    }

    /// The `alloc` trainer reports the same errors and changes neither the model nor
    /// itself.
    #[cfg(feature = "alloc")]
    #[test]
    fn trainer_errors() {
        use simsiam::SimSiam;
        use simsiam::train::Trainer;
        for architecture in [reference(), official()] {
            let params = params_for(&architecture, 5);
            for backend in BACKENDS {
                let mut model = SimSiam::from_params(architecture, params.clone())
                    .unwrap()
                    .with_backend(backend);
                assert_eq!(
                    Trainer::new(
                        &model,
                        TrainConfig {
                            momentum: 1.0,
                            ..TrainConfig::default()
                        }
                    )
                    .map(|_| ()),
                    Err(invalid("momentum", "must be finite and in [0, 1)"))
                );
                let mut trainer = Trainer::new(&model, TrainConfig::default()).unwrap();
                let (x1s, x2s, _) = good(&architecture);
                trainer.step(&mut model, &x1s, &x2s).unwrap();
                let d = architecture.d_encoder();
                let mut nan = x1s.clone();
                nan[1] = f32::NAN;
                let mut inf = x2s.clone();
                inf[2] = f32::INFINITY;
                let huge: Vec<f32> = x1s.iter().map(|x| x * 1e19).collect();
                let mut cases: Vec<(Vec<f32>, Vec<f32>, SslError)> = vec![
                    (vec![], vec![], BAD_X1S),
                    (x1s[..d + 1].to_vec(), x2s[..d + 1].to_vec(), BAD_X1S),
                    (x1s.clone(), x2s[..d].to_vec(), mismatch(x1s.len(), d)),
                    (nan.clone(), x2s.clone(), non_finite("x1s")),
                    (x1s.clone(), inf, non_finite("x2s")),
                ];
                if architecture == official() {
                    cases.push((x1s[..d].to_vec(), x2s[..d].to_vec(), ONE_PAIR));
                    cases.push((huge, x2s.clone(), non_finite("update")));
                }
                for (x1, x2, expected) in cases {
                    let params_before = model.head().params().to_vec();
                    let counters = *model.head().batches_tracked();
                    let momentum = trainer.sgd().momentum().to_vec();
                    assert_eq!(trainer.step(&mut model, &x1, &x2), Err(expected));
                    assert_eq!(model.head().params(), &params_before[..]);
                    assert_eq!(model.head().batches_tracked(), &counters);
                    assert_eq!(trainer.sgd().momentum(), &momentum[..]);
                    assert_eq!(trainer.steps(), 1);
                }
                trainer.set_lr(f32::NAN);
                assert_eq!(
                    trainer.step(&mut model, &x1s, &x2s),
                    Err(invalid("lr", "must be finite and >= 0"))
                );
                trainer.set_lr(0.01);
                trainer.step(&mut model, &x1s, &x2s).unwrap();
                assert_eq!(trainer.steps(), 2);
                // Updates that overflow on the first step.
                let huge = TrainConfig {
                    lr: 1e10,
                    weight_decay: 1e30,
                    ..TrainConfig::default()
                };
                let mut fresh = Trainer::new(&model, huge).unwrap();
                let params_before = model.head().params().to_vec();
                assert_eq!(
                    fresh.step(&mut model, &x1s, &x2s),
                    Err(non_finite("update"))
                );
                assert_eq!(model.head().params(), &params_before[..]);
                assert_eq!(fresh.steps(), 0);
                // A model of another architecture.
                let mut other = SimSiam::new(config(5, 7, 6, 4), &mut LcgRng::new(1)).unwrap();
                assert_eq!(trainer.step(&mut other, &x1s, &x2s), Err(WRONG_HEAD));
            }
        }
    }
}
