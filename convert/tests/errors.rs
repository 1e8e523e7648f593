//! Every rejected checkpoint names the key at fault.

mod common;

use common::{data, names, tensors, write_safetensors};
use safetensors::Dtype;
use simsiam::image::{Image, image_len, write_image};
use simsiam::{ImageError, SslError};
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
    assert!(
        matches!(&error, ConvertError::Shape { key: k, expected, got }
            if k == key && expected == "[16]" && got == &[15]),
        "{error:?}"
    );
    assert_names(&error, key);
    let message = error.to_string();
    assert!(message.contains("expected [16], got [15]"), "{message}");

    // A weight transposed.
    let key = "projection_head.layers.3.weight";
    let error = import_edited(|t| tensor(t, key).shape = vec![24, 24, 1]);
    assert!(
        matches!(&error, ConvertError::Shape { key: k, expected, got }
            if k == key && expected == "[24, 24]" && got == &[24, 24, 1]),
        "{error:?}"
    );
    assert_names(&error, key);
    assert!(error.to_string().contains("expected [24, 24]"), "{error}");

    // A weight the dimensions come from that is not 2-d.
    let key = "projection_head.layers.0.weight";
    let error = import_edited(|t| tensor(t, key).shape = vec![24 * 40]);
    assert!(
        matches!(&error, ConvertError::Shape { key: k, got, .. } if k == key && got == &[960]),
        "{error:?}"
    );
    assert_names(&error, key);
    assert!(error.to_string().contains("got [960]"), "{error}");

    // A count that is not 0-d.
    let key = "projection_head.layers.1.num_batches_tracked";
    let error = import_edited(|t| tensor(t, key).shape = vec![1]);
    assert!(
        matches!(&error, ConvertError::Shape { key: k, expected, got }
            if k == key && expected == "[]" && got == &[1]),
        "{error:?}"
    );
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
    assert!(
        matches!(&error, ConvertError::Dtype { key: k, expected: "F32", got }
            if k == key && got == "F64"),
        "{error:?}"
    );
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
    assert!(
        matches!(&error, ConvertError::Dtype { key: k, expected: "I64", got }
            if k == key && got == "F32"),
        "{error:?}"
    );
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
    assert!(
        matches!(&error, ConvertError::Dtype { key: k, expected: "F32", got }
            if k == key && got == "F16"),
        "{error:?}"
    );
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
            matches!(&error, ConvertError::NonFinite { key: k, index: i, value: v }
                if k == key && *i == index && v.to_bits() == value.to_bits()),
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
    assert!(
        matches!(&error, ConvertError::NegativeCount { key: k, value: -3 } if k == key),
        "{error:?}"
    );
    assert_names(&error, key);
    assert!(error.to_string().contains("-3"), "{error}");
}

#[test]
fn wrong_preset() {
    // A lightly checkpoint read as the official one: its keys are not there.
    let error =
        simsiam_convert::import(data("lightly_head.safetensors"), Preset::Official, &names())
            .unwrap_err();
    assert!(
        matches!(&error, ConvertError::MissingKey { key } if key == "encoder.fc.0.weight"),
        "{error:?}"
    );
    assert_names(&error, "encoder.fc.0.weight");
    // The official checkpoint read as lightly's (`module.` found automatically).
    let error = simsiam_convert::import(data("official_head.pth.tar"), Preset::Lightly, &names())
        .unwrap_err();
    assert!(
        matches!(&error, ConvertError::MissingKey { key }
            if key == "module.projection_head.layers.0.weight"),
        "{error:?}"
    );
    assert_names(&error, "module.projection_head.layers.0.weight");
    // An official image exported as lightly's (its last projector layer has a bias).
    let image =
        simsiam_convert::import(data("official_head.pth.tar"), Preset::Official, &names()).unwrap();
    let error = simsiam_convert::export(&image, Preset::Lightly, &names()).unwrap_err();
    assert!(
        matches!(&error, ConvertError::NotPreset { preset: Preset::Lightly, reason }
            if reason.contains("layer 2")),
        "{error:?}"
    );
    let error = simsiam_convert::export(&image, Preset::Seed, &names()).unwrap_err();
    assert!(
        matches!(
            error,
            ConvertError::NotPreset {
                preset: Preset::Seed,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("not a `seed` head"), "{error}");
}

#[test]
fn unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let error =
        simsiam_convert::import(dir.path().join("absent.pth"), Preset::Seed, &names()).unwrap_err();
    assert!(
        matches!(&error, ConvertError::Io { path, source }
            if path.ends_with("absent.pth") && source.kind() == std::io::ErrorKind::NotFound),
        "{error:?}"
    );
    assert!(error.to_string().contains("absent.pth"), "{error}");

    let path = dir.path().join("garbage.pth");
    std::fs::write(&path, b"not a checkpoint at all").unwrap();
    let error = simsiam_convert::import(&path, Preset::Seed, &names()).unwrap_err();
    assert!(
        matches!(&error, ConvertError::Pytorch { path: p, .. } if *p == path),
        "{error:?}"
    );

    let path = dir.path().join("garbage.safetensors");
    std::fs::write(&path, b"\x10\0\0\0\0\0\0\0{\"a\": 1}").unwrap();
    let error = simsiam_convert::import(&path, Preset::Seed, &names()).unwrap_err();
    assert!(
        matches!(&error, ConvertError::Safetensors { path: p, .. } if *p == path),
        "{error:?}"
    );

    // A corrupted image.
    let mut image = simsiam_convert::import(data("seed_head.pth"), Preset::Seed, &names()).unwrap();
    let last = image.len() - 1;
    image[last] ^= 1;
    let error = simsiam_convert::export(&image, Preset::Seed, &names()).unwrap_err();
    assert!(
        matches!(
            error,
            ConvertError::Simsiam {
                source: SslError::Image(ImageError::ChecksumMismatch { .. }),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("checksum"), "{error}");
}

/// A `num_batches_tracked` above `i64::MAX` cannot be exported: `CountOverflow` names the
/// layer and the value.
#[test]
fn count_overflow() {
    let image =
        simsiam_convert::import(data("official_head.pth.tar"), Preset::Official, &names()).unwrap();
    let parsed = Image::parse(&image).unwrap();
    let architecture = *parsed.architecture();
    let mut params = vec![0.0; parsed.param_count()];
    parsed.copy_params(&mut params).unwrap();
    // Layer 1 (the projector's second, with BatchNorm).
    assert!(architecture.layers().nth(1).unwrap().batch_norm.is_some());
    let value = i64::MAX as u64 + 1;
    let mut tracked = *parsed.batches_tracked();
    tracked[1] = value;
    let mut bytes = vec![0; image_len(&architecture).unwrap()];
    write_image(&architecture, &params, &tracked, &mut bytes).unwrap();
    let Err(error) = simsiam_convert::export(&bytes, Preset::Official, &names()) else {
        panic!("exported num_batches_tracked {value}");
    };
    assert!(
        matches!(error, ConvertError::CountOverflow { layer: 1, value: v } if v == value),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "layer 1: num_batches_tracked 9223372036854775808 does not fit in I64"
    );
    // i64::MAX itself fits.
    tracked[1] = i64::MAX as u64;
    write_image(&architecture, &params, &tracked, &mut bytes).unwrap();
    assert!(simsiam_convert::export(&bytes, Preset::Official, &names()).is_ok());
}
