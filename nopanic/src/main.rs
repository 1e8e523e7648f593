//! Link-time proof that `simsiam`'s no-alloc path cannot panic.
//!
//! Built in release for `thumbv7em-none-eabihf`. The `#[panic_handler]` calls a function
//! that is declared but defined nowhere, so the link fails with an undefined-symbol
//! error if any call to it — any panic path in the code reachable from `_start` —
//! survives optimisation. The calls cover single, pair (loss) and batch paths on both
//! kernel twins, the image parser (versions 1 and 2: every layer kind, the input contract
//! and the training section), its writers and `Image::copy_params`, and training with its size
//! functions (`scratch_len`, `projection_ranges`, `momentum_len`). Every input (config, parameters, vectors, workspace) goes
//! through `core::hint::black_box`, so the optimiser cannot use known shapes or values
//! to delete a check: what is proved holds for all inputs.
#![no_std]
#![no_main]

use core::hint::black_box;

use simsiam::augment::{
    Augmenter, Rotation, ViewRecipe, Xoshiro128PlusPlus, add_jitter, rotate_triads_into,
    scale_channels, standardize,
};
use simsiam::image::{
    AlignedImage, Image, ImageExtras, TrainingSection, TrainingState, image_len_with,
    write_image_with,
};
use simsiam::fewshot::NearestClassMean;
use simsiam::kernels::correlate::{
    Correlation, correlate, correlate_pack_len, correlate_weights_add,
};
use simsiam::kernels::{Kernels, Scalar, Simd, scalar, simd};
use simsiam::layers::{
    Bias, LayerKind, Shape, batch_norm::BatchNorm1d, conv1d::Conv1d, conv1d::Padding,
    global_max_pool1d, linear::Linear, max_pool1d::MaxPool1d, relu,
};
use simsiam::model::{Architecture, BatchNorm, Layer, Stack};
use simsiam::stream::WindowStream;
#[cfg(feature = "schedule")]
use simsiam::train::cosine_lr;
use simsiam::train::{
    CollapseMonitor, Sgd, TrainConfig, collapse_level, momentum_len, output_std,
    output_std_scratch_len, param_grads, projection_ranges, scratch_len,
};
#[cfg(feature = "init")]
use simsiam::{LcgRng, init_params};
use simsiam::{SimSiamConfig, SimSiamHead, SslResult};

const CONFIG: SimSiamConfig = SimSiamConfig {
    d_encoder: 8,
    d_projector: 16,
    d_predictor: 8,
    d_out: 4,
};
const PARAM_COUNT: usize = 8 * 16 + 16 + 16 * 4 + 4 + 4 * 8 + 8 + 8 * 4 + 4;

/// Parameters "in flash": a `static` slice used in place.
static PARAMS: [f32; PARAM_COUNT] = [0.125; PARAM_COUNT];
static Z1: [f32; 8] = [0.5; 8];
static Z2: [f32; 8] = [-0.25; 8];
static BATCH: [f32; 24] = [0.75; 24];
/// A parameter image "in flash" (contents unknown to the optimiser).
static IMAGE: AlignedImage<[u8; 1024]> = AlignedImage([0; 1024]);

/// Opaque to the optimiser: a slice of unknown length and contents.
fn opaque(values: &'static [f32]) -> &'static [f32] {
    black_box(values)
}

fn observe<T>(value: SslResult<T>) {
    black_box(value.is_ok());
    if let Ok(v) = value {
        black_box(v);
    }
}

/// Inference on a parameter view, through kernels `K` chosen at compile time.
fn infer_with<K: Kernels>(head: SimSiamHead<&'static [f32], K>) {
    let mut out = black_box([0.0_f32; 4]);
    let out_len = black_box(4);
    let out = out.get_mut(..out_len).unwrap_or_default();
    let mut workspace = black_box([0.0_f32; 64]);
    let ws_len = black_box(16);
    let workspace = workspace.get_mut(..ws_len).unwrap_or_default();
    observe(head.project_into(opaque(&Z1), out, workspace));
    black_box(&*out);
    observe(head.predict_into(opaque(&Z1[..4]), out, workspace));
    black_box(&*out);
    observe(head.loss(opaque(&Z1), opaque(&Z2), workspace));
    infer_batch_with::<K>(head);
}

/// The batch calls: rows of `Z1`/`Z2` as `n × d` inputs, `n` unknown to the optimiser.
fn infer_batch_with<K: Kernels>(head: SimSiamHead<&'static [f32], K>) {
    let mut out = black_box([0.0_f32; 64]);
    let out_len = black_box(8);
    let out = out.get_mut(..out_len).unwrap_or_default();
    let mut workspace = black_box([0.0_f32; 256]);
    let ws_len = black_box(128);
    let workspace = workspace.get_mut(..ws_len).unwrap_or_default();
    observe(head.project_batch_into(opaque(&BATCH), out, workspace));
    observe(head.predict_batch_into(opaque(&BATCH), out, workspace));
    let mut losses = black_box([0.0_f32; 24]);
    let n = black_box(3);
    let losses = losses.get_mut(..n).unwrap_or_default();
    observe(head.loss_batch_into(opaque(&BATCH), opaque(&BATCH), losses, workspace));
    black_box(&*out);
}

/// A head read from a parameter image in place, and written back: the bytes are opaque,
/// so every architecture the parser accepts (BatchNorm, three- and four-layer stacks) is
/// a possible path.
fn image(bytes: &'static [u8]) {
    observe(Image::parse(bytes).map(|image| image.param_count()));
    if let Ok(image) = Image::parse(bytes) {
        // Into a buffer of opaque length: right, short, long or empty.
        let mut params = black_box([0.0_f32; 256]);
        observe(image.copy_params(cut(&mut params, 256)));
        black_box(&params);
    }
    if let Ok(image) = Image::parse_unverified(bytes) {
        image_sections(&image);
    }
    if let Ok(head) = SimSiamHead::from_checked_image(bytes) {
        infer_with(black_box(head).with_kernels::<Scalar>());
    }
    if let Ok(head) = SimSiamHead::from_image(bytes) {
        let head = black_box(head);
        let mut copy = black_box([0_u8; 1024]);
        observe(head.image_len());
        observe(head.write_image(&mut copy));
        black_box(&copy);
        infer_with(head.with_kernels::<Simd>());
        infer_with(head.with_kernels::<Scalar>());
    }
}

/// What a version-2 image holds besides the parameters (encoder counters, the input
/// contract and its standardisation, the training section and its momentum), read,
/// resumed and written back as version 2, into buffers of opaque length.
fn image_sections(image: &Image<'static>) {
    black_box(image.version());
    black_box(image.encoder_batches_tracked());
    let mut momentum = black_box([0.0_f32; 256]);
    observe(image.copy_momentum(cut(&mut momentum, 256)));
    observe(image.momentum().map(<[f32]>::len));
    if let Some(contract) = image.input_contract() {
        black_box(contract.shape);
        if let Some(standardization) = contract.standardization {
            let (mut mean, mut std) = black_box(([0.0_f32; 16], [0.0_f32; 16]));
            observe(standardization.copy_into(cut(&mut mean, 16), cut(&mut std, 16)));
            black_box((standardization.mean(black_box(3)), standardization.std(black_box(5))));
            black_box((&mean, &std));
        }
    }
    let state = image.training().unwrap_or_default();
    observe(state.validate());
    let resumed = state.resume_sgd(image.architecture(), cut(&mut momentum, 256));
    if let Ok(sgd) = &resumed {
        black_box(TrainingState::from_sgd(sgd));
    }
    observe(resumed.map(|sgd| sgd.steps()));
    let params = opaque(&PARAMS);
    let extras = ImageExtras {
        batches_tracked: image.batches_tracked(),
        encoder_batches_tracked: image.encoder_batches_tracked(),
        input: image.input_contract(),
        training: image.training().map(|state| TrainingSection {
            state,
            momentum: params,
        }),
    };
    let extras = black_box(extras);
    observe(image_len_with(image.architecture(), &extras));
    let mut copy = black_box([0_u8; 1024]);
    observe(write_image_with(image.architecture(), params, &extras, &mut copy));
    black_box(&copy);
}

/// The public shape-checked kernels of both twins: every function of `kernels::simd`
/// and `kernels::scalar`.
fn kernels() {
    let (a, b) = (opaque(&Z1), opaque(&Z2));
    observe(simd::dot(a, b));
    observe(scalar::dot(a, b));
    let mut y = black_box([0.0_f32; 4]);
    let w = opaque(&PARAMS[..32]);
    let bias = opaque(&Z2[..4]);
    observe(simd::matvec_bias(w, a, bias, &mut y));
    observe(scalar::matvec_bias(w, a, bias, &mut y));
    observe(simd::matvec_bias_relu(w, a, bias, &mut y));
    observe(scalar::matvec_bias_relu(w, a, bias, &mut y));
    observe(simd::matvec_accumulate(w, a, &mut y));
    observe(scalar::matvec_accumulate(w, a, &mut y));
    let mut y2 = black_box([0.0_f32; 4]);
    observe(simd::matvec2_bias(w, a, b, bias, &mut y, &mut y2));
    observe(scalar::matvec2_bias(w, a, b, bias, &mut y, &mut y2));
    black_box(&y2);
    // The training kernels, on opaque shapes and leading dimensions.
    let mut c = black_box([0.0_f32; 32]);
    let [m, n, k, lda, ldb, ldc] = black_box([2_usize, 4, 8, 8, 4, 4]);
    observe(simd::gemm_nn_add(m, n, k, w, lda, a, ldb, &mut c, ldc));
    observe(scalar::gemm_nn_add(m, n, k, w, lda, a, ldb, &mut c, ldc));
    observe(simd::gemm_tn_add(m, n, k, w, lda, a, ldb, &mut c, ldc));
    observe(scalar::gemm_tn_add(m, n, k, w, lda, a, ldb, &mut c, ldc));
    observe(simd::gemm_nt_add(m, n, k, w, lda, a, ldb, &mut c, ldc));
    observe(scalar::gemm_nt_add(m, n, k, w, lda, a, ldb, &mut c, ldc));
    black_box(&c);
    black_box(simd::l2_normalize(&mut y));
    black_box(scalar::l2_normalize(&mut y));
    simd::relu(&mut y);
    scalar::relu(&mut y);
    black_box(&y);
}

/// On-device initialisation into fixed-capacity storage, and the identity predictor.
#[cfg(feature = "init")]
fn construction() {
    let config = black_box(CONFIG);
    observe(config.param_count());
    observe(config.loss_workspace_len());
    let mut rng = LcgRng::new(black_box(7));
    let mut params = black_box([0.0_f32; PARAM_COUNT]);
    let len = black_box(PARAM_COUNT);
    observe(init_params(
        &config,
        &mut rng,
        params.get_mut(..len).unwrap_or_default(),
    ));
    let mut shuffled = black_box([1_u32, 2, 3, 4]);
    rng.shuffle(&mut shuffled);
    black_box(rng.next_usize(black_box(3)));
    if let Ok(mut head) =
        SimSiamHead::<heapless::Vec<f32, PARAM_COUNT>>::from_seed(config, &mut rng)
    {
        head = black_box(head);
        observe(head.set_identity_predictor());
        let mut out = black_box([0.0_f32; 4]);
        observe(head.project_into(opaque(&Z1), &mut out, &mut []));
    }
}

/// An architecture the optimiser knows nothing about: any preset with opaque widths, or
/// a custom stack of every layer kind (bias, frozen bias, BatchNorm affine or not, ReLU,
/// L2 after either stack or not), chosen at run time and hidden behind `black_box`.
fn any_architecture() -> Option<Architecture> {
    let d = |v: usize| black_box(v);
    let architecture = match black_box(0_u8) {
        0 => Architecture::reference(black_box(CONFIG)),
        1 => Architecture::official(d(8), d(4), d(2)),
        2 => Architecture::lightly(d(8), d(6), d(4), d(2)),
        _ => Architecture::new(
            Stack::new(black_box(&[
                Layer::linear(8, 6).with_batch_norm(BatchNorm::AFFINE),
                Layer::linear(6, 6).with_bias().with_relu(),
                Layer::linear(6, 4)
                    .with_batch_norm(BatchNorm::PLAIN.with_eps(1e-3))
                    .with_relu(),
                Layer::linear(4, 4).with_frozen_bias(),
            ]))
            .ok()?,
            Stack::new(black_box(&[Layer::linear(4, 4).with_bias().with_relu()])).ok()?,
            black_box(true),
            black_box(false),
        ),
    };
    Some(black_box(architecture.ok()?))
}

/// Training settings with every field opaque (any value, valid or not).
fn any_train_config() -> TrainConfig {
    black_box(TrainConfig {
        lr: black_box(0.05),
        momentum: black_box(0.9),
        weight_decay: black_box(1e-4),
        fix_predictor_lr: black_box(true),
        stop_gradient: black_box(true),
        batch_norm_momentum: black_box(0.1),
    })
}

/// `len` floats of `buffer` (`len` opaque: any length, short or empty included).
fn cut(buffer: &mut [f32], len: usize) -> &mut [f32] {
    buffer.get_mut(..black_box(len)).unwrap_or_default()
}

/// Training, core API: sizes, the optimiser and steps on both twins, with opaque
/// architecture, parameters, batch, scratch, input gradients and settings.
fn training() {
    let config = any_train_config();
    observe(config.validate());
    #[cfg(feature = "schedule")]
    black_box(cosine_lr(black_box(0.05), black_box(3), black_box(10)));
    let Some(architecture) = any_architecture() else {
        return;
    };
    let n = black_box(3);
    observe(scratch_len(&architecture, n));
    observe(projection_ranges(&architecture, n));
    observe(momentum_len(&architecture));
    let param_count = architecture.param_count().unwrap_or(0);
    let mut params = black_box([0.125_f32; 512]);
    let mut momentum = black_box([0.0_f32; 512]);
    let mut scratch = black_box([0.0_f32; 1024]);
    let mut g1 = black_box([0.0_f32; 32]);
    let mut g2 = black_box([0.0_f32; 32]);
    let params = cut(&mut params, param_count);
    let Ok(head) = SimSiamHead::from_checked_params(architecture, params) else {
        return;
    };
    let mut head = black_box(head);
    let resumed = Sgd::resume(
        &architecture,
        config,
        cut(&mut momentum, param_count),
        black_box(3),
        black_box(0.01),
    );
    observe(resumed.map(|sgd| sgd.steps()));
    let Ok(sgd) = Sgd::new(&architecture, config, cut(&mut momentum, param_count)) else {
        return;
    };
    let mut sgd = black_box(sgd);
    sgd.set_lr(black_box(0.01));
    black_box((sgd.lr(), sgd.steps(), sgd.config(), sgd.architecture()));
    black_box(sgd.momentum());
    let scratch = cut(&mut scratch, 700);
    observe(sgd.step(
        &mut head,
        opaque(&BATCH),
        opaque(&BATCH),
        scratch,
        [cut(&mut g1, 24), cut(&mut g2, 24)],
    ));
    let mut head = black_box(head.with_kernels::<Scalar>());
    observe(sgd.step(
        &mut head,
        opaque(&BATCH),
        opaque(&BATCH[..16]),
        scratch,
        [cut(&mut g1, 0), cut(&mut g2, 24)],
    ));
    black_box(head.params());
    observe(param_grads(&architecture, n, scratch));
    // The collapse monitor.
    let mut std_scratch = black_box([0.0_f32; 64]);
    let dim = black_box(4);
    black_box(output_std_scratch_len(dim));
    let std = output_std(opaque(&BATCH), dim, cut(&mut std_scratch, 8));
    observe(std);
    black_box(collapse_level(black_box(0.25), dim));
    let mut monitor = black_box(made::<CollapseMonitor>());
    if let Ok(weighted) = CollapseMonitor::with_weight(black_box(0.5)) {
        monitor = weighted;
    }
    observe(monitor.update(opaque(&BATCH), dim, cut(&mut std_scratch, 8)));
    black_box((
        monitor.average_std(),
        monitor.collapse_level(),
        monitor.normalized_std(),
    ));
}

/// Every public function of `simsiam::layers` on opaque kinds, shapes, batch sizes and
/// buffers, both twins where the kind is generic over them.
fn layers() {
    let d = |v: usize| black_box(v);
    let n = d(2);
    let shape = black_box(Shape::sequence(d(2), d(6)));
    let bias = black_box(Bias::Trainable);
    let mut x = black_box([0.5_f32; 64]);
    let mut y = black_box([0.0_f32; 64]);
    let mut dy = black_box([0.25_f32; 64]);
    let mut dx = black_box([0.0_f32; 64]);
    let mut grads = black_box([0.0_f32; 64]);
    let mut scratch = black_box([0.0_f32; 64]);
    let mut saved = black_box([0.0_f32; 64]);
    let mut tracked = black_box(0_u64);
    let params = opaque(&PARAMS[..40]);
    let mut bn_params = black_box([1.0_f32; 16]);
    let (x, y, dy, dx) = (
        cut(&mut x, 24),
        cut(&mut y, 24),
        cut(&mut dy, 24),
        cut(&mut dx, 24),
    );
    let grads = cut(&mut grads, 40);
    let scratch = cut(&mut scratch, 48);
    let saved = cut(&mut saved, 34);

    let linear = black_box(Linear {
        d_in: d(12),
        d_out: d(3),
        bias,
    });
    let conv = black_box(Conv1d {
        c_in: d(2),
        c_out: d(3),
        kernel: d(3),
        stride: d(1),
        padding: black_box(Padding::Same),
        bias,
    });
    let batch_norm = black_box(BatchNorm1d::new(d(2)));
    let pool = black_box(MaxPool1d { kernel: d(2) });
    for kind in [
        LayerKind::Linear(linear),
        LayerKind::BatchNorm1d(batch_norm),
        LayerKind::Relu,
        LayerKind::Conv1d(conv),
        LayerKind::MaxPool1d(pool),
        LayerKind::GlobalMaxPool1d,
    ] {
        let kind = black_box(kind);
        observe(kind.output_shape(shape));
        observe(kind.param_count());
        observe(kind.flops(shape));
        observe(kind.saved_len(shape, n));
        observe(kind.scratch_len(shape));
        black_box((kind.params().total(), kind.in_place()));
    }
    observe(linear.forward_eval::<Simd>(params, n, x, y));
    observe(linear.forward_train::<Scalar>(params, n, x, y));
    observe(linear.backward::<Simd>(params, n, x, dy, Some(&mut *dx), grads));
    observe(linear.backward::<Scalar>(params, n, x, dy, None, grads));
    observe(conv.forward_eval::<Simd>(params, n, shape, x, y, scratch));
    observe(conv.forward_train::<Scalar>(params, n, shape, x, y, scratch));
    observe(conv.backward::<Simd>(params, n, shape, x, dy, Some(&mut *dx), grads, scratch));
    observe(conv.backward::<Scalar>(params, n, shape, x, dy, None, grads, scratch));
    observe(conv.pads());
    // The correlation kernels behind Conv1d, directly (any shape a caller passes).
    let correlation = black_box(Correlation {
        n,
        c_in: d(2),
        len: d(4),
        c_out: d(3),
        kernel: d(3),
        stride: d(1),
        left: d(1),
        out_len: d(4),
    });
    observe(correlate_pack_len(&correlation));
    observe(correlate::<Simd>(&correlation, params, None, x, y, scratch));
    observe(correlate::<Scalar>(&correlation, params, params.get(..3), x, y, scratch));
    observe(correlate_weights_add::<Simd>(&correlation, dy, x, grads));
    observe(correlate_weights_add::<Scalar>(&correlation, dy, x, grads));
    let bn_params = cut(&mut bn_params, 8);
    observe(batch_norm.forward_eval(bn_params, n, shape, y));
    observe(batch_norm.forward_train(bn_params, n, shape, y, saved));
    observe(batch_norm.backward(bn_params, n, shape, saved, dy, grads));
    observe(batch_norm.forward_train_with::<Simd>(bn_params, n, shape, y, saved));
    observe(batch_norm.backward_with::<Simd>(bn_params, n, shape, saved, dy, grads));
    observe(batch_norm.update_running_stats(bn_params, n, shape, saved, &mut tracked));
    black_box(tracked);
    observe(relu::forward(n, shape, y));
    observe(relu::backward(n, shape, y, dy));
    observe(pool.forward(n, shape, x, y));
    observe(pool.backward(n, shape, x, dy, dx));
    observe(global_max_pool1d::forward(n, shape, x, y));
    observe(global_max_pool1d::backward(n, shape, x, dy, dx));
    black_box((&*x, &*y, &*dy, &*dx, &*grads, &*scratch));
}

/// The augmentations: the generator, the sampler, a rotation, every step and the
/// `Augmenter` on opaque shapes, statistics, recipe, seed and buffers (any length).
fn augment() {
    let mut rng = Xoshiro128PlusPlus::from_seed(black_box(5));
    if let Ok(resumed) = Xoshiro128PlusPlus::from_state(black_box([1, 2, 3, 4])) {
        rng = black_box(resumed);
    }
    black_box(rng.state());
    black_box(rng.next_u32());
    black_box(rng.next_normal());
    let mut normals = black_box([0.0_f32; 8]);
    rng.fill_normal(cut(&mut normals, 5));
    let rotation = black_box(Rotation::random(&mut rng));
    let rotation = Rotation::from_quaternion(black_box([0.5, 0.5, 0.5, 0.5])).unwrap_or(rotation);
    black_box(rotation.apply(black_box([1.0, 2.0, 3.0])));
    let recipe = black_box(ViewRecipe {
        rotate: black_box(true),
        scale_sigma: black_box(0.1),
        jitter_sigma: black_box(0.1),
    });
    observe(recipe.validate());
    let [channels, len, n] = black_box([6_usize, 4, 2]);
    let (mean, std) = (opaque(&Z2[..6]), opaque(&Z1[2..]));
    let mut window = black_box([0.0_f32; 48]);
    let mut views1 = black_box([0.0_f32; 48]);
    let mut views2 = black_box([0.0_f32; 48]);
    let raw = opaque(&BATCH);
    observe(rotate_triads_into(
        raw,
        channels,
        len,
        &rotation,
        cut(&mut window, 24),
    ));
    observe(standardize(cut(&mut window, 24), channels, len, mean, std));
    observe(scale_channels(
        cut(&mut window, 24),
        channels,
        len,
        black_box(0.1),
        &mut rng,
    ));
    observe(add_jitter(cut(&mut window, 24), black_box(0.1), &mut rng));
    if let Ok(augmenter) = Augmenter::new(recipe, channels, len, mean, std) {
        let augmenter = black_box(augmenter);
        black_box((
            augmenter.recipe(),
            augmenter.channels(),
            augmenter.samples(),
        ));
        black_box(augmenter.window_len());
        observe(augmenter.view_into(raw, &mut rng, cut(&mut views1, 24)));
        observe(augmenter.two_views(raw, &mut rng, cut(&mut views1, 24), cut(&mut views2, 24)));
        observe(augmenter.two_views_batch(
            raw,
            n,
            &mut rng,
            cut(&mut views1, 48),
            cut(&mut views2, 48),
        ));
    }
    black_box((&window, &views1, &views2, rng));
}

/// The few-shot classifier and the window stream on opaque sizes, storage and inputs.
fn few_shot_and_stream() {
    let [dim, classes, class] = black_box([4_usize, 3, 1]);
    let mut storage = black_box([0.0_f32; 24]);
    observe(NearestClassMean::<&mut [f32]>::storage_len(dim, classes));
    if let Ok(mut classifier) = NearestClassMean::new(dim, classes, cut(&mut storage, 19)) {
        observe(classifier.add(opaque(&Z1[..4]), class));
        observe(classifier.predict(opaque(&Z2[..4])));
        let mut distances = black_box([0.0_f32; 4]);
        observe(classifier.distances_into(opaque(&Z2[..4]), cut(&mut distances, 3)));
        black_box(classifier.class_mean(black_box(2)));
        black_box((classifier.class_count(class), classifier.count()));
        classifier.clear();
    }
    if let Ok(classifier) = NearestClassMean::from_storage(dim, classes, cut(&mut storage, 19)) {
        observe(classifier.predict(opaque(&Z2[..4])));
    }
    let [channels, len, stride, factor] = black_box([2_usize, 4, 2, 3]);
    let mut ring = black_box([0.0_f32; 16]);
    observe(WindowStream::<&mut [f32]>::storage_len(channels, len));
    if let Ok(mut stream) = WindowStream::new(channels, len, stride, factor, cut(&mut ring, 10)) {
        let mut window = black_box([0.0_f32; 8]);
        for _ in 0..black_box(20) {
            if let Ok(true) = stream.push(opaque(&Z1[..2])) {
                observe(stream.window_into(cut(&mut window, 8)));
            }
        }
        black_box((stream.len(), stream.is_empty(), stream.window_len()));
        stream.clear();
    }
}

/// `T::default()`, opaque.
fn made<T: Default>() -> T {
    black_box(T::default())
}

#[cfg(feature = "canary")]
fn canary() {
    let values = black_box([1.0_f32; 4]);
    black_box(values[black_box(9)]);
}

/// The entry point: keeps everything above alive through the link.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    loop {
        if let Ok(head) = SimSiamHead::from_params(black_box(CONFIG), opaque(&PARAMS)) {
            // Forget what construction proved about the config (non-zero dimensions,
            // no overflow): the calls below must be panic-free on their own.
            let head = black_box(head);
            infer_with(head.with_kernels::<Simd>());
            infer_with(head.with_kernels::<Scalar>());
        }
        image(black_box(&IMAGE.0[..]));
        kernels();
        training();
        layers();
        augment();
        few_shot_and_stream();
        #[cfg(feature = "init")]
        construction();
        #[cfg(feature = "canary")]
        canary();
    }
}

#[cfg(not(feature = "diagnose"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    unsafe extern "C" {
        /// Defined nowhere: any surviving reference to it fails the link.
        fn simsiam_nopanic__a_panic_path_survived_optimisation() -> !;
    }
    // SAFETY: never runs; the link fails first if this is reachable at all.
    unsafe { simsiam_nopanic__a_panic_path_survived_optimisation() }
}

/// With `--features diagnose` the link succeeds, so that a disassembly can show which
/// function still calls into `core::panicking` (see `.ci/steps/30-nopanic.sh`).
#[cfg(feature = "diagnose")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
