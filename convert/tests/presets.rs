//! The sensor recipe's presets (`har-dense`, `har-conv`) against PyTorch: the fixtures
//! `tests/data/convert_*` (made by `scripts/make_convert_fixtures.py`) hold checkpoints
//! of the recipe's modules at the recipe's input (6 × 128) and at odd ones (channels
//! 5/7/9, kernels 3/5, window 64), an input batch and PyTorch's eval outputs. Imported,
//! the network must give the three outputs within `TOLERANCE`, and checkpoint →
//! safetensors → checkpoint must keep every tensor and counter bit for bit.
//!
//! `TOLERANCE` bounds `max |ours − torch| / max |torch|` per output tensor. It is 10× the
//! larger of two differences of PyTorch's own that the script measures and prints (f32
//! against f64 from the same weights, and f32 against f32 on inputs moved by one ulp),
//! rounded up to 1, 2, 3 or 5·10^k, as tests/network.rs derives its eval bound: the
//! worst over the five fixtures was 3.01e-7 (dense_c5), so 5e-6.

mod common;

use common::{data, f32_tensor, names, tensors, write_safetensors};
use simsiam_convert::{Checkpoint, ConvertError, Head, InputShape, Preset, read_input};

const TOLERANCE: f64 = 5e-6;

/// Name, preset, checkpoint, input channels and window.
const FIXTURES: [(&str, Preset, &str, usize, usize); 5] = [
    (
        "har_dense",
        Preset::HarDense,
        "convert_har_dense.pth",
        6,
        128,
    ),
    (
        "har_conv",
        Preset::HarConv,
        "convert_har_conv.safetensors",
        6,
        128,
    ),
    (
        "dense_c5",
        Preset::HarDense,
        "convert_dense_c5.safetensors",
        5,
        64,
    ),
    ("conv_c7", Preset::HarConv, "convert_conv_c7.pth", 7, 64),
    (
        "conv_c9",
        Preset::HarConv,
        "convert_conv_c9.safetensors",
        9,
        64,
    ),
];

fn import(preset: Preset, checkpoint: &str, channels: usize, window: usize) -> Head {
    let checkpoint = Checkpoint::read(data(checkpoint)).expect("checkpoint");
    Head::from_checkpoint_with(
        &checkpoint,
        preset,
        &names(),
        InputShape { channels, window },
    )
    .expect("import")
}

/// `max |ours − torch| / max |torch|`.
fn relative(ours: &[f32], torch: &[f32]) -> f64 {
    assert_eq!(ours.len(), torch.len(), "length");
    let scale = torch
        .iter()
        .fold(0.0_f64, |m, t| m.max(f64::from(*t).abs()));
    assert!(scale > 0.0, "an all-zero tensor checks nothing");
    let worst = ours.iter().zip(torch).fold(0.0_f64, |m, (a, t)| {
        m.max((f64::from(*a) - f64::from(*t)).abs())
    });
    worst / scale
}

#[test]
fn imported_networks_give_pytorchs_eval_outputs() {
    for (name, preset, checkpoint, channels, window) in FIXTURES {
        let head = import(preset, checkpoint, channels, window);
        let io_path = data(&format!("convert_{name}_io.safetensors"));
        let io = std::fs::read(&io_path).expect("io file");
        let x = read_input(&io_path, &head.architecture).expect("x");
        let outputs = head.run(&x).expect("run");
        let encoder = outputs.encoder.as_deref().expect("an encoder output");
        let mut worst = 0.0_f64;
        for (what, ours) in [
            ("encoder", encoder),
            ("projection", &outputs.projection[..]),
            ("prediction", &outputs.prediction[..]),
        ] {
            let (shape, torch) = f32_tensor(&io, what);
            assert_eq!(shape, [outputs.n, ours.len() / outputs.n], "{name} {what}");
            let error = relative(ours, &torch);
            assert!(
                error <= TOLERANCE,
                "{name} {what}: {error:.2e} > {TOLERANCE:.0e}"
            );
            worst = worst.max(error);
        }
        println!("{name}: worst relative error {worst:.1e}");
        // num_batches_tracked: 3, 4, 5, ... in the order of the BatchNorms.
        let encoder = head.architecture.encoder.expect("encoder");
        let counts: Vec<u64> = encoder
            .layers()
            .iter()
            .zip(head.encoder_batches_tracked)
            .filter(|(kind, _)| matches!(kind, simsiam::layers::LayerKind::BatchNorm1d(_)))
            .map(|(_, count)| count)
            .chain(
                head.architecture
                    .layers()
                    .zip(head.batches_tracked)
                    .filter(|(layer, _)| layer.batch_norm.is_some())
                    .map(|(_, count)| count),
            )
            .collect();
        let expected: Vec<u64> = (3..3 + counts.len() as u64).collect();
        assert_eq!(counts, expected, "{name}: num_batches_tracked");
    }
}

#[test]
fn checkpoint_to_safetensors_and_back_is_bit_for_bit() {
    for (name, preset, checkpoint_name, channels, window) in FIXTURES {
        let checkpoint = Checkpoint::read(data(checkpoint_name)).expect("checkpoint");
        let head = import(preset, checkpoint_name, channels, window);
        let bytes = head.to_safetensors(preset, &names()).expect("export");
        let exported =
            Checkpoint::from_safetensors(bytes, std::path::Path::new("exported")).expect("read");
        // Exactly the checkpoint's keys (PyTorch's strict load_state_dict), same shapes
        // and dtypes, same values bit for bit.
        let keys: Vec<&str> = exported.keys().collect();
        assert_eq!(keys, checkpoint.keys().collect::<Vec<_>>(), "{name}: keys");
        for key in keys {
            let (dtype, shape) = checkpoint.info(key).expect("key");
            assert_eq!(exported.info(key), Some((dtype, shape)), "{name}: {key}");
            if key.ends_with("num_batches_tracked") {
                assert_eq!(exported.count(key).unwrap(), checkpoint.count(key).unwrap());
            } else {
                let bits = |c: &Checkpoint| -> Vec<u32> {
                    let values = c.f32_tensor(key, shape).expect(key);
                    values.iter().map(|v| v.to_bits()).collect()
                };
                assert_eq!(bits(&exported), bits(&checkpoint), "{name}: {key}");
            }
        }
        let again = Head::from_checkpoint_with(
            &exported,
            preset,
            &names(),
            InputShape { channels, window },
        )
        .expect("import again");
        let bits = |h: &Head| h.params.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&again), bits(&head), "{name}");
        assert_eq!(again.batches_tracked, head.batches_tracked);
        assert_eq!(again.encoder_batches_tracked, head.encoder_batches_tracked);
        assert_eq!(again.architecture, head.architecture);
    }
}

/// The key names of both presets: `har-conv` counts the `Unflatten` (its first Conv1d is
/// `encoder.1`).
#[test]
fn preset_keys() {
    let dense = Checkpoint::read(data("convert_dense_c5.safetensors")).unwrap();
    let conv = Checkpoint::read(data("convert_conv_c9.safetensors")).unwrap();
    for (checkpoint, key, shape) in [
        (&dense, "encoder.0.weight", &[10, 320][..]),
        (&dense, "encoder.4.running_var", &[7]),
        (&dense, "projector.3.weight", &[6, 9]),
        (&dense, "predictor.3.bias", &[6]),
        (&conv, "encoder.1.weight", &[6, 9, 5]),
        (&conv, "encoder.10.num_batches_tracked", &[]),
        (&conv, "projector.4.running_mean", &[8]),
    ] {
        assert_eq!(checkpoint.info(key).map(|(_, s)| s), Some(shape), "{key}");
    }
}

fn import_error(
    preset: Preset,
    checkpoint: &std::path::Path,
    channels: usize,
    window: usize,
) -> ConvertError {
    let checkpoint = Checkpoint::read(checkpoint).expect("checkpoint");
    Head::from_checkpoint_with(
        &checkpoint,
        preset,
        &names(),
        InputShape { channels, window },
    )
    .expect_err("an error")
}

#[test]
fn errors_name_the_key() {
    // The input shape the options give does not fit the first weight.
    let path = data("convert_dense_c5.safetensors");
    let error = import_error(Preset::HarDense, &path, 5, 128);
    assert!(
        matches!(&error, ConvertError::Shape { key, got, .. } if key == "encoder.0.weight" && got == &[10, 320]),
        "{error}"
    );
    assert!(
        error.to_string().contains("channels 5 × window 128"),
        "{error}"
    );
    let path = data("convert_conv_c9.safetensors");
    let error = import_error(Preset::HarConv, &path, 6, 64);
    assert!(
        matches!(&error, ConvertError::Shape { key, .. } if key == "encoder.1.weight"),
        "{error}"
    );
    // A window too short for the convolutions and pools.
    let error = import_error(Preset::HarConv, &path, 9, 12);
    assert!(matches!(error, ConvertError::Simsiam { .. }), "{error}");
    // A dense checkpoint read as har-conv: encoder.1 is a BatchNorm there.
    let error = import_error(
        Preset::HarConv,
        &data("convert_dense_c5.safetensors"),
        5,
        64,
    );
    assert!(
        matches!(&error, ConvertError::Shape { key, .. } if key == "encoder.1.weight"),
        "{error}"
    );
    // A missing tensor, a wrong shape deeper in, a wrong dtype: each names its key.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    type Tensors = Vec<(String, simsiam_convert::ExportTensor)>;
    let edited = |edit: &dyn Fn(&mut Tensors)| {
        let mut all = tensors(&bytes);
        edit(&mut all);
        let path = write_safetensors(dir.path(), "edited.safetensors", all);
        import_error(Preset::HarConv, &path, 9, 64)
    };
    let error = edited(&|all| all.retain(|(key, _)| key != "encoder.6.running_var"));
    assert!(
        matches!(&error, ConvertError::MissingKey { key } if key == "encoder.6.running_var"),
        "{error}"
    );
    let error = edited(&|all| {
        let tensor = &mut all
            .iter_mut()
            .find(|(k, _)| k == "encoder.5.weight")
            .unwrap()
            .1;
        tensor.shape = vec![8, 5, 3];
        tensor.data.truncate(8 * 5 * 3 * 4);
    });
    assert!(
        matches!(&error, ConvertError::Shape { key, got, .. } if key == "encoder.5.weight" && got == &[8, 5, 3]),
        "{error}"
    );
    let error = edited(&|all| {
        let tensor = &mut all
            .iter_mut()
            .find(|(k, _)| k == "encoder.2.bias")
            .unwrap()
            .1;
        tensor.dtype = safetensors::Dtype::I32;
    });
    assert!(
        matches!(&error, ConvertError::Dtype { key, .. } if key == "encoder.2.bias"),
        "{error}"
    );
}

#[test]
fn run_input_shapes() {
    let head = import(Preset::HarConv, "convert_conv_c9.safetensors", 9, 64);
    let dir = tempfile::tempdir().unwrap();
    let io = std::fs::read(data("convert_conv_c9_io.safetensors")).unwrap();
    let (shape, x) = f32_tensor(&io, "x");
    assert_eq!(shape, [3, 9, 64]);
    let write_x = |shape: Vec<usize>, values: &[f32]| {
        let tensor = simsiam_convert::ExportTensor {
            dtype: safetensors::Dtype::F32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        write_safetensors(dir.path(), "x.safetensors", vec![("x".to_owned(), tensor)])
    };
    // [N, C·T] and [N, C, T] are the same input.
    let flat = read_input(write_x(vec![3, 576], &x), &head.architecture).unwrap();
    assert_eq!(flat, x);
    for bad in [
        vec![3, 575],
        vec![3, 64, 9],
        vec![3, 8, 72],
        vec![0, 576],
        vec![576],
    ] {
        let len = bad.iter().product::<usize>();
        let error = read_input(write_x(bad.clone(), &x[..len]), &head.architecture)
            .expect_err("a bad shape");
        assert!(
            matches!(&error, ConvertError::Shape { key, got, .. } if key == "x" && *got == bad),
            "{bad:?}: {error}"
        );
    }
}

/// checkpoint → image (version 2) → safetensors: every tensor and counter bit for bit,
/// and the image's own round trip is byte for byte.
#[test]
fn image_round_trip_is_bit_for_bit() {
    for (name, preset, checkpoint_name, channels, window) in FIXTURES {
        let head = import(preset, checkpoint_name, channels, window);
        let image = head.to_image().expect("image");
        assert_eq!(
            simsiam::image::Image::parse(&image).unwrap().version(),
            2,
            "{name}"
        );
        let back = Head::from_image(&image).expect("from image");
        let bits = |h: &Head| h.params.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&head), "{name}");
        assert_eq!(back.architecture, head.architecture, "{name}");
        assert_eq!(back.batches_tracked, head.batches_tracked, "{name}");
        assert_eq!(
            back.encoder_batches_tracked, head.encoder_batches_tracked,
            "{name}"
        );
        assert_eq!(back.to_image().unwrap(), image, "{name}: image again");
        let exported = simsiam_convert::export(&image, preset, &names()).expect("export");
        assert_eq!(
            exported,
            head.to_safetensors(preset, &names()).unwrap(),
            "{name}: export of the image"
        );
    }
}

/// `run` on an imported image gives PyTorch's eval outputs, and so does the command
/// line (`import --channels --window`, `run`, `export`, `inspect`).
#[test]
fn run_on_images_and_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, preset, checkpoint, channels, window) in FIXTURES {
        let head = import(preset, checkpoint, channels, window);
        let io_path = data(&format!("convert_{name}_io.safetensors"));
        let io = std::fs::read(&io_path).unwrap();
        let out = simsiam_convert::run(&head.to_image().unwrap(), &io_path).expect("run");
        let keys: Vec<String> = safetensors::SafeTensors::deserialize(&out)
            .unwrap()
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(keys, ["encoder", "prediction", "projection"], "{name}");
        for what in ["encoder", "projection", "prediction"] {
            let (shape, ours) = f32_tensor(&out, what);
            let (torch_shape, torch) = f32_tensor(&io, what);
            assert_eq!(shape, torch_shape, "{name} {what}");
            let error = relative(&ours, &torch);
            assert!(error <= TOLERANCE, "{name} {what}: {error:.2e}");
        }
    }
    // The command line, on the odd conv fixture (`.pth`, input [N, C·T]).
    let exe = env!("CARGO_BIN_EXE_simsiam-convert");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(exe).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let checkpoint = data("convert_conv_c7.pth");
    run(&[
        "import",
        "--preset",
        "har-conv",
        "--channels",
        "7",
        "--window",
        "64",
        checkpoint.to_str().unwrap(),
        "-o",
        &p("net.simsiam"),
    ]);
    let io_path = data("convert_conv_c7_io.safetensors");
    run(&[
        "run",
        &p("net.simsiam"),
        "--input",
        io_path.to_str().unwrap(),
        "-o",
        &p("out.safetensors"),
    ]);
    let out = std::fs::read(p("out.safetensors")).unwrap();
    let io = std::fs::read(&io_path).unwrap();
    for what in ["encoder", "projection", "prediction"] {
        let error = relative(&f32_tensor(&out, what).1, &f32_tensor(&io, what).1);
        assert!(error <= TOLERANCE, "command line {what}: {error:.2e}");
    }
    run(&[
        "export",
        "--preset",
        "har-conv",
        &p("net.simsiam"),
        "-o",
        &p("net.safetensors"),
    ]);
    let original = Checkpoint::read(&checkpoint).unwrap();
    let exported = Checkpoint::read(p("net.safetensors")).unwrap();
    assert!(exported.keys().eq(original.keys()));
    let inspect = run(&["inspect", &p("net.simsiam")]);
    for line in [
        "simsiam parameter image, format version 2",
        "preset: har-conv (input 7×64, feature 11, projector hidden 12, projection 8, predictor hidden 4)",
        "input: 7 channels × 64 samples, channel-major, standardisation not recorded",
        "encoder: 448 → 11, 12 layers",
    ] {
        assert!(
            inspect.lines().any(|l| l == line),
            "inspect lacks {line:?}:\n{inspect}"
        );
    }
    // The default input (6 × 128) does not fit this checkpoint: one line naming the key.
    let output = std::process::Command::new(exe)
        .args(["import", "--preset", "har-conv"])
        .arg(&checkpoint)
        .args(["-o", &p("bad.simsiam")])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`encoder.1.weight`"), "{stderr}");
}
