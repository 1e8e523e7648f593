//! Whole networks (an encoder in front of the head) against PyTorch: the fixtures
//! `tests/data/network_*.safetensors` (made by `scripts/make_network_fixtures.py`) hold a
//! small `har-dense` and `har-conv` (odd sizes: 5 channels, windows 24 and 32, kernels
//! 3/5/3, widths 16/12/8/4) with their eval outputs and three SGD steps in train() mode
//! (stop-gradient, momentum, weight decay, a cosine schedule on the encoder and
//! projector, the predictor at a fixed lr). The crate must follow on both kernel twins:
//! eval `encoder`, `projection`, `prediction`; per step the loss, `dL/dx1`, `dL/dx2`,
//! every parameter and running statistic, and the BatchNorm counters.
//!
//! Measures, as tests/train_pytorch.rs: eval outputs and input gradients relative to
//! the tensor's largest entry; the loss absolute; each parameter tensor's
//! `max (|ours − torch| − 4 ulp(torch))⁺` relative to how far PyTorch's training moved
//! it. Tolerances are 10× the larger of two PyTorch differences the script measures and
//! prints, rounded up to 1, 2, 3 or 5·10^k: f32 against f64, and f32 against f32 on
//! inputs moved by one ulp.
//! - dense: eval 1.3e-7, loss 3.3e-7, grad 2.1e-5, params 2.4e-5;
//! - conv: eval 2.5e-7, loss 6.5e-7, grad 9.0e-6, params 3.0e-5.
//!
//! Also here: the whole step against `f64` finite differences of an independent network
//! (`finite_differences`: dL/dx and every encoder parameter, both twins, with and
//! without stop-gradient, dense and conv encoders, in-place kinds first and after a
//! ReLU), shape validation, PyTorch's default initialisation, typed errors with nothing
//! changed, and the encoder's running statistics following the training's momentum.

#![cfg(all(feature = "alloc", feature = "encoder"))]

use safetensors::{Dtype, SafeTensors};
use simsiam::layers::{Bias, LayerKind, Linear, Shape};
use simsiam::model::{Architecture, Encoder, HarDense};
use simsiam::train::{TrainConfig, Trainer, cosine_lr};
use simsiam::{Backend, LcgRng, SimSiam, SslError};

const PARAM_ULPS: f64 = 4.0;

struct Tolerance {
    eval: f64,
    loss: f64,
    grad: f64,
    params: f64,
}

const DENSE: Tolerance = Tolerance {
    eval: 2e-6,
    loss: 5e-6,
    grad: 3e-4,
    params: 3e-4,
};

#[cfg(feature = "conv")]
const CONV: Tolerance = Tolerance {
    eval: 3e-6,
    loss: 1e-5,
    grad: 1e-4,
    params: 3e-4,
};

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn tensor(file: &SafeTensors<'_>, name: &str) -> Vec<f64> {
    let view = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    match view.dtype() {
        Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
            .collect(),
        Dtype::F64 => view
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        other => panic!("{name}: unexpected dtype {other:?}"),
    }
}

fn f32s(values: &[f64]) -> Vec<f32> {
    values.iter().map(|v| *v as f32).collect()
}

/// `max |ours − torch| / max |torch|`.
fn relative(ours: &[f32], torch: &[f64]) -> f64 {
    assert_eq!(ours.len(), torch.len(), "length");
    let scale = torch.iter().fold(0.0_f64, |m, t| m.max(t.abs()));
    assert!(scale > 0.0, "an all-zero tensor checks nothing");
    let worst = ours
        .iter()
        .zip(torch)
        .fold(0.0_f64, |m, (a, t)| m.max((f64::from(*a) - t).abs()));
    worst / scale
}

fn ulp(t: f64) -> f64 {
    let a = (t as f32).abs();
    f64::from(f32::from_bits(a.to_bits() + 1) - a)
}

/// Every tensor's length in the flat layout (encoder kinds' tensors, then the head's
/// `W`, `b`, `γ`, `β`, `running_mean`, `running_var` as present).
fn segments(architecture: &Architecture) -> Vec<usize> {
    let mut out = Vec::new();
    if let Some(encoder) = &architecture.encoder {
        for kind in encoder.layers() {
            out.extend(kind.params().iter().map(|t| t.len));
        }
    }
    for layer in architecture.layers() {
        out.push(layer.d_in * layer.d_out);
        out.extend((0..layer.vector_count()).map(|_| layer.d_out));
    }
    out
}

/// The worst tensor's update error (see the module docs).
fn param_error(ours: &[f32], torch: &[f64], initial: &[f32], segments: &[usize]) -> f64 {
    assert_eq!(ours.len(), torch.len(), "parameter count");
    assert_eq!(segments.iter().sum::<usize>(), ours.len(), "segments");
    let mut at = 0;
    let mut worst = 0.0_f64;
    for len in segments {
        let r = at..at + len;
        at += len;
        let (ours, torch, initial) = (&ours[r.clone()], &torch[r.clone()], &initial[r]);
        let moved = torch
            .iter()
            .zip(initial)
            .fold(0.0_f64, |m, (t, i)| m.max((t - f64::from(*i)).abs()));
        assert!(moved > 0.0, "every tensor trains or tracks statistics");
        let excess = ours.iter().zip(torch).fold(0.0_f64, |m, (a, t)| {
            m.max((f64::from(*a) - t).abs() - PARAM_ULPS * ulp(*t))
        });
        worst = worst.max(excess / moved);
    }
    worst
}

fn check_fixture(name: &str, architecture: Architecture, tol: &Tolerance) {
    let bytes = read(name);
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let t = |key: &str| tensor(&file, key);
    // [lr0, momentum, weight_decay, n, steps]
    let c = t("config");
    let (lr0, n, steps) = (c[0] as f32, c[3] as usize, c[4] as usize);
    let config = TrainConfig {
        lr: lr0,
        momentum: c[1] as f32,
        weight_decay: c[2] as f32,
        fix_predictor_lr: true,
        stop_gradient: true,
        ..TrainConfig::default()
    };
    let initial = f32s(&t("params.initial"));
    let segments = segments(&architecture);
    for backend in [Backend::Scalar, Backend::Simd] {
        let mut model = SimSiam::from_params(architecture, initial.clone())
            .unwrap()
            .with_backend(backend);
        // Eval: the encoder's output, the projection and the prediction.
        let x = f32s(&t("eval.x"));
        let encoded = model.encode_batch(&x).unwrap();
        let projected = model.project_batch(&x).unwrap();
        let predicted = model.predict_batch(&projected).unwrap();
        for (what, ours) in [
            ("encoder", &encoded),
            ("projection", &projected),
            ("prediction", &predicted),
        ] {
            let error = relative(ours, &t(&format!("eval.{what}")));
            assert!(
                error <= tol.eval,
                "{name} {backend:?} eval {what}: {error:.2e} > {:.0e}",
                tol.eval
            );
        }
        // Training.
        let mut trainer = Trainer::new(&model, config).unwrap();
        trainer.set_input_grads(true);
        let mut worst = [0.0_f64; 3];
        for step in 0..steps {
            let key = |k: &str| format!("step{step}.{k}");
            let (x1, x2) = (f32s(&t(&key("x1"))), f32s(&t(&key("x2"))));
            assert_eq!(x1.len(), n * architecture.d_input());
            let lr = cosine_lr(lr0, step as u64, steps as u64);
            assert_eq!(lr, t(&key("lr"))[0] as f32, "the schedule");
            trainer.set_lr(lr);
            let loss = trainer.step(&mut model, &x1, &x2).unwrap();
            let loss_error = (f64::from(loss) - t(&key("loss"))[0]).abs();
            let (g1, g2) = trainer.input_grads();
            let grad_error =
                relative(g1, &t(&key("grad_x1"))).max(relative(g2, &t(&key("grad_x2"))));
            let params = model.head().params();
            let params_error = param_error(params, &t(&key("params")), &initial, &segments);
            let at = format!("{name} {backend:?} step {step}");
            assert!(
                loss_error <= tol.loss,
                "{at}: loss {loss_error:.2e} > {:.0e}",
                tol.loss
            );
            assert!(
                grad_error <= tol.grad,
                "{at}: dL/dx {grad_error:.2e} > {:.0e}",
                tol.grad
            );
            assert!(
                params_error <= tol.params,
                "{at}: params {params_error:.2e} > {:.0e}",
                tol.params
            );
            for (w, e) in worst.iter_mut().zip([loss_error, grad_error, params_error]) {
                *w = w.max(e);
            }
        }
        println!(
            "{name} {backend:?}: worst loss {:.1e}, dL/dx {:.1e}, params {:.1e}",
            worst[0], worst[1], worst[2]
        );
        // The BatchNorm counters: encoder and head, two per step (one per view).
        let tracked = t("num_batches_tracked");
        let head = model.head();
        let mut ours: Vec<f64> = Vec::new();
        let encoder = architecture.encoder.unwrap();
        for (kind, count) in encoder.layers().iter().zip(head.encoder_batches_tracked()) {
            if matches!(kind, LayerKind::BatchNorm1d(_)) {
                ours.push(*count as f64);
            }
        }
        for (layer, count) in architecture.layers().zip(head.batches_tracked()) {
            if layer.batch_norm.is_some() {
                ours.push(*count as f64);
            }
        }
        assert_eq!(ours, tracked, "{name}: num_batches_tracked");
    }
}

fn dense_sizes(s: &[f64]) -> HarDense {
    let u = |i: usize| s[i] as usize;
    HarDense {
        channels: u(0),
        window: u(1),
        hidden: u(2),
        feature: u(3),
        projector_hidden: u(4),
        projection: u(5),
        predictor_hidden: u(6),
    }
}

#[test]
fn har_dense_follows_pytorch() {
    let bytes = read("network_dense.safetensors");
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let sizes = dense_sizes(&tensor(&file, "sizes"));
    let architecture = Architecture::har_dense(&sizes).unwrap();
    check_fixture("network_dense.safetensors", architecture, &DENSE);
}

#[cfg(feature = "conv")]
#[test]
fn har_conv_follows_pytorch() {
    use simsiam::model::HarConv;
    let bytes = read("network_conv.safetensors");
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let s: Vec<usize> = tensor(&file, "sizes").iter().map(|v| *v as usize).collect();
    let sizes = HarConv {
        channels: s[0],
        window: s[1],
        conv_channels: [s[2], s[3], s[4]],
        kernels: [s[5], s[6], s[7]],
        pool: s[8],
        projector_hidden: s[9],
        projection: s[10],
        predictor_hidden: s[11],
    };
    let architecture = Architecture::har_conv(&sizes).unwrap();
    check_fixture("network_conv.safetensors", architecture, &CONV);
}

fn small_dense() -> Architecture {
    Architecture::har_dense(&HarDense {
        channels: 3,
        window: 4,
        hidden: 8,
        feature: 6,
        projector_hidden: 6,
        projection: 4,
        predictor_hidden: 2,
    })
    .unwrap()
}

#[test]
fn encoder_shapes_are_validated() {
    let linear = |d_in, d_out| {
        LayerKind::Linear(Linear {
            d_in,
            d_out,
            bias: Bias::Trainable,
        })
    };
    assert_eq!(
        Encoder::new(Shape::vector(4), &[]).unwrap_err(),
        SslError::InvalidParameter {
            name: "encoder",
            reason: "an encoder needs at least one layer",
        }
    );
    assert_eq!(
        Encoder::new(Shape::vector(4), &[LayerKind::Relu; 17]).unwrap_err(),
        SslError::InvalidParameter {
            name: "encoder",
            reason: "an encoder has at most MAX_ENCODER_LAYERS (16) layers",
        }
    );
    assert_eq!(
        Encoder::new(Shape::vector(4), &[linear(4, 3), linear(4, 2)]).unwrap_err(),
        SslError::DimensionMismatch {
            expected: 4,
            got: 3
        }
    );
    // The output must be the projector's input width.
    let head = Architecture::official(6, 4, 2).unwrap();
    let encoder = Encoder::new(Shape::sequence(2, 3), &[linear(6, 5)]).unwrap();
    assert_eq!(
        head.with_encoder(encoder).unwrap_err(),
        SslError::InvalidParameter {
            name: "encoder",
            reason: "the encoder's output (flattened) must be the projector's input width",
        }
    );
    // A sequence output is flattened: [2, 3] feeds a projector of width 6.
    let identity = Encoder::new(Shape::sequence(2, 3), &[LayerKind::Relu]).unwrap();
    let network = head.with_encoder(identity).unwrap();
    assert_eq!((network.d_input(), network.d_encoder()), (6, 6));
    assert_eq!(network.param_count(), head.param_count());
}

#[test]
fn without_an_encoder_encode_copies_and_d_input_is_d_encoder() {
    let model = SimSiam::new(simsiam::SimSiamConfig::default(), &mut LcgRng::new(1)).unwrap();
    assert_eq!(model.d_input(), model.d_encoder());
    let x: Vec<f32> = (0..64).map(|i| i as f32 * 0.25 - 3.0).collect();
    assert_eq!(model.encode(&x).unwrap(), x);
}

#[test]
fn init_params_with_draws_once_per_weight_in_order() {
    let architecture = small_dense();
    let n = architecture.param_count().unwrap();
    // `init_params` is `init_params_with` on `LcgRng::next_f32`, bit for bit.
    let mut by_rng = vec![f32::NAN; n];
    architecture
        .init_params(&mut LcgRng::new(5), &mut by_rng)
        .unwrap();
    let mut rng = LcgRng::new(5);
    let mut by_closure = vec![f32::NAN; n];
    architecture
        .init_params_with(|| rng.next_f32(), &mut by_closure)
        .unwrap();
    assert_eq!(
        by_rng.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        by_closure.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // A counter as the source: draw k maps to (2k/N − 1)·bound, so every weight and
    // bias shows its place in the draw order; BatchNorm takes no draw.
    let drawn: usize = architecture
        .tensors()
        .filter(|t| !matches!(t.kind, LayerKind::BatchNorm1d(_)))
        .map(|t| t.range().len())
        .sum();
    let mut k = 0_usize;
    let mut counted = vec![f32::NAN; n];
    architecture
        .init_params_with(
            || {
                k += 1;
                (k - 1) as f32 / drawn as f32
            },
            &mut counted,
        )
        .unwrap();
    assert_eq!(k, drawn);
    let mut next = 0_usize;
    for tensor in architecture.tensors() {
        let v = &counted[tensor.range()];
        if matches!(tensor.kind, LayerKind::BatchNorm1d(_)) {
            continue;
        }
        let bound = 1.0 / (tensor.fan_in() as f32).sqrt();
        for &w in v {
            let expected = (2.0 * (next as f32 / drawn as f32) - 1.0) * bound;
            assert_eq!(w.to_bits(), expected.to_bits());
            next += 1;
        }
    }
}

#[test]
fn init_follows_pytorch_defaults() {
    let architecture = small_dense();
    let mut params = vec![f32::NAN; architecture.param_count().unwrap()];
    architecture
        .init_params(&mut LcgRng::new(5), &mut params)
        .unwrap();
    // encoder: W [8, 12] in ±1/√12, then BN(8): γ 1, β 0, mean 0, var 1.
    let bound = 1.0 / 12.0_f32.sqrt();
    let (w, rest) = params.split_at(96);
    assert!(w.iter().all(|v| v.abs() <= bound));
    assert!(
        w.iter().any(|v| v.abs() > 0.9 * bound),
        "spread over the bound"
    );
    assert_eq!(
        &rest[..32],
        [[1.0; 8], [0.0; 8], [0.0; 8], [1.0; 8]].concat()
    );
    // The predictor's last bias, in ±1/√2.
    let tail = &params[params.len() - 4..];
    assert!(
        tail.iter()
            .all(|v| v.abs() <= 1.0 / 2.0_f32.sqrt() && *v != 0.0)
    );
}

#[test]
fn the_parameter_image_holds_the_encoder() {
    // Version 2 of the image (tests/image.rs tests the format itself).
    let model = SimSiam::from_architecture(small_dense(), &mut LcgRng::new(2)).unwrap();
    let bytes = model.to_image().unwrap();
    let loaded = SimSiam::from_image(&bytes).unwrap();
    assert_eq!(loaded.architecture(), model.architecture());
    assert_eq!(loaded.head().params(), model.head().params());
    let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.3).sin()).collect();
    assert_eq!(loaded.encode(&x).unwrap(), model.encode(&x).unwrap());
}

#[test]
fn bad_inputs_give_typed_errors_and_change_nothing() {
    let architecture = small_dense();
    let mut model = SimSiam::from_architecture(architecture, &mut LcgRng::new(3)).unwrap();
    let head = model.head().view();
    // Wrong input length: the network's input is 12 floats, not d_encoder 6.
    let mut feature = [0.0_f32; 6];
    let mut workspace = vec![0.0_f32; architecture.workspace_len(1).unwrap()];
    assert_eq!(
        head.encode_into(&[0.0; 6], &mut feature, &mut workspace),
        Err(SslError::DimensionMismatch {
            expected: 12,
            got: 6
        })
    );
    assert_eq!(
        model.project(&[0.0; 6]).unwrap_err(),
        SslError::DimensionMismatch {
            expected: 12,
            got: 6
        }
    );
    // A short workspace.
    let needed = architecture.workspace_len(1).unwrap();
    let mut short = vec![0.0_f32; needed - 1];
    let mut z = [0.0_f32; 4];
    assert_eq!(
        head.project_into(&[0.5; 12], &mut z, &mut short),
        Err(SslError::CapacityTooSmall {
            needed,
            capacity: needed - 1
        })
    );
    assert_eq!(
        head.loss(&[0.5; 12], &[0.25; 12], &mut short),
        Err(SslError::CapacityTooSmall {
            needed,
            capacity: needed - 1
        })
    );
    // Non-finite inputs.
    let mut bad = [0.5_f32; 12];
    bad[7] = f32::NAN;
    assert_eq!(
        head.encode_into(&bad, &mut feature, &mut workspace),
        Err(SslError::NonFinite { location: "x" })
    );
    assert_eq!(
        head.loss(&[0.5; 12], &bad, &mut workspace),
        Err(SslError::NonFinite { location: "x2" })
    );
    // Empty batches are empty, as for a head alone.
    assert_eq!(model.encode_batch(&[]).unwrap(), Vec::<f32>::new());
    assert_eq!(model.project_batch(&[]).unwrap(), Vec::<f32>::new());
    // Training: a short scratch, wrong length, non-finite input; the model is unchanged.
    {
        use simsiam::train::{Sgd, scratch_len};
        let n = 4;
        let needed = scratch_len(&architecture, n).unwrap();
        let mut short = vec![0.0_f32; needed - 1];
        let mut sgd = Sgd::new(
            &architecture,
            TrainConfig::default(),
            vec![0.0; architecture.param_count().unwrap()],
        )
        .unwrap();
        let x: Vec<f32> = (0..n * 12).map(|i| (i as f32 * 0.3).cos()).collect();
        assert_eq!(
            sgd.step(model.head_mut(), &x, &x, &mut short, [&mut [], &mut []]),
            Err(SslError::CapacityTooSmall {
                needed,
                capacity: needed - 1
            })
        );
        assert_eq!(
            sgd.step(
                model.head_mut(),
                &x,
                &x,
                &mut vec![0.0; needed],
                [&mut [0.0; 3], &mut []]
            ),
            Err(SslError::DimensionMismatch {
                expected: n * 12,
                got: 3
            })
        );
    }
    let before = model.head().params().to_vec();
    let mut trainer = Trainer::new(&model, TrainConfig::default()).unwrap();
    let x: Vec<f32> = (0..4 * 12).map(|i| (i as f32 * 0.7).sin()).collect();
    assert_eq!(
        trainer.step(&mut model, &x[..4 * 12 - 1], &x[..4 * 12 - 1]),
        Err(SslError::InvalidParameter {
            name: "x1s",
            reason: "must hold n ≥ 1 rows of d_encoder",
        })
    );
    let mut x2 = x.clone();
    x2[5] = f32::INFINITY;
    assert_eq!(
        trainer.step(&mut model, &x, &x2),
        Err(SslError::NonFinite { location: "x2s" })
    );
    assert_eq!(model.head().params(), &before[..]);
    assert_eq!(model.head().encoder_batches_tracked()[1], 0);
    // Inputs whose squares overflow in the encoder's BatchNorm: NonFinite, and nothing
    // changes.
    let huge: Vec<f32> = x.iter().map(|v| v * 1e25).collect();
    let result = trainer.step(&mut model, &huge, &x);
    assert!(
        matches!(result, Err(SslError::NonFinite { .. })),
        "{result:?}"
    );
    assert_eq!(model.head().params(), &before[..]);
    assert_eq!(model.head().encoder_batches_tracked()[1], 0);
    assert_eq!(trainer.steps(), 0);
    // A step that works changes the encoder and counts its BatchNorms.
    trainer
        .step(
            &mut model,
            &x,
            &x2.iter().map(|v| v.min(1.0)).collect::<Vec<_>>(),
        )
        .unwrap();
    let encoder_len = architecture.encoder_param_count().unwrap();
    assert_ne!(model.head().params()[..encoder_len], before[..encoder_len]);
    assert_eq!(model.head().encoder_batches_tracked()[1], 2);
    assert_eq!(model.head().encoder_batches_tracked()[0], 0);
}

/// The whole training step against an `f64` oracle: central finite differences of an
/// independent `f64` network (encoder kinds, head, cosine loss with the targets held
/// fixed, i.e. stop-gradient) give `dL/dx1`, `dL/dx2` and `dL/d(encoder parameters)`,
/// which [`Sgd::step`](simsiam::train::Sgd::step) must match on both twins, per tensor
/// within `FD_TOLERANCE·max(max|oracle|, 1e-3)`: a few hundred f32 roundings through
/// up to 17 layers (tests/train.rs's bound for the head, the same reasoning). Printed
/// with `--nocapture`.
mod finite_differences {
    use simsiam::kernels::{Kernels, Scalar, Simd};
    use simsiam::layers::{Bias, LayerKind};
    use simsiam::model::{Architecture, Encoder, HarDense, Layer};
    use simsiam::train::{Sgd, TrainConfig, param_grads, scratch_len};
    use simsiam::{LcgRng, SimSiamHead};

    const FD_TOLERANCE: f64 = 1e-4;
    const H: f64 = 1e-6;

    type Rows = Vec<Vec<f64>>;

    fn batch_norm(rows: &mut Rows, channels: usize, gamma_beta: Option<(&[f64], &[f64])>) {
        let len = rows[0].len() / channels;
        let count = (rows.len() * len) as f64;
        for c in 0..channels {
            let values = || rows.iter().flat_map(|r| r[c * len..(c + 1) * len].iter());
            let mean = values().sum::<f64>() / count;
            let var = values().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
            let inv = 1.0 / (var + 1e-5_f64).sqrt();
            let (g, b) = gamma_beta.map_or((1.0, 0.0), |(g, b)| (g[c], b[c]));
            for row in rows.iter_mut() {
                for v in &mut row[c * len..(c + 1) * len] {
                    *v = (*v - mean) * inv * g + b;
                }
            }
        }
    }

    fn linear(rows: &Rows, w: &[f64], b: Option<&[f64]>, d_out: usize) -> Rows {
        let d_in = rows[0].len();
        rows.iter()
            .map(|x| {
                (0..d_out)
                    .map(|o| {
                        let dot: f64 = (0..d_in).map(|i| w[o * d_in + i] * x[i]).sum();
                        dot + b.map_or(0.0, |b| b[o])
                    })
                    .collect()
            })
            .collect()
    }

    fn relu(rows: &mut Rows) {
        rows.iter_mut().flatten().for_each(|v| *v = v.max(0.0));
    }

    /// The encoder in training mode (convolutions of any stride, no padding).
    fn encoder64(encoder: &Encoder, params: &[f64], x: Rows) -> Rows {
        let mut rows = x;
        let mut shape = encoder.input();
        let mut at = 0;
        for kind in encoder.layers() {
            let count = kind.param_count().unwrap();
            let p = &params[at..at + count];
            at += count;
            let out = kind.output_shape(shape).unwrap();
            match kind {
                LayerKind::Linear(l) => {
                    let b = l.bias.present().then(|| &p[l.d_in * l.d_out..]);
                    rows = linear(&rows, &p[..l.d_in * l.d_out], b, l.d_out);
                }
                LayerKind::BatchNorm1d(bn) => {
                    let c = bn.channels;
                    let affine = bn.affine.then(|| (&p[..c], &p[c..2 * c]));
                    batch_norm(&mut rows, c, affine);
                }
                LayerKind::Relu => relu(&mut rows),
                #[cfg(feature = "conv")]
                LayerKind::Conv1d(conv) => {
                    let (ci, k, t_in) = (conv.c_in, conv.kernel, shape.len);
                    let w = &p[..conv.c_out * ci * k];
                    let b = conv.bias.present().then(|| &p[conv.c_out * ci * k..]);
                    rows = rows
                        .iter()
                        .map(|x| {
                            let mut y = vec![0.0; conv.c_out * out.len];
                            for o in 0..conv.c_out {
                                for t in 0..out.len {
                                    let mut s = b.map_or(0.0, |b| b[o]);
                                    for c in 0..ci {
                                        for j in 0..k {
                                            let pos = t * conv.stride + j;
                                            s += w[(o * ci + c) * k + j] * x[c * t_in + pos];
                                        }
                                    }
                                    y[o * out.len + t] = s;
                                }
                            }
                            y
                        })
                        .collect();
                }
                #[cfg(feature = "conv")]
                LayerKind::MaxPool1d(_) | LayerKind::GlobalMaxPool1d => {
                    let window = shape.len / out.len.max(1);
                    let window = if matches!(kind, LayerKind::GlobalMaxPool1d) {
                        shape.len
                    } else {
                        window
                    };
                    rows = rows
                        .iter()
                        .map(|x| {
                            let mut y = Vec::new();
                            for c in 0..shape.channels {
                                for t in 0..out.len {
                                    let start = c * shape.len + t * window;
                                    let m = x[start..start + window]
                                        .iter()
                                        .fold(f64::NEG_INFINITY, |m, v| m.max(*v));
                                    y.push(m);
                                }
                            }
                            y
                        })
                        .collect();
                }
                _ => unreachable!("no other kind in these tests"),
            }
            shape = out;
        }
        rows
    }

    fn stack64(layers: &[Layer], params: &[f64], at: &mut usize, x: Rows) -> Rows {
        let mut rows = x;
        for layer in layers {
            let mut take = |len: usize| {
                let s = &params[*at..*at + len];
                *at += len;
                s
            };
            let w = take(layer.d_in * layer.d_out);
            let b = layer.bias.then(|| take(layer.d_out));
            rows = linear(&rows, w, b, layer.d_out);
            if let Some(bn) = layer.batch_norm {
                let affine = bn.affine.then(|| (take(layer.d_out), take(layer.d_out)));
                take(2 * layer.d_out);
                batch_norm(&mut rows, layer.d_out, affine);
            }
            if layer.relu {
                relu(&mut rows);
            }
        }
        rows
    }

    fn unit(rows: &Rows) -> Rows {
        rows.iter()
            .map(|r| {
                let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-8);
                r.iter().map(|v| v / norm).collect()
            })
            .collect()
    }

    /// `(z, p)` of one view in training mode (the har presets normalise neither).
    fn view64(a: &Architecture, params: &[f64], x: Rows) -> (Rows, Rows) {
        let encoder = a.encoder.as_ref().unwrap();
        let features = encoder64(encoder, params, x);
        let mut at = encoder.param_count().unwrap();
        let z = stack64(a.projector.layers(), params, &mut at, features);
        let p = stack64(a.predictor.layers(), params, &mut at, z.clone());
        (z, p)
    }

    fn rows(flat: &[f64], d: usize) -> Rows {
        flat.chunks_exact(d).map(<[f64]>::to_vec).collect()
    }

    /// The loss at `params`, `x1`, `x2`: with the targets `targets` held fixed
    /// (stop-gradient), or, without them, the views' own projections.
    fn loss64(
        a: &Architecture,
        params: &[f64],
        xs: [&[f64]; 2],
        targets: Option<&[Rows; 2]>,
    ) -> f64 {
        let d = a.d_input();
        let (z1, p1) = view64(a, params, rows(xs[0], d));
        let (z2, p2) = view64(a, params, rows(xs[1], d));
        let own = [z1, z2];
        let targets = targets.unwrap_or(&own);
        let cos = |p: &Rows, z: &Rows| {
            let (p, z) = (unit(p), unit(z));
            let total: f64 = p
                .iter()
                .zip(&z)
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>())
                .sum();
            total / p.len() as f64
        };
        -(cos(&p1, &targets[1]) + cos(&p2, &targets[0])) * 0.5
    }

    fn fd(f: &dyn Fn(&[f64]) -> f64, at: &[f64]) -> Vec<f64> {
        (0..at.len())
            .map(|i| {
                let mut p = at.to_vec();
                p[i] = at[i] + H;
                let up = f(&p);
                p[i] = at[i] - H;
                let down = f(&p);
                (up - down) / (2.0 * H)
            })
            .collect()
    }

    fn compare(what: &str, ours: &[f32], oracle: &[f64]) -> f64 {
        assert_eq!(ours.len(), oracle.len(), "{what}: length");
        let scale = oracle.iter().fold(1e-3_f64, |m, v| m.max(v.abs()));
        let worst = ours
            .iter()
            .zip(oracle)
            .fold(0.0_f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
        let relative = worst / scale;
        assert!(
            relative <= FD_TOLERANCE,
            "{what}: {relative:.2e} of {scale:.2e} > {FD_TOLERANCE:.0e}"
        );
        relative
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = LcgRng::new(seed);
        (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    fn check<K: Kernels>(architecture: Architecture, n: usize, seed: u64) {
        check_with::<K>(architecture, n, seed, true);
    }

    fn check_with<K: Kernels>(
        architecture: Architecture,
        n: usize,
        seed: u64,
        stop_gradient: bool,
    ) {
        let encoder = architecture.encoder.unwrap();
        let mut params = vec![0.0_f32; architecture.param_count().unwrap()];
        architecture
            .init_params(&mut LcgRng::new(seed), &mut params)
            .unwrap();
        // BatchNorms off the identity: γ and β of every BatchNorm (the trained pair).
        let mut at = 0;
        for kind in encoder.layers() {
            if let LayerKind::BatchNorm1d(bn) = kind
                && bn.affine
            {
                let c = bn.channels;
                for (i, v) in params[at..at + 2 * c].iter_mut().enumerate() {
                    *v = if i < c {
                        1.0 + 0.1 * (i as f32 * 0.7).sin()
                    } else {
                        0.1 * (i as f32).cos()
                    };
                }
            }
            at += kind.param_count().unwrap();
        }
        let d = architecture.d_input();
        let (x1, x2) = (values(n * d, seed + 1), values(n * d, seed + 2));
        let mut head = SimSiamHead::new(architecture, params.clone())
            .unwrap()
            .with_kernels::<K>();
        let config = TrainConfig {
            momentum: 0.0,
            weight_decay: 0.0,
            stop_gradient,
            ..TrainConfig::default()
        };
        let mut sgd = Sgd::new(&architecture, config, vec![0.0; params.len()]).unwrap();
        let mut scratch = vec![0.0_f32; scratch_len(&architecture, n).unwrap()];
        let (mut g1, mut g2) = (vec![0.0_f32; n * d], vec![0.0_f32; n * d]);
        let loss = sgd
            .step(&mut head, &x1, &x2, &mut scratch, [&mut g1, &mut g2])
            .unwrap();
        let grads = param_grads(&architecture, n, &scratch).unwrap();
        // The oracle.
        let p64: Vec<f64> = params.iter().map(|v| f64::from(*v)).collect();
        let x64 = |x: &[f32]| x.iter().map(|v| f64::from(*v)).collect::<Vec<f64>>();
        let (x1_64, x2_64) = (x64(&x1), x64(&x2));
        let targets = [
            view64(&architecture, &p64, rows(&x1_64, d)).0,
            view64(&architecture, &p64, rows(&x2_64, d)).0,
        ];
        let fixed = stop_gradient.then_some(&targets);
        let oracle_loss = loss64(&architecture, &p64, [&x1_64, &x2_64], fixed);
        assert!(
            (f64::from(loss) - oracle_loss).abs() < 1e-5,
            "loss {loss} vs {oracle_loss}"
        );
        let d_x1 = fd(&|x| loss64(&architecture, &p64, [x, &x2_64], fixed), &x1_64);
        let d_x2 = fd(&|x| loss64(&architecture, &p64, [&x1_64, x], fixed), &x2_64);
        let encoder_len = encoder.param_count().unwrap();
        let d_params = fd(
            &|p| {
                let mut all = p64.clone();
                all[..encoder_len].copy_from_slice(p);
                loss64(&architecture, &all, [&x1_64, &x2_64], fixed)
            },
            &p64[..encoder_len],
        );
        let mut worst = compare("dL/dx1", &g1, &d_x1).max(compare("dL/dx2", &g2, &d_x2));
        // Per tensor of the encoder.
        let mut at = 0;
        for (i, kind) in encoder.layers().iter().enumerate() {
            for tensor in &kind.params() {
                let r = at + tensor.offset..at + tensor.offset + tensor.len;
                let what = format!("layer {i} {}", tensor.name);
                worst = worst.max(compare(&what, &grads[r.clone()], &d_params[r]));
            }
            at += kind.param_count().unwrap();
        }
        println!(
            "{} {}: worst {worst:.1e} of the bound's scale",
            core::any::type_name::<K>(),
            encoder.layers().len()
        );
    }

    fn dense() -> Architecture {
        Architecture::har_dense(&HarDense {
            channels: 3,
            window: 5,
            hidden: 7,
            feature: 6,
            projector_hidden: 6,
            projection: 5,
            predictor_hidden: 3,
        })
        .unwrap()
    }

    #[test]
    fn dense_encoder_gradients_match_finite_differences() {
        check::<Scalar>(dense(), 5, 11);
        check::<Simd>(dense(), 5, 11);
    }

    /// Without stop-gradient the targets' gradient flows into the encoder too.
    #[test]
    fn without_stop_gradient_encoder_gradients_match_finite_differences() {
        check_with::<Scalar>(dense(), 5, 12, false);
        check_with::<Simd>(dense(), 5, 12, false);
    }

    /// An encoder with a trained bias, BatchNorm first (an in-place kind copies the
    /// input) and ReLU before BatchNorm (the mask must survive it).
    #[test]
    fn in_place_kinds_first_and_after_relu_match_finite_differences() {
        use simsiam::layers::{BatchNorm1d, Linear, Shape};
        let encoder = Encoder::new(
            Shape::sequence(2, 3),
            &[
                LayerKind::BatchNorm1d(BatchNorm1d::new(2)),
                LayerKind::Linear(Linear {
                    d_in: 6,
                    d_out: 7,
                    bias: Bias::Trainable,
                }),
                LayerKind::Relu,
                LayerKind::BatchNorm1d(BatchNorm1d::new(7)),
                LayerKind::Linear(Linear {
                    d_in: 7,
                    d_out: 6,
                    bias: Bias::None,
                }),
            ],
        )
        .unwrap();
        let architecture = dense_head().with_encoder(encoder).unwrap();
        check::<Scalar>(architecture, 4, 21);
        check::<Simd>(architecture, 4, 21);
    }

    fn dense_head() -> Architecture {
        let mut a = dense();
        a.encoder = None;
        a
    }

    #[cfg(feature = "conv")]
    #[test]
    fn conv_encoder_gradients_match_finite_differences() {
        use simsiam::model::HarConv;
        let architecture = Architecture::har_conv(&HarConv {
            channels: 2,
            window: 16,
            conv_channels: [3, 4, 5],
            kernels: [3, 2, 2],
            pool: 2,
            projector_hidden: 6,
            projection: 5,
            predictor_hidden: 3,
        })
        .unwrap();
        check::<Scalar>(architecture, 4, 31);
        check::<Simd>(architecture, 4, 31);
    }
}

/// The encoder's running statistics follow `TrainConfig::batch_norm_momentum`, as the
/// head's do: with momentum 0 they stay bit for bit, with 1 they become the last batch's.
#[test]
fn encoder_running_statistics_follow_the_training_momentum() {
    let architecture = small_dense();
    // The first BatchNorm's running_mean and running_var: after W [8, 12], γ, β.
    let (mean, var) = (96 + 16..96 + 24, 96 + 24..96 + 32);
    let x: Vec<f32> = (0..4 * 12).map(|i| (i as f32 * 0.9).sin() + 0.5).collect();
    for momentum in [0.0_f32, 1.0] {
        let mut model = SimSiam::from_architecture(architecture, &mut LcgRng::new(9)).unwrap();
        let config = TrainConfig {
            batch_norm_momentum: momentum,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(&model, config).unwrap();
        trainer.step(&mut model, &x, &x).unwrap();
        let params = model.head().params();
        if momentum == 0.0 {
            assert_eq!(params[mean.clone()], [0.0; 8]);
            assert_eq!(params[var.clone()], [1.0; 8]);
        } else {
            assert!(params[mean.clone()].iter().any(|m| *m != 0.0));
            assert!(params[var.clone()].iter().all(|v| *v != 1.0));
        }
    }
}

/// With an encoder, `Trainer` computes `dL/dx` only when asked: by default the step
/// shows no input gradients; asked, it shows `Sgd::step`'s, bit for bit; the loss and
/// the parameters after the step are the same bits either way (both twins).
#[test]
fn trainer_input_grads_are_opt_in_with_an_encoder() {
    use simsiam::train::{Sgd, scratch_len};
    let architecture = small_dense();
    let n = 4;
    let x1: Vec<f32> = (0..n * 12).map(|i| (i as f32 * 0.7).sin()).collect();
    let x2: Vec<f32> = (0..n * 12).map(|i| (i as f32 * 0.3).cos()).collect();
    for backend in [Backend::Simd, Backend::Scalar] {
        let start = SimSiam::from_architecture(architecture, &mut LcgRng::new(3))
            .unwrap()
            .with_backend(backend);
        let config = TrainConfig::default();
        // Default: no input gradients.
        let mut model = start.clone();
        let mut trainer = Trainer::new(&model, config).unwrap();
        assert!(!trainer.keeps_input_grads());
        let loss = trainer.step(&mut model, &x1, &x2).unwrap();
        assert_eq!(trainer.input_grads(), (&[][..], &[][..]));
        // Asked: the same step with them.
        let mut asked = start.clone();
        let mut with_grads = Trainer::new(&asked, config).unwrap();
        with_grads.set_input_grads(true);
        let loss_asked = with_grads.step(&mut asked, &x1, &x2).unwrap();
        assert_eq!(loss.to_bits(), loss_asked.to_bits(), "{backend:?}");
        assert_eq!(model.head().params(), asked.head().params(), "{backend:?}");
        // Against the no-alloc step with input gradients.
        let mut reference = start.clone();
        let count = architecture.param_count().unwrap();
        let mut sgd = Sgd::new(&architecture, config, vec![0.0; count]).unwrap();
        let mut scratch = vec![0.0; scratch_len(&architecture, n).unwrap()];
        let (mut g1, mut g2) = (vec![0.0; n * 12], vec![0.0; n * 12]);
        match backend {
            Backend::Simd => sgd.step(
                reference.head_mut(),
                &x1,
                &x2,
                &mut scratch,
                [&mut g1, &mut g2],
            ),
            Backend::Scalar => sgd.step(
                &mut reference
                    .head_mut()
                    .clone()
                    .with_kernels::<simsiam::kernels::Scalar>(),
                &x1,
                &x2,
                &mut scratch,
                [&mut g1, &mut g2],
            ),
        }
        .unwrap();
        let (a1, a2) = with_grads.input_grads();
        assert!(g1.iter().any(|g| *g != 0.0));
        assert_eq!((a1, a2), (&g1[..], &g2[..]), "{backend:?}");
        // Switched off again: empty after the next step.
        with_grads.set_input_grads(false);
        with_grads.step(&mut asked, &x1, &x2).unwrap();
        assert_eq!(with_grads.input_grads(), (&[][..], &[][..]));
    }
}
