//! The committed PyTorch fixtures: imported heads reproduce PyTorch's outputs, and
//! checkpoint → image → safetensors → image is lossless.

mod common;

use common::{FIXTURES, data, f32_tensor, names};
use simsiam::SimSiam;
use simsiam::image::Image;
use simsiam_convert::{Checkpoint, Head, KeyNames, Preset, import};

/// The F64 tensor `name` of a safetensors file.
fn f64_tensor(bytes: &[u8], name: &str) -> Vec<f64> {
    let tensors = safetensors::SafeTensors::deserialize(bytes).expect("safetensors");
    let view = tensors.tensor(name).expect(name);
    assert_eq!(view.dtype(), safetensors::Dtype::F64, "{name}");
    let (words, _) = view.data().as_chunks::<8>();
    words.iter().map(|w| f64::from_le_bytes(*w)).collect()
}

/// `|got − want| ≤ tol·max(1, |want|)` elementwise; returns the largest `|got − want|`.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0_f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let diff = (g - w).abs();
        assert!(
            diff <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, PyTorch {w} (diff {diff:e})"
        );
        worst = worst.max(diff);
    }
    worst
}

#[test]
fn imported_heads_match_pytorch() {
    for (preset, checkpoint, eval) in FIXTURES {
        let image = simsiam_convert::import(data(checkpoint), preset, &names()).expect(checkpoint);
        let model = SimSiam::from_image(&image).expect("image");
        let eval = std::fs::read(data(eval)).expect("eval file");
        let (shape, x1) = f32_tensor(&eval, "x1");
        let (_, x2) = f32_tensor(&eval, "x2");
        let [n, d] = shape[..] else {
            panic!("x1 shape {shape:?}")
        };
        assert_eq!(n, 5);
        assert_eq!(d, model.d_encoder());
        let d_out = model.d_out();
        let mut worst = [0.0_f32; 4];
        for (k, (x, z_name, p_name)) in [(&x1, "z1", "p1"), (&x2, "z2", "p2")]
            .into_iter()
            .enumerate()
        {
            let (_, z_want) = f32_tensor(&eval, z_name);
            let (_, p_want) = f32_tensor(&eval, p_name);
            let mut z_all = Vec::new();
            let mut p_all = Vec::new();
            for row in x.chunks(d) {
                let z = model.project(row).expect("project");
                p_all.extend(model.predict(&z).expect("predict"));
                z_all.extend(z);
            }
            assert_eq!(z_all.len(), n * d_out);
            let what = format!("{preset} {z_name}");
            worst[2 * k] = assert_close(&what, &z_all, &z_want, 1e-4);
            let what = format!("{preset} {p_name}");
            worst[2 * k + 1] = assert_close(&what, &p_all, &p_want, 1e-4);
            // The batch paths agree too.
            let z_batch = model.project_batch(x).expect("project_batch");
            assert_close(&format!("{preset} {z_name} batch"), &z_batch, &z_want, 1e-4);
            let p_batch = model.predict_batch(&z_batch).expect("predict_batch");
            assert_close(&format!("{preset} {p_name} batch"), &p_batch, &p_want, 1e-4);
        }
        let (_, loss_want) = f32_tensor(&eval, "loss");
        let losses: Vec<f32> = x1
            .chunks(d)
            .zip(x2.chunks(d))
            .map(|(a, b)| model.loss(a, b).expect("loss"))
            .collect();
        let loss = losses.iter().sum::<f32>() / losses.len() as f32;
        let loss_diff = (loss - loss_want[0]).abs();
        assert!(
            loss_diff <= 1e-5,
            "{preset} loss: got {loss}, PyTorch {} (diff {loss_diff:e})",
            loss_want[0]
        );
        let batch = model.loss_batch(&x1, &x2).expect("loss_batch");
        let batch_loss = batch.iter().sum::<f32>() / batch.len() as f32;
        assert!(
            (batch_loss - loss_want[0]).abs() <= 1e-5,
            "{preset} batch loss"
        );
        println!(
            "{preset}: max |ours − PyTorch f32|: z1 {:.3e}, p1 {:.3e}, z2 {:.3e}, p2 {:.3e}, loss {loss_diff:.3e}",
            worst[0], worst[1], worst[2], worst[3]
        );
        // Against PyTorch's float64 run of the same model (information only: PyTorch's
        // own f32 error is of the same order, tests/data/README.md).
        let mut vs_f64 = Vec::new();
        for (name, x) in [("z1", &x1), ("z2", &x2)] {
            let z = model.project_batch(x).expect("project_batch");
            let p = model.predict_batch(&z).expect("predict_batch");
            let p_name = name.replace('z', "p");
            for (what, ours) in [(name.to_owned(), z), (p_name, p)] {
                let want = f64_tensor(&eval, &format!("{what}_f64"));
                let diff = ours
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (f64::from(*a) - b).abs())
                    .fold(0.0, f64::max);
                vs_f64.push(format!("{what} {diff:.3e}"));
            }
        }
        let loss_f64 = f64_tensor(&eval, "loss_f64")[0];
        println!(
            "{preset}: max |ours − PyTorch f64|: {}, loss {:.3e}",
            vs_f64.join(", "),
            (f64::from(loss) - loss_f64).abs()
        );
    }
}

#[test]
fn official_num_batches_tracked_is_kept() {
    let image =
        simsiam_convert::import(data("official_head.pth.tar"), Preset::Official, &names()).unwrap();
    let image = Image::parse(&image).unwrap();
    assert_eq!(image.batches_tracked(), &[10, 10, 10, 10, 0, 0, 0, 0]);
    let seed = simsiam_convert::import(data("seed_head.pth"), Preset::Seed, &names()).unwrap();
    assert_eq!(Image::parse(&seed).unwrap().batches_tracked(), &[0; 8]);
}

/// The head's keys of a checkpoint: those under the preset's module names.
fn head_keys(checkpoint: &Checkpoint, preset: Preset) -> Vec<String> {
    let roots: &[&str] = match preset {
        Preset::Official => &["module.encoder.fc.", "module.predictor."],
        Preset::Lightly => &["projection_head.", "prediction_head."],
        Preset::Seed => &["projector.", "predictor."],
        Preset::HarDense | Preset::HarConv => &["encoder.", "projector.", "predictor."],
    };
    checkpoint
        .keys()
        .filter(|key| roots.iter().any(|root| key.starts_with(root)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn round_trip_is_lossless() {
    let dir = tempfile::tempdir().unwrap();
    for (preset, checkpoint, _) in FIXTURES {
        let original = Checkpoint::read(data(checkpoint)).unwrap();
        let image = Head::from_checkpoint(&original, preset, &names())
            .unwrap()
            .to_image()
            .unwrap();
        let exported = simsiam_convert::export(&image, preset, &names()).unwrap();
        let path = dir.path().join(format!("{preset}.safetensors"));
        std::fs::write(&path, &exported).unwrap();
        let again = simsiam_convert::import(&path, preset, &names()).unwrap();
        assert!(
            again == image,
            "{preset}: image bytes differ after the round trip"
        );

        // The exported file holds exactly the checkpoint's head tensors, bit for bit, so
        // that PyTorch's strict `load_state_dict` of the head accepts it.
        let exported = Checkpoint::read(&path).unwrap();
        let keys: Vec<&str> = exported.keys().collect();
        assert_eq!(keys, head_keys(&original, preset), "{preset}: key set");
        for key in keys {
            let (dtype, shape) = exported.info(key).unwrap();
            assert_eq!(Some((dtype, shape)), original.info(key), "{key}");
            if key.ends_with("num_batches_tracked") {
                assert_eq!(exported.count(key).unwrap(), original.count(key).unwrap());
                assert_eq!(exported.count(key).unwrap(), Some(10), "{key}");
            } else {
                let bits = |c: &Checkpoint| -> Vec<u32> {
                    c.f32_tensor(key, shape)
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                };
                assert_eq!(bits(&exported), bits(&original), "{key}");
            }
        }
    }
}

#[test]
fn prefixes_are_options() {
    let dir = tempfile::tempdir().unwrap();
    let image =
        simsiam_convert::import(data("official_head.pth.tar"), Preset::Official, &names()).unwrap();
    // An official state dict saved without DistributedDataParallel: no `module.`.
    let bare = KeyNames {
        prefix: Some(String::new()),
        ..names()
    };
    let exported = simsiam_convert::export(&image, Preset::Official, &bare).unwrap();
    let path = dir.path().join("bare.safetensors");
    std::fs::write(&path, exported).unwrap();
    let checkpoint = Checkpoint::read(&path).unwrap();
    assert!(checkpoint.info("encoder.fc.0.weight").is_some());
    assert!(checkpoint.keys().all(|key| !key.starts_with("module.")));
    // Found without `module.` by the automatic prefix, and by the explicit empty one.
    assert!(simsiam_convert::import(&path, Preset::Official, &names()).unwrap() == image);
    assert!(simsiam_convert::import(&path, Preset::Official, &bare).unwrap() == image);

    // lightly heads under other attribute names.
    let image =
        simsiam_convert::import(data("lightly_head.safetensors"), Preset::Lightly, &names())
            .unwrap();
    let renamed = KeyNames {
        prefix: None,
        projector_prefix: "model.proj.".into(),
        predictor_prefix: "model.pred.".into(),
    };
    let exported = simsiam_convert::export(&image, Preset::Lightly, &renamed).unwrap();
    let path = dir.path().join("renamed.safetensors");
    std::fs::write(&path, exported).unwrap();
    let checkpoint = Checkpoint::read(&path).unwrap();
    assert!(checkpoint.info("model.proj.layers.6.weight").is_some());
    assert!(simsiam_convert::import(&path, Preset::Lightly, &renamed).unwrap() == image);
    let error = simsiam_convert::import(&path, Preset::Lightly, &names()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`projection_head.layers.0.weight`"),
        "{error}"
    );
}

/// The firmware's flash image (examples/firmware, `60-firmware.sh`) is this converter's
/// import of the PyTorch fixture, byte for byte: regenerate it with
/// `cargo run --release -p simsiam-convert -- import --preset official
/// tests/data/official_head.pth.tar -o tests/data/official_head.simsiam`.
#[test]
fn committed_firmware_image_is_the_import_of_the_fixture() {
    let imported = import(data("official_head.pth.tar"), Preset::Official, &names()).unwrap();
    let committed = std::fs::read(data("official_head.simsiam")).unwrap();
    assert!(
        imported == committed,
        "tests/data/official_head.simsiam is stale"
    );
}
