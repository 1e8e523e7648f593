//! The public layout table ([`Architecture::tensors`]): its ranges tile the flat
//! parameters exactly, and its keys are PyTorch's `state_dict` keys of each preset.

use simsiam::SimSiamConfig;
use simsiam::model::{Architecture, StackName};

/// Every preset the crate builds, at the sizes the tests and the recipe use, plus odd
/// sizes.
fn presets() -> Vec<(&'static str, Architecture)> {
    #[cfg_attr(not(feature = "encoder"), allow(unused_mut))]
    let mut presets = vec![
        (
            "reference",
            Architecture::reference(SimSiamConfig::default()).unwrap(),
        ),
        (
            "reference 5/7/9/3",
            Architecture::reference(SimSiamConfig {
                d_encoder: 5,
                d_projector: 7,
                d_predictor: 9,
                d_out: 3,
            })
            .unwrap(),
        ),
        ("official", Architecture::official(48, 32, 12).unwrap()),
        ("lightly", Architecture::lightly(40, 24, 16, 8).unwrap()),
    ];
    #[cfg(feature = "encoder")]
    {
        use simsiam::model::HarDense;
        presets.push((
            "har-dense",
            Architecture::har_dense(&HarDense::default()).unwrap(),
        ));
        let odd = HarDense {
            channels: 5,
            window: 64,
            hidden: 9,
            feature: 7,
            projector_hidden: 11,
            projection: 13,
            predictor_hidden: 3,
        };
        presets.push(("har-dense odd", Architecture::har_dense(&odd).unwrap()));
    }
    #[cfg(feature = "conv")]
    {
        use simsiam::model::HarConv;
        presets.push((
            "har-conv",
            Architecture::har_conv(&HarConv::default()).unwrap(),
        ));
        let odd = HarConv {
            channels: 7,
            window: 64,
            conv_channels: [5, 9, 7],
            kernels: [3, 5, 3],
            pool: 2,
            projector_hidden: 11,
            projection: 13,
            predictor_hidden: 3,
        };
        presets.push(("har-conv odd", Architecture::har_conv(&odd).unwrap()));
    }
    presets
}

#[test]
fn ranges_tile_the_parameters_exactly() {
    for (name, architecture) in presets() {
        let mut end = 0;
        for tensor in architecture.tensors() {
            assert_eq!(
                tensor.start, end,
                "{name}: {tensor} does not start where the last ended"
            );
            assert!(tensor.len > 0, "{name}: {tensor} is empty");
            assert_eq!(
                tensor.len,
                tensor.shape().iter().product::<usize>(),
                "{name}: {tensor}"
            );
            end = tensor.range().end;
        }
        assert_eq!(end, architecture.param_count().unwrap(), "{name}");
    }
}

#[test]
fn keys_are_unique_and_stacks_come_in_order() {
    for (name, architecture) in presets() {
        let keys: Vec<String> = architecture.tensors().map(|t| t.to_string()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            keys.len(),
            "{name}: duplicate keys in {keys:?}"
        );
        let order = |stack| match stack {
            StackName::Encoder => 0,
            StackName::Projector => 1,
            StackName::Predictor => 2,
        };
        let stacks: Vec<_> = architecture.tensors().map(|t| order(t.stack)).collect();
        assert!(stacks.is_sorted(), "{name}: {stacks:?}");
    }
}

fn keys_and_shapes(architecture: &Architecture) -> Vec<(String, Vec<usize>)> {
    architecture
        .tensors()
        .map(|t| (t.to_string(), t.shape().to_vec()))
        .collect()
}

fn expect(list: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    list.iter()
        .map(|(key, shape)| ((*key).to_owned(), shape.to_vec()))
        .collect()
}

#[test]
fn reference_and_official_keys() {
    let reference = Architecture::reference(SimSiamConfig {
        d_encoder: 5,
        d_projector: 7,
        d_predictor: 9,
        d_out: 3,
    })
    .unwrap();
    assert_eq!(
        keys_and_shapes(&reference),
        expect(&[
            ("projector.0.weight", &[7, 5]),
            ("projector.0.bias", &[7]),
            ("projector.2.weight", &[3, 7]),
            ("projector.2.bias", &[3]),
            ("predictor.0.weight", &[9, 3]),
            ("predictor.0.bias", &[9]),
            ("predictor.2.weight", &[3, 9]),
            ("predictor.2.bias", &[3]),
        ])
    );
    let official = Architecture::official(6, 4, 2).unwrap();
    let keys: Vec<String> = official.tensors().map(|t| t.to_string()).collect();
    assert_eq!(
        keys,
        [
            "projector.0.weight",
            "projector.1.weight",
            "projector.1.bias",
            "projector.1.running_mean",
            "projector.1.running_var",
            "projector.3.weight",
            "projector.4.weight",
            "projector.4.bias",
            "projector.4.running_mean",
            "projector.4.running_var",
            "projector.6.weight",
            "projector.6.bias",
            "projector.7.running_mean",
            "projector.7.running_var",
            "predictor.0.weight",
            "predictor.1.weight",
            "predictor.1.bias",
            "predictor.1.running_mean",
            "predictor.1.running_var",
            "predictor.3.weight",
            "predictor.3.bias",
        ]
    );
    let trainable: Vec<bool> = official.tensors().map(|t| t.trainable).collect();
    // Running statistics and the frozen bias `projector.6.bias` are not trained.
    let untrained: Vec<String> = official
        .tensors()
        .zip(&trainable)
        .filter(|(_, trained)| !**trained)
        .map(|(t, _)| t.to_string())
        .collect();
    assert_eq!(
        untrained,
        [
            "projector.1.running_mean",
            "projector.1.running_var",
            "projector.4.running_mean",
            "projector.4.running_var",
            "projector.6.bias",
            "projector.7.running_mean",
            "projector.7.running_var",
            "predictor.1.running_mean",
            "predictor.1.running_var",
        ]
    );
}

/// The head of both sensor presets, after a feature of 7 (projection 13, hidden 11,
/// predictor 3).
#[cfg(feature = "encoder")]
const HAR_HEAD: &[(&str, &[usize])] = &[
    ("projector.0.weight", &[11, 7]),
    ("projector.1.weight", &[11]),
    ("projector.1.bias", &[11]),
    ("projector.1.running_mean", &[11]),
    ("projector.1.running_var", &[11]),
    ("projector.3.weight", &[13, 11]),
    ("projector.4.running_mean", &[13]),
    ("projector.4.running_var", &[13]),
    ("predictor.0.weight", &[3, 13]),
    ("predictor.1.weight", &[3]),
    ("predictor.1.bias", &[3]),
    ("predictor.1.running_mean", &[3]),
    ("predictor.1.running_var", &[3]),
    ("predictor.3.weight", &[13, 3]),
    ("predictor.3.bias", &[13]),
];

#[cfg(feature = "encoder")]
#[test]
fn har_dense_keys() {
    use simsiam::model::HarDense;
    let sizes = HarDense {
        channels: 5,
        window: 64,
        hidden: 9,
        feature: 7,
        projector_hidden: 11,
        projection: 13,
        predictor_hidden: 3,
    };
    let network = Architecture::har_dense(&sizes).unwrap();
    let mut expected = expect(&[
        ("encoder.0.weight", &[9, 320]),
        ("encoder.1.weight", &[9]),
        ("encoder.1.bias", &[9]),
        ("encoder.1.running_mean", &[9]),
        ("encoder.1.running_var", &[9]),
        ("encoder.3.weight", &[7, 9]),
        ("encoder.4.weight", &[7]),
        ("encoder.4.bias", &[7]),
        ("encoder.4.running_mean", &[7]),
        ("encoder.4.running_var", &[7]),
    ]);
    expected.extend(expect(HAR_HEAD));
    assert_eq!(keys_and_shapes(&network), expected);
}

#[cfg(feature = "conv")]
#[test]
fn har_conv_keys_count_the_unflatten() {
    use simsiam::model::HarConv;
    let sizes = HarConv {
        channels: 9,
        window: 64,
        conv_channels: [5, 6, 7],
        kernels: [3, 5, 3],
        pool: 2,
        projector_hidden: 11,
        projection: 13,
        predictor_hidden: 3,
    };
    let network = Architecture::har_conv(&sizes).unwrap();
    let bn = |module: usize, c: usize| {
        ["weight", "bias", "running_mean", "running_var"]
            .map(|name| (format!("encoder.{module}.{name}"), vec![c]))
    };
    let mut expected = vec![("encoder.1.weight".to_owned(), vec![5, 9, 3])];
    expected.extend(bn(2, 5));
    expected.push(("encoder.5.weight".to_owned(), vec![6, 5, 5]));
    expected.extend(bn(6, 6));
    expected.push(("encoder.9.weight".to_owned(), vec![7, 6, 3]));
    expected.extend(bn(10, 7));
    expected.extend(expect(HAR_HEAD));
    assert_eq!(keys_and_shapes(&network), expected);
    // The layer index is the encoder's own (no Unflatten): the first Conv1d is layer 0.
    let first = network.tensors().next().unwrap();
    assert_eq!(
        (first.stack, first.layer, first.module),
        (StackName::Encoder, 0, 1)
    );
    assert_eq!(first.fan_in(), 9 * 3);
}

/// A `Linear` after a sequence kind gets PyTorch's `Flatten` before it; a BatchNorm over
/// a sequence at the input an `Unflatten`.
#[cfg(feature = "conv")]
#[test]
fn flatten_and_unflatten_are_counted() {
    use simsiam::layers::{BatchNorm1d, Bias, Conv1d, LayerKind, Linear, Padding, Shape};
    use simsiam::model::Encoder;
    let encoder = Encoder::new(
        Shape::sequence(2, 4),
        &[
            LayerKind::BatchNorm1d(BatchNorm1d::new(2)),
            LayerKind::Conv1d(Conv1d {
                c_in: 2,
                c_out: 3,
                kernel: 2,
                stride: 1,
                padding: Padding::Zeros(0),
                bias: Bias::Trainable,
            }),
            LayerKind::Relu,
            LayerKind::Linear(Linear {
                d_in: 9,
                d_out: 4,
                bias: Bias::None,
            }),
        ],
    )
    .unwrap();
    let network = Architecture::official(4, 4, 2)
        .unwrap()
        .with_encoder(encoder)
        .unwrap();
    let keys: Vec<String> = network
        .tensors()
        .filter(|t| t.stack == StackName::Encoder)
        .map(|t| t.to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "encoder.1.weight",
            "encoder.1.bias",
            "encoder.1.running_mean",
            "encoder.1.running_var",
            "encoder.2.weight",
            "encoder.2.bias",
            "encoder.5.weight",
        ]
    );
}
