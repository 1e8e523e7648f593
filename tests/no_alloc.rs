//! The core makes zero heap allocations: every no-alloc entry point (inference and
//! training) runs under a counting global allocator, whose counter is per thread so
//! parallel tests do not interfere.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use simsiam::kernels::{Kernels, Scalar, Simd, scalar, simd};
use simsiam::model::{Architecture, BatchNorm, Layer, Stack};
use simsiam::train::{Sgd, TrainConfig, cosine_lr, param_grads, scratch_len};
use simsiam::{Backend, LcgRng, SimSiamConfig, SimSiamHead, SslError, init_params};
use support::twin::twin;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to `System` unchanged; only counts calls in a const-initialised
// thread-local `Cell`, which itself never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// How many allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const CONFIG: SimSiamConfig = SimSiamConfig::DEFAULT;
const PARAMS: usize = 16_640;

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1.0_f32; 10]))) >= 1);
}

#[test]
fn core_inference_makes_no_allocation() {
    let mut params = vec![0.0_f32; PARAMS]; // the test's own storage, made before counting
    let z1: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
    let z2: Vec<f32> = z1.iter().map(|x| x * 0.9 + 0.05).collect();
    let count = allocations_in(|| {
        init_params(&CONFIG, &mut LcgRng::new(3), &mut params).unwrap();
        for backend in [Backend::Simd, Backend::Scalar] {
            let owner = SimSiamHead::from_params(CONFIG, &params[..]).unwrap();
            let head = twin(&owner, backend);
            let mut projected = [0.0_f32; 32];
            let mut predicted = [0.0_f32; 32];
            let mut workspace = [0.0_f32; 128];
            head.project_into(&z1, &mut projected, &mut []).unwrap();
            head.predict_into(&projected, &mut predicted, &mut [])
                .unwrap();
            let loss = head.loss(&z1, &z2, &mut workspace).unwrap();
            assert!((-1.0..=1.0).contains(&loss));
            owner
                .view()
                .with_kernels::<Simd>()
                .project_into(&z1, &mut projected, &mut [])
                .unwrap();
            owner
                .view()
                .with_kernels::<Scalar>()
                .predict_into(&projected, &mut predicted, &mut [])
                .unwrap();
            // A fixed-capacity output (what `project_heapless` returned) is a slice too.
            let mut v: heapless::Vec<f32, 32> = heapless::Vec::new();
            v.resize(32, 0.0).unwrap();
            head.project_into(&z1, &mut v, &mut []).unwrap();
            assert_eq!(v.len(), 32);
            // errors are allocation-free too
            assert!(
                head.project_into(&z1[..10], &mut projected, &mut [])
                    .is_err()
            );
            assert!(head.loss(&z1, &z2, &mut workspace[..5]).is_err());
        }
    });
    assert_eq!(count, 0, "the core allocated {count} times");
}

#[test]
fn kernels_and_heapless_owner_make_no_allocation() {
    let w = vec![0.5_f32; 64 * 128];
    let x = vec![0.25_f32; 128];
    let b = vec![0.0_f32; 64];
    let mut y = vec![0.0_f32; 64];
    let count = allocations_in(|| {
        simd::matvec_bias_relu(&w, &x, &b, &mut y).unwrap();
        scalar::matvec_bias(&w, &x, &b, &mut y).unwrap();
        let _ = simd::l2_normalize(&mut y);
        let _ = simd::dot(&x, &x).unwrap();
        let mut head =
            SimSiamHead::<heapless::Vec<f32, PARAMS>>::from_seed(CONFIG, &mut LcgRng::new(1))
                .unwrap();
        let mut out = [0.0_f32; 32];
        head.project_into(&x[..64], &mut out, &mut []).unwrap();
        head.set_identity_predictor().unwrap(); // d_predictor 64 == 2·d_out
        let mut workspace = [0.0_f32; 128];
        let loss = head.loss(&x[..64], &x[..64], &mut workspace).unwrap();
        assert!((loss + 1.0).abs() <= 1e-6);
    });
    assert_eq!(count, 0, "allocated {count} times");
}

/// The batch calls, both twins, run-time and compile-time choice, for batch sizes that
/// take every path: none, the pair path (1, 2), the lanes path (3), and more than one
/// group of sixteen inputs (17); on the default config (every layer at most 128 wide)
/// and natively also on a wide one (hidden layers over 256 units, inputs over 128).
#[test]
fn batch_calls_make_no_allocation() {
    const SIZES: [usize; 5] = [0, 1, 2, 3, 17];
    let configs: &[SimSiamConfig] = if cfg!(miri) {
        // The interpreter is ~1000x slower: a small head takes the same paths.
        &[SimSiamConfig {
            d_encoder: 6,
            d_projector: 10,
            d_predictor: 8,
            d_out: 4,
        }]
    } else {
        &[
            CONFIG,
            SimSiamConfig {
                d_encoder: 200,
                d_projector: 300,
                d_predictor: 260,
                d_out: 24,
            },
        ]
    };
    for config in configs {
        let n_max = SIZES[SIZES.len() - 1];
        let mut params = vec![0.0_f32; config.param_count().unwrap()];
        init_params(config, &mut LcgRng::new(5), &mut params).unwrap();
        let (e, d) = (config.d_encoder, config.d_out);
        let z1s: Vec<f32> = (0..n_max * e).map(|i| (i as f32 * 0.37).sin()).collect();
        let z2s: Vec<f32> = z1s.iter().map(|x| x * 0.9 + 0.05).collect();
        let mut projected = vec![0.0_f32; n_max * d];
        let mut predicted = vec![0.0_f32; n_max * d];
        let mut losses = vec![0.0_f32; n_max];
        let mut workspace = vec![0.0_f32; config.batch_loss_workspace_len(n_max).unwrap()];
        let mut calls = 0;
        let count = allocations_in(|| {
            for backend in [Backend::Simd, Backend::Scalar] {
                let owner = SimSiamHead::from_params(*config, &params[..]).unwrap();
                let head = twin(&owner, backend);
                for n in SIZES {
                    let (zs, z2, out) = (&z1s[..n * e], &z2s[..n * e], &mut projected[..n * d]);
                    // The workspace holds the lane blocks of groups of three or more.
                    head.project_batch_into(zs, out, &mut workspace).unwrap();
                    head.predict_batch_into(&out[..], &mut predicted[..n * d], &mut workspace)
                        .unwrap();
                    head.loss_batch_into(zs, z2, &mut losses[..n], &mut workspace)
                        .unwrap();
                    assert!(losses[..n].iter().all(|l| l.is_finite()));
                    let (scalar_head, simd_head) = (
                        owner.view().with_kernels::<Scalar>(),
                        owner.view().with_kernels::<Simd>(),
                    );
                    scalar_head
                        .project_batch_into(zs, out, &mut workspace)
                        .unwrap();
                    simd_head
                        .predict_batch_into(&out[..], &mut predicted[..n * d], &mut workspace)
                        .unwrap();
                    scalar_head
                        .loss_batch_into(zs, z2, &mut losses[..n], &mut workspace)
                        .unwrap();
                    calls += 6;
                }
                // errors are allocation-free too
                assert!(
                    head.project_batch_into(&z1s[..e + 1], &mut projected, &mut [])
                        .is_err()
                );
                assert!(
                    head.loss_batch_into(
                        &z1s[..3 * e],
                        &z2s[..3 * e],
                        &mut losses[..3],
                        &mut workspace[..1]
                    )
                    .is_err()
                );
            }
        });
        assert_eq!(calls, 60);
        assert_eq!(
            count, 0,
            "{config:?}: the batch calls allocated {count} times"
        );
    }
}

/// Parameters for any architecture, made before counting: small normal values.
fn training_params(architecture: &Architecture, seed: u64) -> Vec<f32> {
    let mut params = vec![0.0_f32; architecture.param_count().unwrap()];
    LcgRng::new(seed).fill_normal(&mut params);
    params.iter_mut().for_each(|p| *p *= 0.5);
    params
}

/// `steps` training steps on the twin `K`, over the caller's storage, with and without
/// input gradients; returns the last loss.
fn train_steps<K: Kernels>(
    architecture: &Architecture,
    params: &mut [f32],
    momentum: &mut [f32],
    [x1s, x2s]: [&[f32]; 2],
    scratch: &mut [f32],
    [g1, g2]: [&mut [f32]; 2],
    config: TrainConfig,
) -> f32 {
    let mut head = SimSiamHead::new(*architecture, params)
        .unwrap()
        .with_kernels::<K>();
    let mut sgd = Sgd::new(architecture, config, momentum).unwrap();
    let mut loss = f32::NAN;
    for step in 0..3 {
        sgd.set_lr(cosine_lr(config.lr, step, 3));
        let grads: [&mut [f32]; 2] = if step == 1 {
            [&mut [], &mut []]
        } else {
            [&mut *g1, &mut *g2]
        };
        loss = sgd.step(&mut head, x1s, x2s, scratch, grads).unwrap();
        assert!((-1.0..=1.0).contains(&loss), "loss {loss}");
    }
    assert_eq!(sgd.steps(), 3);
    // Errors are allocation-free too: a short scratch, a wrong x2s, a bad lr.
    let short = scratch.len() - 1;
    assert!(matches!(
        sgd.step(
            &mut head,
            x1s,
            x2s,
            &mut scratch[..short],
            [&mut [], &mut []]
        ),
        Err(SslError::CapacityTooSmall { .. })
    ));
    assert!(
        sgd.step(&mut head, x1s, &x2s[1..], scratch, [&mut [], &mut []])
            .is_err()
    );
    sgd.set_lr(f32::NAN);
    assert!(
        sgd.step(&mut head, x1s, x2s, scratch, [&mut [], &mut []])
            .is_err()
    );
    assert_eq!(sgd.steps(), 3);
    loss
}

/// The core training API: `Sgd::new`, `Sgd::step` (three steps a run, both twins, the
/// reference, official and lightly heads and a custom stack, with and without
/// stop-gradient and input gradients, and failing steps), `scratch_len`, `param_grads`,
/// `cosine_lr`, `TrainConfig::validate`, over caller-owned slices, and over a
/// fixed-capacity owner (`heapless::Vec` head, array momentum).
#[test]
fn core_training_makes_no_allocation() {
    const N: usize = 4;
    let architectures = [
        Architecture::reference(SimSiamConfig {
            d_encoder: 6,
            d_projector: 8,
            d_predictor: 5,
            d_out: 4,
        })
        .unwrap(),
        Architecture::official(6, 5, 3).unwrap(),
        Architecture::lightly(6, 7, 4, 3).unwrap(),
        Architecture::new(
            Stack::new(&[
                Layer::linear(6, 5).with_batch_norm(BatchNorm::AFFINE),
                Layer::linear(5, 4).with_frozen_bias().with_relu(),
            ])
            .unwrap(),
            Stack::new(&[Layer::linear(4, 4)
                .with_bias()
                .with_batch_norm(BatchNorm::PLAIN)])
            .unwrap(),
            true,
            false,
        )
        .unwrap(),
    ];
    for architecture in &architectures {
        let d = architecture.d_encoder();
        let mut params = training_params(architecture, 11);
        let mut momentum = vec![0.0_f32; params.len()];
        let x1s: Vec<f32> = (0..N * d).map(|i| (i as f32 * 0.37).sin()).collect();
        let x2s: Vec<f32> = x1s.iter().map(|x| x * 0.9 + 0.05).collect();
        let mut scratch = vec![0.0_f32; scratch_len(architecture, N).unwrap()];
        let mut g1 = vec![0.0_f32; N * d];
        let mut g2 = vec![0.0_f32; N * d];
        let count = allocations_in(|| {
            assert_eq!(scratch_len(architecture, N), Ok(scratch.len()));
            // Under miri (minutes per architecture) one setting suffices for its purpose.
            let settings: &[bool] = if cfg!(miri) { &[true] } else { &[true, false] };
            for &stop_gradient in settings {
                let config = TrainConfig {
                    stop_gradient,
                    ..TrainConfig::default()
                };
                config.validate().unwrap();
                let xs = [&x1s[..], &x2s[..]];
                let grads = [&mut g1[..], &mut g2[..]];
                train_steps::<Simd>(
                    architecture,
                    &mut params,
                    &mut momentum,
                    xs,
                    &mut scratch,
                    grads,
                    config,
                );
                let grads = [&mut g1[..], &mut g2[..]];
                train_steps::<Scalar>(
                    architecture,
                    &mut params,
                    &mut momentum,
                    xs,
                    &mut scratch,
                    grads,
                    config,
                );
                let grads = param_grads(architecture, N, &scratch).unwrap();
                assert_eq!(grads.len(), params.len());
                assert!(param_grads(architecture, N, &scratch[1..]).is_err());
            }
            // Failing constructions.
            assert!(Sgd::new(architecture, TrainConfig::default(), &mut momentum[1..]).is_err());
            let bad = TrainConfig {
                momentum: 1.0,
                ..TrainConfig::default()
            };
            assert!(bad.validate().is_err());
            assert!(Sgd::new(architecture, bad, &mut momentum[..]).is_err());
            assert!(scratch_len(architecture, usize::MAX).is_err());
            assert_eq!(cosine_lr(0.05, 0, 10), 0.05);
            assert_eq!(cosine_lr(0.05, 10, 10), 0.0);
        });
        assert_eq!(
            count, 0,
            "{architecture:?}: training allocated {count} times"
        );
        assert!(params.iter().all(|p| p.is_finite()));
    }

    // The fixed-capacity owner of the module's example: a `heapless::Vec` head and an
    // array momentum, moved into the optimiser.
    let config = SimSiamConfig {
        d_encoder: 8,
        d_projector: 16,
        d_predictor: 8,
        d_out: 4,
    };
    const OWNED: usize = 8 * 16 + 16 + 16 * 4 + 4 + 4 * 8 + 8 + 8 * 4 + 4;
    let x1s: Vec<f32> = (0..N * 8).map(|i| (i as f32 * 0.61).cos()).collect();
    let x2s: Vec<f32> = x1s.iter().map(|x| x * 1.1).collect();
    let mut scratch = vec![0.0_f32; 2048];
    let count = allocations_in(|| {
        let mut head =
            SimSiamHead::<heapless::Vec<f32, OWNED>>::from_seed(config, &mut LcgRng::new(3))
                .unwrap();
        let architecture = *head.architecture();
        let len = scratch_len(&architecture, N).unwrap();
        let mut sgd = Sgd::new(&architecture, TrainConfig::default(), [0.0_f32; OWNED]).unwrap();
        for _ in 0..3 {
            let loss = sgd
                .step(
                    &mut head,
                    &x1s,
                    &x2s,
                    &mut scratch[..len],
                    [&mut [], &mut []],
                )
                .unwrap();
            assert!((-1.0..=1.0).contains(&loss));
        }
        let mut head = head.with_kernels::<Scalar>();
        sgd.step(
            &mut head,
            &x1s,
            &x2s,
            &mut scratch[..len],
            [&mut [], &mut []],
        )
        .unwrap();
        assert_eq!(sgd.steps(), 4);
    });
    assert_eq!(count, 0, "the fixed-capacity owner allocated {count} times");
}

/// A network with an encoder (har-dense, and har-conv with feature `conv`): every eval
/// call and a training step make no allocation, on both twins.
#[cfg(feature = "encoder")]
fn encoder_paths_allocate_nothing<K: Kernels>(architecture: Architecture) {
    use simsiam::model::Encoder;
    let n = 3;
    let mut params = vec![0.0_f32; architecture.param_count().unwrap()];
    architecture
        .init_params(&mut LcgRng::new(4), &mut params)
        .unwrap();
    let (d, d_encoder, d_out) = (
        architecture.d_input(),
        architecture.d_encoder(),
        architecture.d_out(),
    );
    let xs: Vec<f32> = (0..n * d).map(|i| (i as f32 * 0.37).sin()).collect();
    let x2s: Vec<f32> = xs.iter().map(|x| x * 0.9 + 0.01).collect();
    let mut workspace = vec![0.0_f32; architecture.workspace_len(n).unwrap()];
    let (mut features, mut z, mut losses) =
        (vec![0.0; n * d_encoder], vec![0.0; n * d_out], vec![0.0; n]);
    let mut scratch = vec![0.0_f32; scratch_len(&architecture, n).unwrap()];
    let mut momentum = vec![0.0_f32; params.len()];
    let (mut g1, mut g2) = (vec![0.0_f32; n * d], vec![0.0_f32; n * d]);
    let encoder: Encoder = architecture.encoder.unwrap();
    assert!(encoder.eval_work_len(n).unwrap() > 0);
    let count = allocations_in(|| {
        let mut head = SimSiamHead::new(architecture, &mut params[..])
            .unwrap()
            .with_kernels::<K>();
        let view = head.view();
        view.encode_into(&xs[..d], &mut features[..d_encoder], &mut workspace)
            .unwrap();
        view.encode_batch_into(&xs, &mut features, &mut workspace)
            .unwrap();
        view.project_into(&xs[..d], &mut z[..d_out], &mut workspace)
            .unwrap();
        view.loss(&xs[..d], &x2s[..d], &mut workspace).unwrap();
        view.project_batch_into(&xs, &mut z, &mut workspace)
            .unwrap();
        view.loss_batch_into(&xs, &x2s, &mut losses, &mut workspace)
            .unwrap();
        let mut sgd = Sgd::new(&architecture, TrainConfig::default(), &mut momentum[..]).unwrap();
        for _ in 0..2 {
            sgd.step(&mut head, &xs, &x2s, &mut scratch, [&mut g1, &mut g2])
                .unwrap();
        }
    });
    assert_eq!(count, 0);
}

#[cfg(feature = "encoder")]
#[test]
#[cfg_attr(
    miri,
    ignore = "2.5 min under miri; the encoder's kinds reach the unsafe code of wide through the kernels the kernels and train_kernels tests interpret"
)]
fn encoder_paths_make_no_allocation() {
    use simsiam::model::HarDense;
    let dense = Architecture::har_dense(&HarDense {
        channels: 3,
        window: 8,
        hidden: 16,
        feature: 8,
        projector_hidden: 8,
        projection: 8,
        predictor_hidden: 4,
    })
    .unwrap();
    encoder_paths_allocate_nothing::<Scalar>(dense);
    encoder_paths_allocate_nothing::<Simd>(dense);
    #[cfg(feature = "conv")]
    {
        use simsiam::model::HarConv;
        let conv = Architecture::har_conv(&HarConv {
            channels: 3,
            window: 24,
            conv_channels: [4, 6, 8],
            kernels: [3, 3, 3],
            pool: 2,
            projector_hidden: 8,
            projection: 8,
            predictor_hidden: 4,
        })
        .unwrap();
        encoder_paths_allocate_nothing::<Scalar>(conv);
        encoder_paths_allocate_nothing::<Simd>(conv);
    }
}
