//! Trained heads against PyTorch itself: the fixtures of `tests/data` (made by
//! `scripts/make_fixtures.py` from real `torch.nn` modules in `eval()`, see
//! tests/data/README.md) run through [`SimSiamHead`] on both kernel twins.
//!
//! Tolerances, from the trained-heads issue: every output within `1e-4·max(1, |v|)` of
//! PyTorch's f32 value, the loss within `1e-5`. Measured worst cases are printed (run
//! with `--nocapture`); they are one to three orders of magnitude inside. PyTorch's own
//! f32 results differ from its f64 ones by up to 3.7e-6 at the paper's size
//! (tests/data/README.md), so the bound cannot be much tighter than 1e-5 there.
//!
//! - `lightly`: lightly 1.6's `SimSiamProjectionHead(40, 24, 16)` and
//!   `SimSiamPredictionHead(16, 8, 16)`, trained 5 steps, from its `.safetensors`
//!   state dict;
//! - `paper`: the official head at the paper's size (2048/2048/512), weights from the
//!   integer formula of tests/data/README.md, BatchNorm statistics far from identity;
//! - and each through a parameter image (write, parse, run in place) bit for bit.

// The image round trip uses the alloc API (`SimSiam::from_image`, `to_image`).
#![cfg(feature = "alloc")]

use safetensors::{Dtype, SafeTensors};
use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::model::Architecture;
use simsiam::{SimSiam, SimSiamHead};

/// The elementwise tolerance, relative to `max(1, |v|)`.
const OUTPUT_TOLERANCE: f64 = 1e-4;
/// The loss tolerance.
const LOSS_TOLERANCE: f64 = 1e-5;

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Tensor `name` of a safetensors file as f32 (F32 stored) or f64 (F64 stored).
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

/// PyTorch's inputs and outputs for one head: batch rows of `x1`, `x2`, `z1`, `z2`,
/// `p1`, `p2` and the batch-mean loss, in f32 (what we must match) and f64 (reported).
struct Eval {
    x: [Vec<f32>; 2],
    z: [Vec<f64>; 2],
    p: [Vec<f64>; 2],
    loss: f64,
    loss_f64: f64,
}

fn eval(name: &str) -> Eval {
    let bytes = read(name);
    let file = SafeTensors::deserialize(&bytes).unwrap();
    Eval {
        x: [f32s(&tensor(&file, "x1")), f32s(&tensor(&file, "x2"))],
        z: [tensor(&file, "z1"), tensor(&file, "z2")],
        p: [tensor(&file, "p1"), tensor(&file, "p2")],
        loss: tensor(&file, "loss")[0],
        loss_f64: tensor(&file, "loss_f64")[0],
    }
}

/// The worst `|ours − torch| / max(1, |torch|)` over one output, asserted within the
/// tolerance.
fn compare(what: &str, ours: &[f32], torch: &[f64]) -> f64 {
    assert_eq!(ours.len(), torch.len(), "{what}: length");
    let worst = ours
        .iter()
        .zip(torch)
        .map(|(a, t)| (f64::from(*a) - t).abs() / t.abs().max(1.0))
        .fold(0.0, f64::max);
    assert!(
        worst <= OUTPUT_TOLERANCE,
        "{what}: {worst:e} from PyTorch > {OUTPUT_TOLERANCE:e}"
    );
    worst
}

/// Every output of `head` (single calls, batch calls, loss) against PyTorch's, on the
/// twin `K`; returns the worst output and loss differences.
fn check_head<K: Kernels>(name: &str, head: SimSiamHead<&[f32], K>, eval: &Eval) -> (f64, f64) {
    let (d_encoder, d_out) = (head.d_encoder(), head.d_out());
    let n = eval.x[0].len() / d_encoder;
    let architecture = head.architecture();
    let mut workspace = vec![0.0; architecture.workspace_len(n).unwrap()];
    let mut worst = 0.0_f64;
    let mut losses = Vec::new();
    for (view, (x, (z, p))) in eval.x.iter().zip(eval.z.iter().zip(&eval.p)).enumerate() {
        let rows = x
            .chunks_exact(d_encoder)
            .zip(z.chunks_exact(d_out).zip(p.chunks_exact(d_out)));
        for (row, (x, (z, p))) in rows.enumerate() {
            let mut projected = vec![0.0; d_out];
            head.project_into(x, &mut projected, &mut workspace)
                .unwrap();
            worst = worst.max(compare(
                &format!("{name} z{} row {row}", view + 1),
                &projected,
                z,
            ));
            let mut predicted = vec![0.0; d_out];
            head.predict_into(&projected, &mut predicted, &mut workspace)
                .unwrap();
            worst = worst.max(compare(
                &format!("{name} p{} row {row}", view + 1),
                &predicted,
                p,
            ));
        }
        // The batch calls: all rows at once.
        let mut projected = vec![0.0; n * d_out];
        head.project_batch_into(x, &mut projected, &mut workspace)
            .unwrap();
        worst = worst.max(compare(
            &format!("{name} batch z{}", view + 1),
            &projected,
            z,
        ));
        let mut predicted = vec![0.0; n * d_out];
        head.predict_batch_into(&projected, &mut predicted, &mut workspace)
            .unwrap();
        worst = worst.max(compare(
            &format!("{name} batch p{}", view + 1),
            &predicted,
            p,
        ));
    }
    let pairs = eval.x[0]
        .chunks_exact(d_encoder)
        .zip(eval.x[1].chunks_exact(d_encoder));
    for (z1, z2) in pairs {
        losses.push(head.loss(z1, z2, &mut workspace).unwrap());
    }
    let mut batch_losses = vec![0.0; n];
    head.loss_batch_into(&eval.x[0], &eval.x[1], &mut batch_losses, &mut workspace)
        .unwrap();
    let mean = |v: &[f32]| v.iter().map(|l| f64::from(*l)).sum::<f64>() / v.len() as f64;
    let mut loss_worst = 0.0_f64;
    for (what, loss) in [("loss", mean(&losses)), ("batch loss", mean(&batch_losses))] {
        let diff = (loss - eval.loss).abs();
        assert!(
            diff <= LOSS_TOLERANCE,
            "{name} {what}: {loss} vs PyTorch {} ({diff:e} > {LOSS_TOLERANCE:e})",
            eval.loss
        );
        loss_worst = loss_worst.max(diff);
    }
    (worst, loss_worst)
}

/// Runs `check_head` on both twins, then through a parameter image (in place) and the
/// alloc API's image copy, which must equal the direct head bit for bit.
fn check_all(name: &str, architecture: Architecture, params: &[f32], eval: &Eval) {
    let head = SimSiamHead::new(architecture, params).unwrap();
    for (twin, (worst, loss)) in [
        ("simd", check_head(name, head.with_kernels::<Simd>(), eval)),
        (
            "scalar",
            check_head(name, head.with_kernels::<Scalar>(), eval),
        ),
    ] {
        println!(
            "{name} {twin}: worst output {worst:.2e} (rel. to max(1,|v|)), loss {loss:.2e} \
             (PyTorch f32 vs f64 loss: {:.2e})",
            (eval.loss - eval.loss_f64).abs()
        );
    }

    // A parameter image: every parameter kept bit for bit, run in place.
    let mut image = simsiam::image::AlignedImage([0_u8; 1 << 16]);
    let mut storage: Vec<u8>;
    let bytes: &[u8] = match head.image_len().unwrap() {
        len if len <= image.0.len() => {
            let len = head.write_image(&mut image.0).unwrap();
            &image.0[..len]
        }
        _ => {
            // Too large for the stack buffer (the paper's head): the alloc API's copy.
            // Copied to a 4-byte-aligned address (a `Vec<u8>` need not be), so that it
            // can be viewed in place below.
            let image = SimSiam::from_params(architecture, params.to_vec())
                .unwrap()
                .to_image()
                .unwrap();
            storage = vec![0; image.len() + 3];
            let skip = storage.as_ptr().align_offset(4);
            storage[skip..skip + image.len()].copy_from_slice(&image);
            &storage[skip..skip + image.len()]
        }
    };
    let model = SimSiam::from_image(bytes).unwrap();
    assert_eq!(model.architecture(), &architecture);
    assert!(
        model
            .head()
            .params()
            .iter()
            .zip(params)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{name}: image parameters are not bit for bit"
    );
    let d_encoder = architecture.d_encoder();
    let x = &eval.x[0][..d_encoder];
    let mut workspace = vec![0.0; architecture.workspace_len(1).unwrap()];
    let mut direct = vec![0.0; architecture.d_out()];
    head.project_into(x, &mut direct, &mut workspace).unwrap();
    assert_eq!(
        model.project(x).unwrap(),
        direct,
        "{name}: image head differs"
    );
    // The bytes are 4-byte aligned: an error here fails the test.
    let in_place = SimSiamHead::from_image(bytes)
        .unwrap_or_else(|e| panic!("{name}: in-place image head: {e:?}"));
    let mut again = vec![0.0; architecture.d_out()];
    in_place
        .project_into(x, &mut again, &mut workspace)
        .unwrap();
    assert_eq!(again, direct, "{name}: in-place image head differs");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "minutes under miri (safetensors' JSON header); the same paths run in tests/image.rs"
)]
fn lightly_head_matches_pytorch() {
    let bytes = read("lightly_head.safetensors");
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let p = |key: &str| f32s(&tensor(&file, key));
    let bn = |prefix: &str| {
        ["weight", "bias", "running_mean", "running_var"].map(|k| p(&format!("{prefix}.{k}")))
    };
    // Layout order per layer: W, bias, γ, β, running_mean, running_var.
    let mut params = Vec::new();
    for (linear, norm) in [("0", "1"), ("3", "4")] {
        params.extend(p(&format!("projection_head.layers.{linear}.weight")));
        bn(&format!("projection_head.layers.{norm}"))
            .iter()
            .for_each(|v| params.extend(v));
    }
    params.extend(p("projection_head.layers.6.weight"));
    params.extend(p("projection_head.layers.7.running_mean"));
    params.extend(p("projection_head.layers.7.running_var"));
    params.extend(p("prediction_head.layers.0.weight"));
    bn("prediction_head.layers.1")
        .iter()
        .for_each(|v| params.extend(v));
    params.extend(p("prediction_head.layers.3.weight"));
    params.extend(p("prediction_head.layers.3.bias"));
    let architecture = Architecture::lightly(40, 24, 16, 8).unwrap();
    assert_eq!(params.len(), architecture.param_count().unwrap());
    check_all(
        "lightly",
        architecture,
        &params,
        &eval("lightly_eval.safetensors"),
    );
}

/// tests/data/README.md's hash of tensor `t`, flat index `i` (murmur3's fmix32).
fn hash(t: u32, i: u32) -> u32 {
    let mut h = i
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(t.wrapping_mul(0x85EB_CA77))
        .wrapping_add(0x2545_F491);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

/// tests/data/README.md's formula: `offset + v·2^-k`, `v` the hash's top 12 bits − 2048.
fn formula(t: u32, i: u32, offset: f32, k: i32) -> f32 {
    let v = (hash(t, i) >> 20) as i32 - 2048;
    (v as f32) * 2.0_f32.powi(-k) + offset
}

#[test]
fn formula_anchors() {
    assert_eq!(hash(0, 0), 0x9ca7_0078);
    assert_eq!(hash(0, 1), 0x35e2_c8fb);
    assert_eq!(hash(22, 4095), 0x8acd_9066);
    assert_eq!(formula(0, 0, 0.0, 15), 458.0 / 32768.0); // 0.01397705078125 in the table
    assert_eq!(formula(13, 2047, 1.0, 13), 1.0 - 1877.0 / 8192.0); // 0.7708740234375
}

#[test]
#[cfg_attr(miri, ignore = "10.5 million weights: far too slow under miri")]
fn paper_size_official_head_matches_pytorch() {
    // (tensor number, length, offset, k) in the table's order, which is the layout's.
    const D: usize = 2048;
    const PRED: usize = 512;
    let tensors: [(u32, usize, f32, i32); 21] = [
        (0, D * D, 0.0, 15),
        (1, D, 1.0, 13),
        (2, D, 0.0, 13),
        (3, D, 0.0, 14),
        (4, D, 1.0, 13),
        (5, D * D, 0.0, 15),
        (6, D, 1.0, 13),
        (7, D, 0.0, 13),
        (8, D, 0.0, 14),
        (9, D, 1.0, 13),
        (10, D * D, 0.0, 15),
        (11, D, 0.0, 13),
        (12, D, 0.0, 14),
        (13, D, 1.0, 13),
        (14, PRED * D, 0.0, 16),
        (15, PRED, 1.0, 13),
        (16, PRED, 0.0, 13),
        (17, PRED, 0.0, 14),
        (18, PRED, 1.0, 13),
        (19, D * PRED, 0.0, 14),
        (20, D, 0.0, 13),
    ];
    let params: Vec<f32> = tensors
        .iter()
        .flat_map(|&(t, len, offset, k)| (0..len as u32).map(move |i| formula(t, i, offset, k)))
        .collect();
    let architecture = Architecture::official(D, D, PRED).unwrap();
    assert_eq!(params.len(), architecture.param_count().unwrap());
    let mut eval = eval("paper_eval.safetensors");
    let inputs = [21, 22].map(|t| {
        (0..2 * D as u32)
            .map(|i| formula(t, i, 0.0, 11))
            .collect::<Vec<_>>()
    });
    assert_eq!(inputs, eval.x, "the formula's inputs are the stored ones");
    eval.x = inputs;
    check_all("paper", architecture, &params, &eval);
}
