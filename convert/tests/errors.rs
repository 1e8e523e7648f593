//! Every rejected checkpoint names the key at fault.

mod common;

use common::{data, names, tensors, write_safetensors};
use safetensors::Dtype;
use simsiam_convert::{ConvertError, ExportTensor, Preset};

/// The lightly fixture with `edit` applied, imported.
fn import_edited(edit: impl FnOnce(&mut Vec<(String, ExportTensor)>)) -> ConvertError {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = tensors(&std::fs::read(data("lightly_head.safetensors")).unwrap());
    edit(&mut tensors);
    let path = write_safetensors(dir.path(), "edited.safetensors", tensors);
    simsiam_convert::import(&path, Preset::Lightly, &names()).unwrap_err()
}

fn tensor<'a>(tensors: &'a mut [(String, ExportTensor)], key: &str) -> &'a mut ExportTensor {
    tensors
        .iter_mut()
        .find(|(name, _)| name == key)
        .map(|(_, tensor)| tensor)
        .unwrap_or_else(|| panic!("no {key}"))
}

fn assert_names(error: &ConvertError, key: &str) {
    let message = error.to_string();
    assert!(message.contains(&format!("`{key}`")), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn missing_key() {
    for key in [
        "projection_head.layers.3.weight",
        "projection_head.layers.7.running_var",
        "prediction_head.layers.3.bias",
        // One the dimensions are read from.
        "projection_head.layers.6.weight",
    ] {
        let error = import_edited(|t| t.retain(|(name, _)| name != key));
        assert!(
            matches!(&error, ConvertError::MissingKey { key: k } if k == key),
            "{error:?}"
        );
        assert_names(&error, key);
        assert!(error.to_string().contains("missing key"), "{error}");
    }
}

#[test]
fn missing_num_batches_tracked_counts_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = tensors(&std::fs::read(data("lightly_head.safetensors")).unwrap());
    all.retain(|(name, _)| !name.ends_with("num_batches_tracked"));
    let path = write_safetensors(dir.path(), "no_counts.safetensors", all);
    let image = simsiam_convert::import(&path, Preset::Lightly, &names()).unwrap();
    let image = simsiam::image::Image::parse(&image).unwrap();
    assert_eq!(image.batches_tracked(), &[0; 8]);
}

#[test]
fn wrong_shape() {
    let key = "prediction_head.layers.3.bias";
    let error = import_edited(|t| {
        let bias = tensor(t, key);
        bias.shape = vec![15];
        bias.data.truncate(15 * 4);
    });
    assert!(matches!(&error, ConvertError::Shape { .. }), "{error:?}");
    assert_names(&error, key);
    let message = error.to_string();
    assert!(message.contains("expected [16], got [15]"), "{message}");

    // A weight transposed.
    let key = "projection_head.layers.3.weight";
    let error = import_edited(|t| tensor(t, key).shape = vec![24, 24, 1]);
    assert_names(&error, key);
    assert!(error.to_string().contains("expected [24, 24]"), "{error}");

    // A weight the dimensions come from that is not 2-d.
    let key = "projection_head.layers.0.weight";
    let error = import_edited(|t| tensor(t, key).shape = vec![24 * 40]);
    assert_names(&error, key);
    assert!(error.to_string().contains("got [960]"), "{error}");

    // A count that is not 0-d.
    let key = "projection_head.layers.1.num_batches_tracked";
    let error = import_edited(|t| tensor(t, key).shape = vec![1]);
    assert_names(&error, key);
    assert!(
        error.to_string().contains("expected [], got [1]"),
        "{error}"
    );
}

#[test]
fn wrong_dtype() {
    let key = "projection_head.layers.1.running_var";
    let error = import_edited(|t| {
        let var = tensor(t, key);
        var.dtype = Dtype::F64;
        var.data = var
            .data
            .as_chunks::<4>()
            .0
            .iter()
            .flat_map(|w| f64::from(f32::from_le_bytes(*w)).to_le_bytes())
            .collect();
    });
    assert!(matches!(&error, ConvertError::Dtype { .. }), "{error:?}");
    assert_names(&error, key);
    assert!(
        error.to_string().contains("expected F32, got F64"),
        "{error}"
    );

    let key = "projection_head.layers.7.num_batches_tracked";
    let error = import_edited(|t| {
        let count = tensor(t, key);
        count.dtype = Dtype::F32;
        count.data = 10.0_f32.to_le_bytes().to_vec();
    });
    assert_names(&error, key);
    assert!(
        error.to_string().contains("expected I64, got F32"),
        "{error}"
    );

    let key = "prediction_head.layers.0.weight";
    let error = import_edited(|t| {
        let weight = tensor(t, key);
        weight.dtype = Dtype::F16;
        weight.data.truncate(weight.data.len() / 2);
    });
    assert_names(&error, key);
    assert!(
        error.to_string().contains("expected F32, got F16"),
        "{error}"
    );
}

#[test]
fn non_finite() {
    for (value, index) in [(f32::NAN, 5), (f32::INFINITY, 0), (f32::NEG_INFINITY, 575)] {
        let key = "projection_head.layers.3.weight";
        let error = import_edited(|t| {
            let weight = tensor(t, key);
            let at = index * 4;
            weight.data[at..at + 4].copy_from_slice(&value.to_le_bytes());
        });
        assert!(
            matches!(&error, ConvertError::NonFinite { index: i, .. } if *i == index),
            "{error:?}"
        );
        assert_names(&error, key);
        assert!(
            error.to_string().contains(&format!("at index {index}")),
            "{error}"
        );
    }
}

#[test]
fn negative_count() {
    let key = "prediction_head.layers.1.num_batches_tracked";
    let error = import_edited(|t| tensor(t, key).data = (-3_i64).to_le_bytes().to_vec());
    assert_names(&error, key);
    assert!(error.to_string().contains("-3"), "{error}");
}

#[test]
fn wrong_preset() {
    // A lightly checkpoint read as the official one: its keys are not there.
    let error =
        simsiam_convert::import(data("lightly_head.safetensors"), Preset::Official, &names())
            .unwrap_err();
    assert_names(&error, "encoder.fc.0.weight");
    // The official checkpoint read as lightly's (`module.` found automatically).
    let error = simsiam_convert::import(data("official_head.pth.tar"), Preset::Lightly, &names())
        .unwrap_err();
    assert_names(&error, "module.projection_head.layers.0.weight");
    // An official image exported as lightly's (its last projector layer has a bias).
    let image =
        simsiam_convert::import(data("official_head.pth.tar"), Preset::Official, &names()).unwrap();
    let error = simsiam_convert::export(&image, Preset::Lightly, &names()).unwrap_err();
    assert!(matches!(error, ConvertError::NotPreset { .. }), "{error:?}");
    assert!(error.to_string().contains("layer 2"), "{error}");
    let error = simsiam_convert::export(&image, Preset::Seed, &names()).unwrap_err();
    assert!(error.to_string().contains("not a `seed` head"), "{error}");
}

#[test]
fn unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let error =
        simsiam_convert::import(dir.path().join("absent.pth"), Preset::Seed, &names()).unwrap_err();
    assert!(matches!(error, ConvertError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("absent.pth"), "{error}");

    let path = dir.path().join("garbage.pth");
    std::fs::write(&path, b"not a checkpoint at all").unwrap();
    let error = simsiam_convert::import(&path, Preset::Seed, &names()).unwrap_err();
    assert!(matches!(error, ConvertError::Pytorch { .. }), "{error:?}");

    let path = dir.path().join("garbage.safetensors");
    std::fs::write(&path, b"\x10\0\0\0\0\0\0\0{\"a\": 1}").unwrap();
    let error = simsiam_convert::import(&path, Preset::Seed, &names()).unwrap_err();
    assert!(
        matches!(error, ConvertError::Safetensors { .. }),
        "{error:?}"
    );

    // A corrupted image.
    let mut image = simsiam_convert::import(data("seed_head.pth"), Preset::Seed, &names()).unwrap();
    let last = image.len() - 1;
    image[last] ^= 1;
    let error = simsiam_convert::export(&image, Preset::Seed, &names()).unwrap_err();
    assert!(error.to_string().contains("checksum"), "{error}");
}
