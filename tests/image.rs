//! The parameter image: round trips, and every malformed image is a typed error.

use simsiam::image::{AlignedImage, IMAGE_ALIGN, IMAGE_MAGIC, Image, image_len, write_image};
use simsiam::model::{Architecture, BatchNorm, Layer, Stack};
use simsiam::{ImageError, LcgRng, SimSiamConfig, SslError};

/// CRC-32 (IEEE, reflected, zlib's), from a table built here bit by bit: an
/// implementation independent of the crate's (the flipped-bit test computes one per flip,
/// which bit by bit took minutes under miri).
fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        std::array::from_fn(|index| {
            (0..8).fold(index as u32, |crc, _| {
                if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                }
            })
        })
    });
    !bytes.iter().fold(!0_u32, |crc, byte| {
        table[((crc ^ u32::from(*byte)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// Rewrites the checksum after a deliberate edit, so the edit itself is what is tested.
fn reseal(bytes: &mut [u8]) {
    bytes[12..16].fill(0);
    let crc = crc32(bytes);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
}

fn architectures() -> Vec<Architecture> {
    // The default reference head (16 640 parameters) takes minutes under miri (the test's
    // bitwise CRC over 66 KB, interpreted): there a head of the same shape, smaller.
    let default_size = if cfg!(miri) {
        SimSiamConfig {
            d_encoder: 8,
            d_projector: 16,
            d_predictor: 8,
            d_out: 4,
        }
    } else {
        SimSiamConfig::default()
    };
    vec![
        Architecture::reference(default_size).unwrap(),
        Architecture::reference(SimSiamConfig {
            d_encoder: 3,
            d_projector: 5,
            d_predictor: 2,
            d_out: 1,
        })
        .unwrap(),
        Architecture::official(12, 8, 4).unwrap(),
        Architecture::lightly(10, 7, 5, 3).unwrap(),
        Architecture::new(
            Stack::new(&[Layer::linear(4, 3).with_bias()]).unwrap(),
            Stack::new(&[
                Layer::linear(3, 6).with_relu(),
                Layer::linear(6, 6)
                    .with_batch_norm(BatchNorm::PLAIN.with_eps(1e-3))
                    .with_relu(),
                Layer::linear(6, 2).with_relu(),
                Layer::linear(2, 3).with_frozen_bias(),
            ])
            .unwrap(),
            true,
            false,
        )
        .unwrap(),
    ]
}

fn params_for(architecture: &Architecture, seed: u64) -> Vec<f32> {
    let mut rng = LcgRng::new(seed);
    (0..architecture.param_count().unwrap())
        .map(|_| rng.next_f32() * 2.0 - 1.0)
        .collect()
}

fn image_of(architecture: &Architecture, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; image_len(architecture).unwrap()];
    let tracked: Vec<u64> = (1..=8).map(|i| i * 1000 + seed).collect();
    assert_eq!(
        write_image(
            architecture,
            &params_for(architecture, seed),
            &tracked,
            &mut bytes
        ),
        Ok(bytes.len())
    );
    bytes
}

fn image_error(bytes: &[u8]) -> ImageError {
    match Image::parse(bytes) {
        Err(SslError::Image(error)) => error,
        other => panic!("expected an image error, got {other:?}"),
    }
}

#[test]
fn crc32_is_zlibs() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn round_trip_keeps_architecture_params_and_counters_bit_for_bit() {
    for (seed, architecture) in architectures().iter().enumerate() {
        let seed = seed as u64;
        let bytes = image_of(architecture, seed);
        let header_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
        assert_eq!(header_len % IMAGE_ALIGN, 0);
        assert_eq!(
            bytes.len(),
            header_len + 4 * architecture.param_count().unwrap()
        );
        assert_eq!(bytes[..8], IMAGE_MAGIC);
        // The stored checksum is zlib's CRC-32 of the image with its field zeroed.
        let mut zeroed = bytes.clone();
        zeroed[12..16].fill(0);
        assert_eq!(crc32(&zeroed).to_le_bytes(), bytes[12..16]);

        let image = Image::parse(&bytes).unwrap();
        assert_eq!(image.architecture(), architecture);
        let mut copy = vec![0.0; image.param_count()];
        image.copy_params(&mut copy).unwrap();
        let params = params_for(architecture, seed);
        assert!(
            copy.iter()
                .zip(&params)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        // Counters survive for BatchNorm layers and are zero elsewhere.
        for (layer, (count, index)) in architecture
            .layers()
            .zip(image.batches_tracked().iter().zip(1..))
        {
            let want = if layer.batch_norm.is_some() {
                index * 1000 + seed
            } else {
                0
            };
            assert_eq!(*count, want);
        }
        // Writing what was read gives the same bytes.
        let mut again = vec![0; bytes.len()];
        write_image(
            image.architecture(),
            &copy,
            image.batches_tracked(),
            &mut again,
        )
        .unwrap();
        assert_eq!(again, bytes);
    }
}

#[test]
fn in_place_view_needs_four_byte_alignment() {
    let architecture = Architecture::official(6, 4, 2).unwrap();
    let bytes = image_of(&architecture, 1);
    let params = params_for(&architecture, 1);
    // Aligned storage: viewed in place, no copy.
    let mut aligned = Box::new(AlignedImage([0_u8; 4096]));
    aligned.0[..bytes.len()].copy_from_slice(&bytes);
    let view = Image::parse(&aligned.0[..bytes.len()])
        .unwrap()
        .params()
        .unwrap();
    assert_eq!(view, &params[..]);
    assert_eq!(view.as_ptr() as usize % IMAGE_ALIGN, 0);
    // One byte off: parsed and copied, but not viewed in place.
    let mut shifted = Box::new(AlignedImage([0_u8; 4096]));
    shifted.0[1..=bytes.len()].copy_from_slice(&bytes);
    let image = Image::parse(&shifted.0[1..=bytes.len()]).unwrap();
    assert_eq!(image.params(), Err(SslError::Image(ImageError::Misaligned)));
    let mut copy = vec![0.0; params.len()];
    image.copy_params(&mut copy).unwrap();
    assert_eq!(copy, params);
    assert_eq!(
        image.copy_params(&mut copy[1..]),
        Err(SslError::DimensionMismatch {
            expected: params.len(),
            got: params.len() - 1
        })
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = image_of(&Architecture::lightly(5, 4, 3, 2).unwrap(), 2);
    let step = if cfg!(miri) { 127 } else { 1 }; // see every_flipped_bit_is_an_error
    // What a truncated image needs is as far as could be read: the 64-byte header, then
    // the header and layer table (`header_len`), then the whole image.
    let header_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    assert!(64 < header_len && header_len < bytes.len());
    for len in (0..bytes.len())
        .step_by(step)
        .chain([63, 64, header_len - 1, header_len])
    {
        let needed = if len < 64 {
            64
        } else if len < header_len {
            header_len
        } else {
            bytes.len()
        };
        assert_eq!(
            image_error(&bytes[..len]),
            ImageError::Truncated { needed, got: len },
            "{len} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    reseal(&mut longer);
    assert_eq!(
        image_error(&longer),
        ImageError::Inconsistent {
            field: "length (trailing bytes)"
        }
    );
}

#[test]
fn every_flipped_bit_is_an_error() {
    let bytes = image_of(&Architecture::official(4, 3, 2).unwrap(), 3);
    // Under miri (an interpreter, ~1000× slower) every 61st byte, all of its bits: the
    // header, the table and the data are still each hit several times.
    // Which error: the header and the table are checked before the checksum, so a flip
    // the structure checks see gives their error (the one the same edit gives with the
    // checksum rewritten); any other flip, in the data, a free field or the checksum
    // itself, gives `ChecksumMismatch` with the stored field and the bytes' CRC-32.
    let step = if cfg!(miri) { 127 } else { 1 };
    let header_len = bytes.len()
        - 4 * Architecture::official(4, 3, 2)
            .unwrap()
            .param_count()
            .unwrap();
    let (mut structural, mut checksum) = (0, 0);
    for at in (0..bytes.len()).step_by(step) {
        for bit in 0..8 {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 1 << bit;
            let mut resealed = corrupt.clone();
            reseal(&mut resealed);
            let want = match Image::parse(&resealed) {
                Err(SslError::Image(error)) if !(12..16).contains(&at) => {
                    structural += 1;
                    error
                }
                _ => {
                    checksum += 1;
                    let mut zeroed = corrupt.clone();
                    zeroed[12..16].fill(0);
                    ImageError::ChecksumMismatch {
                        stored: u32::from_le_bytes(corrupt[12..16].try_into().unwrap()),
                        computed: crc32(&zeroed),
                    }
                }
            };
            assert_eq!(image_error(&corrupt), want, "byte {at} bit {bit}");
            if at >= header_len {
                assert!(
                    matches!(want, ImageError::ChecksumMismatch { .. }),
                    "byte {at} bit {bit}"
                );
            }
        }
    }
    // Both kinds occur: the header's fields and the data.
    assert!(
        structural > 0 && checksum > 0,
        "{structural} structural, {checksum} checksum"
    );
}

#[test]
fn header_fields() {
    let good = image_of(&Architecture::official(4, 3, 2).unwrap(), 4);
    let edit = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        reseal(&mut bytes);
        image_error(&bytes)
    };
    assert_eq!(edit(0, b"SIMSIAN"), ImageError::BadMagic);
    for version in [0_u32, 3, u32::MAX] {
        assert_eq!(
            edit(8, &version.to_le_bytes()),
            ImageError::UnsupportedVersion { version }
        );
    }
    assert_eq!(
        edit(20, &2_u32.to_le_bytes()),
        ImageError::UnsupportedElementType { code: 2 }
    );
    assert_eq!(
        edit(24, &4_u32.to_le_bytes()),
        ImageError::Inconsistent { field: "flags" }
    );
    assert_eq!(
        edit(60, &[1]),
        ImageError::Inconsistent { field: "reserved" }
    );
    assert_eq!(
        edit(16, &128_u32.to_le_bytes()),
        ImageError::Inconsistent {
            field: "header_len"
        }
    );
    for counts in [[0_u8, 0, 2, 0], [5, 0, 2, 0], [3, 0, 0, 0], [3, 0, 9, 0]] {
        assert_eq!(
            edit(28, &counts),
            ImageError::Inconsistent {
                field: "layer count"
            }
        );
    }
    assert_eq!(
        edit(32, &1_u64.to_le_bytes()),
        ImageError::Inconsistent {
            field: "parameter count"
        }
    );
    assert_eq!(
        edit(40, &4_u64.to_le_bytes()),
        ImageError::Inconsistent {
            field: "parameter bytes"
        }
    );
    // Padding after the five records (64 + 5·32 = 224 .. 256) must be zero.
    assert_eq!(
        edit(230, &[7]),
        ImageError::Inconsistent { field: "padding" }
    );
    // The checksum itself.
    let mut bytes = good.clone();
    bytes[12] ^= 1;
    assert!(matches!(
        image_error(&bytes),
        ImageError::ChecksumMismatch { .. }
    ));
}

#[test]
fn layer_records() {
    let good = image_of(&Architecture::official(4, 3, 2).unwrap(), 5);
    let record = |layer: usize| 64 + 32 * layer;
    let edit = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        reseal(&mut bytes);
        image_error(&bytes)
    };
    let bad = |index, reason| ImageError::BadLayer { index, reason };
    assert_eq!(
        edit(record(1) + 8, &(1_u32 << 5).to_le_bytes()),
        bad(1, "unknown layer flags")
    );
    assert_eq!(
        edit(record(1) + 8, &2_u32.to_le_bytes()),
        bad(1, "a frozen bias without a bias")
    );
    // Layer 4 (the predictor's last) has no BatchNorm: BatchNorm fields there are an error.
    assert_eq!(
        edit(record(4) + 16, &1_u64.to_le_bytes()),
        bad(4, "BatchNorm fields on a layer without BatchNorm")
    );
    assert_eq!(
        edit(record(4) + 12, &1e-5_f32.to_le_bytes()),
        bad(4, "BatchNorm fields on a layer without BatchNorm")
    );
    assert_eq!(
        edit(record(0) + 12, &0.0_f32.to_le_bytes()),
        bad(0, "eps must be finite and > 0")
    );
    assert_eq!(
        edit(record(0) + 12, &f32::NAN.to_le_bytes()),
        bad(0, "eps must be finite and > 0")
    );
    assert_eq!(
        edit(record(2), &0_u32.to_le_bytes()),
        bad(2, "every layer width must be > 0")
    );
    assert_eq!(
        edit(record(2), &5_u32.to_le_bytes()),
        bad(2, "a layer's d_in must equal the previous layer's d_out")
    );
    assert_eq!(
        edit(record(4) + 4, &4_u32.to_le_bytes()),
        bad(3, "the predictor must map the projection width to itself")
    );
    assert_eq!(
        edit(record(1) + 24, &17_u64.to_le_bytes()),
        ImageError::Inconsistent {
            field: "layer offset"
        }
    );
    // Absurd widths: the layers after it no longer start where the table says. With a
    // 32-bit `usize` (wasm32, `.ci/steps/75-wasm.sh`) the layer's own parameter count
    // overflows first.
    assert_eq!(
        edit(record(0), &u32::MAX.to_le_bytes()),
        if cfg!(target_pointer_width = "64") {
            ImageError::Inconsistent {
                field: "layer offset",
            }
        } else {
            bad(0, "parameter count overflows usize")
        }
    );
    // A huge width inside a stack breaks the chain first.
    assert_eq!(
        edit(record(4), &(u32::MAX / 2).to_le_bytes()),
        bad(4, "a layer's d_in must equal the previous layer's d_out")
    );
    let error = edit(record(0) + 4, &u32::MAX.to_le_bytes());
    assert_eq!(
        error,
        if cfg!(target_pointer_width = "64") {
            bad(1, "a layer's d_in must equal the previous layer's d_out")
        } else {
            bad(0, "parameter count overflows usize")
        }
    );
}

#[test]
fn non_finite_parameters_are_refused_on_both_sides() {
    let architecture = Architecture::official(4, 3, 2).unwrap();
    let mut params = params_for(&architecture, 6);
    let mut bytes = vec![0; image_len(&architecture).unwrap()];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        params[7] = bad;
        assert_eq!(
            write_image(&architecture, &params, &[], &mut bytes),
            Err(SslError::NonFinite { location: "params" })
        );
    }
    // A NaN that slipped into an image (with a valid checksum) is found by the parser.
    let mut bytes = image_of(&architecture, 6);
    let header_len = bytes.len() - 4 * architecture.param_count().unwrap();
    bytes[header_len + 8..header_len + 12].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut bytes);
    assert_eq!(
        Image::parse(&bytes).err(),
        Some(SslError::NonFinite { location: "params" })
    );
}

#[test]
fn writer_errors() {
    let architecture = Architecture::official(4, 3, 2).unwrap();
    let params = params_for(&architecture, 7);
    let len = image_len(&architecture).unwrap();
    let mut short = vec![0; len - 1];
    assert_eq!(
        write_image(&architecture, &params, &[], &mut short),
        Err(SslError::CapacityTooSmall {
            needed: len,
            capacity: len - 1
        })
    );
    let mut bytes = vec![0; len + 10];
    assert_eq!(
        write_image(&architecture, &params[1..], &[], &mut bytes),
        Err(SslError::DimensionMismatch {
            expected: params.len(),
            got: params.len() - 1
        })
    );
    // A longer buffer is fine: the image is its start.
    assert_eq!(
        write_image(&architecture, &params, &[], &mut bytes),
        Ok(len)
    );
    assert!(Image::parse(&bytes[..len]).is_ok());
}

/// A head whose image would not fit in `usize` bytes: `InvalidParameter`, whether the
/// data (4 bytes per parameter) or the data plus the header overflows.
#[test]
fn image_len_overflow_is_an_error() {
    let overflow = Err(SslError::InvalidParameter {
        name: "config",
        reason: "image length overflows usize",
    });
    let head = |d_encoder: usize| {
        Architecture::reference(SimSiamConfig {
            d_encoder,
            d_projector: 1,
            d_predictor: 1,
            d_out: 1,
        })
        .unwrap()
    };
    // 7 parameters besides the first layer's `d_encoder` weights.
    let data_overflows = head(usize::MAX / 4 + 1);
    assert_eq!(data_overflows.param_count(), Ok(usize::MAX / 4 + 8));
    assert_eq!(image_len(&data_overflows), overflow);
    // 4·params = usize::MAX − 3: the data fits, its 192-byte header does not.
    let header_overflows = head(usize::MAX / 4 - 7);
    assert_eq!(header_overflows.param_count(), Ok(usize::MAX / 4));
    assert_eq!(image_len(&header_overflows), overflow);
    // The largest that fits.
    let fits = head(usize::MAX / 4 - 7 - 48);
    assert_eq!(image_len(&fits), Ok(usize::MAX - 3 - 4 * 48 + 192));
}

#[test]
fn size_overhead_is_the_header_and_table() {
    // The paper's official head: 64 bytes of header and 5 layer records, 256 in all.
    let paper = Architecture::official(2048, 2048, 512).unwrap();
    let params = paper.param_count().unwrap();
    assert_eq!(image_len(&paper).unwrap(), 4 * params + 256);
    let reference = Architecture::reference(SimSiamConfig::default()).unwrap();
    assert_eq!(image_len(&reference).unwrap(), 4 * 16_640 + 192);
}

#[test]
fn parse_unverified_skips_only_the_data_pass() {
    let good = image_of(&Architecture::official(4, 3, 2).unwrap(), 5);
    let verified = Image::parse(&good).unwrap();
    assert_eq!(Image::parse_unverified(&good).unwrap(), verified);
    // A changed parameter byte: the checksum catches it, the unverified parse does not
    // look (the C API's per-call rebuild of an image it validated at init).
    let mut changed = good.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    assert!(matches!(
        image_error(&changed),
        ImageError::ChecksumMismatch { .. }
    ));
    assert!(Image::parse_unverified(&changed).is_ok());
    // Viewing in place needs 4-byte alignment, which a `Vec<u8>` need not have: the same
    // bytes at an aligned address are viewed, one byte off they are `Misaligned`.
    let mut storage = Box::new(AlignedImage([0_u8; 4096]));
    storage.0[..changed.len()].copy_from_slice(&changed);
    let aligned = &storage.0[..changed.len()];
    let head = simsiam::SimSiamHead::from_checked_image(aligned).unwrap();
    assert_eq!(
        head.params().as_ptr().cast::<u8>(),
        aligned[aligned.len() - head.params().len() * 4..].as_ptr()
    );
    storage.0[1..=changed.len()].copy_from_slice(&changed);
    assert_eq!(
        simsiam::SimSiamHead::from_checked_image(&storage.0[1..=changed.len()]).map(|_| ()),
        Err(SslError::Image(ImageError::Misaligned))
    );
    // The header and the table are still checked.
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0x01;
    assert_eq!(
        Image::parse_unverified(&bad_magic).map(|_| ()),
        Err(SslError::Image(ImageError::BadMagic))
    );
    assert!(Image::parse_unverified(&good[..good.len() - 1]).is_err());
}

// ---------------------------------------------------------------------------------------
// Version 2: the whole network, the input contract and the training section.

use simsiam::image::{
    IMAGE_VERSION, ImageExtras, InputContract, SchedulePosition, Standardization, TrainingSection,
    TrainingState, image_len_with, write_image_with,
};
use simsiam::layers::Shape;
use simsiam::train::TrainConfig;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The networks of version 2: heads alone and (feature `encoder`) har-dense, and (feature
/// `conv`) har-conv and a convolution with every option, all small.
fn networks() -> Vec<Architecture> {
    #[cfg_attr(not(feature = "encoder"), allow(unused_mut))]
    let mut networks = vec![
        Architecture::official(12, 8, 4).unwrap(),
        Architecture::reference(SimSiamConfig {
            d_encoder: 3,
            d_projector: 5,
            d_predictor: 2,
            d_out: 1,
        })
        .unwrap(),
    ];
    #[cfg(feature = "encoder")]
    {
        use simsiam::model::HarDense;
        networks.push(
            Architecture::har_dense(&HarDense {
                channels: 3,
                window: 8,
                hidden: 16,
                feature: 8,
                projector_hidden: 8,
                projection: 6,
                predictor_hidden: 4,
            })
            .unwrap(),
        );
    }
    #[cfg(feature = "conv")]
    {
        use simsiam::layers::{BatchNorm1d, Bias, Conv1d, LayerKind, Linear, MaxPool1d, Padding};
        use simsiam::model::{Encoder, HarConv};
        networks.push(
            Architecture::har_conv(&HarConv {
                channels: 5,
                window: 32,
                conv_channels: [4, 6, 8],
                kernels: [3, 5, 3],
                pool: 2,
                projector_hidden: 8,
                projection: 6,
                predictor_hidden: 4,
            })
            .unwrap(),
        );
        // Every record field: padding 'same' and zeros, stride, biases (frozen too), a
        // BatchNorm with its own eps and momentum and without affine, pools, a Linear.
        let encoder = Encoder::new(
            Shape::sequence(3, 12),
            &[
                LayerKind::Conv1d(Conv1d {
                    c_in: 3,
                    c_out: 4,
                    kernel: 4,
                    stride: 1,
                    padding: Padding::Same,
                    bias: Bias::Frozen,
                }),
                LayerKind::BatchNorm1d(BatchNorm1d {
                    channels: 4,
                    affine: false,
                    eps: 1e-3,
                    momentum: 0.25,
                }),
                LayerKind::Relu,
                LayerKind::MaxPool1d(MaxPool1d { kernel: 2 }),
                LayerKind::Conv1d(Conv1d {
                    c_in: 4,
                    c_out: 5,
                    kernel: 3,
                    stride: 2,
                    padding: Padding::Zeros(1),
                    bias: Bias::Trainable,
                }),
                LayerKind::GlobalMaxPool1d,
                LayerKind::Linear(Linear {
                    d_in: 5,
                    d_out: 12,
                    bias: Bias::Trainable,
                }),
                LayerKind::BatchNorm1d(BatchNorm1d::new(12)),
            ],
        )
        .unwrap();
        networks.push(
            Architecture::official(12, 8, 4)
                .unwrap()
                .with_encoder(encoder)
                .unwrap(),
        );
    }
    networks
}

/// The input shape of `architecture`: the encoder's, or the head's input as `[d, 1]`.
fn input_shape(architecture: &Architecture) -> Shape {
    match &architecture.encoder {
        Some(encoder) => encoder.input(),
        None => Shape::sequence(architecture.d_encoder(), 1),
    }
}

/// Everything a version-2 image can hold, from `seed`.
struct Sections {
    tracked: Vec<u64>,
    encoder_tracked: Vec<u64>,
    mean: Vec<f32>,
    std: Vec<f32>,
    momentum: Vec<f32>,
    state: TrainingState,
}

impl Sections {
    fn new(architecture: &Architecture, seed: u64) -> Self {
        let channels = input_shape(architecture).channels;
        let mut rng = LcgRng::new(seed + 100);
        Self {
            tracked: (1..=8).map(|i| i * 1000 + seed).collect(),
            encoder_tracked: (1..=16).map(|i| i * 7 + seed).collect(),
            mean: (0..channels).map(|_| rng.next_f32() - 0.5).collect(),
            std: (0..channels).map(|_| rng.next_f32() + 0.25).collect(),
            momentum: params_for(architecture, seed + 1),
            state: TrainingState {
                config: TrainConfig {
                    lr: 0.03,
                    momentum: 0.8,
                    weight_decay: 5e-4,
                    fix_predictor_lr: false,
                    stop_gradient: true,
                    batch_norm_momentum: 0.2,
                },
                lr: 0.0125,
                steps: 777 + seed,
                schedule: SchedulePosition {
                    base_lr: 0.06,
                    step: 7,
                    total: 100,
                },
                augment_rng: Some([1, 2, 3, seed as u32]),
                shuffle_rng: Some([u32::MAX, 0, 0, 9]),
            },
        }
    }

    /// The extras: the counters always; the contract (with standardisation) and the
    /// training section when `full`.
    fn extras(&self, architecture: &Architecture, full: bool) -> ImageExtras<'_> {
        let input = InputContract::channel_major(input_shape(architecture))
            .with_standardization(Standardization::new(&self.mean, &self.std).unwrap());
        ImageExtras {
            batches_tracked: &self.tracked,
            encoder_batches_tracked: &self.encoder_tracked,
            input: full.then_some(input),
            training: full.then_some(TrainingSection {
                state: self.state,
                momentum: &self.momentum,
            }),
        }
    }
}

fn v2_image_of(architecture: &Architecture, extras: &ImageExtras<'_>, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; image_len_with(architecture, extras).unwrap()];
    assert_eq!(
        write_image_with(
            architecture,
            &params_for(architecture, seed),
            extras,
            &mut bytes
        ),
        Ok(bytes.len())
    );
    bytes
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn v2_round_trip_keeps_network_counters_contract_and_training_bit_for_bit() {
    for (seed, architecture) in networks().iter().enumerate() {
        let seed = seed as u64;
        let sections = Sections::new(architecture, seed);
        for full in [false, true] {
            let extras = sections.extras(architecture, full);
            let bytes = v2_image_of(architecture, &extras, seed);
            // The lengths the format documents.
            let records = architecture.encoder.map_or(0, |e| e.layers().len())
                + architecture.layers().count();
            let channels = if full { sections.mean.len() } else { 0 };
            let sections_len = 64 + 48 * records + 8 * channels + if full { 88 } else { 0 };
            let header_len = u32_at(&bytes, 16) as usize;
            assert_eq!(header_len, sections_len.next_multiple_of(64));
            let data = architecture.param_count().unwrap() * if full { 8 } else { 4 };
            assert_eq!(bytes.len(), header_len + data);
            assert_eq!(bytes[..8], IMAGE_MAGIC);
            assert_eq!(u32_at(&bytes, 8), IMAGE_VERSION);
            let mut zeroed = bytes.clone();
            zeroed[12..16].fill(0);
            assert_eq!(crc32(&zeroed).to_le_bytes(), bytes[12..16]);

            let image = Image::parse(&bytes).unwrap();
            assert_eq!(image.version(), 2);
            assert_eq!(image.architecture(), architecture);
            let mut params = vec![0.0; image.param_count()];
            image.copy_params(&mut params).unwrap();
            assert_eq!(bits(&params), bits(&params_for(architecture, seed)));
            for (layer, (count, want)) in architecture
                .layers()
                .zip(image.batches_tracked().iter().zip(&sections.tracked))
            {
                let want = if layer.batch_norm.is_some() { *want } else { 0 };
                assert_eq!(*count, want);
            }
            let kinds = architecture
                .encoder
                .map(|e| e.layers().to_vec())
                .unwrap_or_default();
            for (i, count) in image.encoder_batches_tracked().iter().enumerate() {
                let is_batch_norm = kinds
                    .get(i)
                    .is_some_and(|kind| matches!(kind, simsiam::layers::LayerKind::BatchNorm1d(_)));
                let want = if is_batch_norm {
                    sections.encoder_tracked[i]
                } else {
                    0
                };
                assert_eq!(*count, want, "encoder layer {i}");
            }
            // The contract: as given, or (with an encoder) its input shape alone.
            let want_input = match (extras.input, &architecture.encoder) {
                (Some(input), _) => Some(input),
                (None, Some(encoder)) => Some(InputContract::channel_major(encoder.input())),
                (None, None) => None,
            };
            assert_eq!(image.input_contract(), want_input);
            if let Some(standardization) = image.input_contract().and_then(|c| c.standardization) {
                let mut mean = vec![0.0; sections.mean.len()];
                let mut std = vec![0.0; sections.std.len()];
                standardization.copy_into(&mut mean, &mut std).unwrap();
                assert_eq!(
                    (bits(&mean), bits(&std)),
                    (bits(&sections.mean), bits(&sections.std))
                );
            }
            assert_eq!(image.training(), full.then_some(sections.state));
            if full {
                let mut momentum = vec![0.0; image.param_count()];
                image.copy_momentum(&mut momentum).unwrap();
                assert_eq!(bits(&momentum), bits(&sections.momentum));
            } else {
                assert_eq!(image.momentum(), Ok(&[][..]));
                assert!(image.copy_momentum(&mut []).is_err());
            }

            // Writing what was read gives the same bytes.
            let mut momentum = vec![0.0; if full { image.param_count() } else { 0 }];
            if full {
                image.copy_momentum(&mut momentum).unwrap();
            }
            let again = ImageExtras {
                batches_tracked: image.batches_tracked(),
                encoder_batches_tracked: image.encoder_batches_tracked(),
                input: image.input_contract(),
                training: image.training().map(|state| TrainingSection {
                    state,
                    momentum: &momentum,
                }),
            };
            let mut rewritten = vec![0; image_len_with(image.architecture(), &again).unwrap()];
            write_image_with(image.architecture(), &params, &again, &mut rewritten).unwrap();
            assert_eq!(rewritten, bytes);

            // In place: the head views the data, with every counter.
            let mut aligned = Box::new(AlignedImage([0_u8; 1 << 16]));
            aligned.0[..bytes.len()].copy_from_slice(&bytes);
            let head = simsiam::SimSiamHead::from_image(&aligned.0[..bytes.len()]).unwrap();
            assert_eq!(head.architecture(), architecture);
            assert_eq!(
                head.params().as_ptr().cast::<u8>(),
                aligned.0[header_len..].as_ptr()
            );
            assert_eq!(head.batches_tracked(), image.batches_tracked());
            assert_eq!(
                head.encoder_batches_tracked(),
                image.encoder_batches_tracked()
            );
            if !full {
                // The counters are all the head records: its own image is these bytes
                // for a network with an encoder (version 2 with the counters only).
                let mut own = vec![0; head.image_len().unwrap()];
                head.write_image(&mut own).unwrap();
                if architecture.encoder.is_some() {
                    assert_eq!(own, bytes);
                } else {
                    assert_eq!(Image::parse(&own).unwrap().version(), 1);
                }
            }
        }
    }
}

/// The alloc API: `SimSiam::from_image` copies a version-2 image; `to_image_with` gives
/// it back; a network with an encoder runs the same from the image.
#[cfg(feature = "alloc")]
#[test]
#[cfg_attr(
    miri,
    ignore = "init_params: libm's sqrt is inline assembly on x86-64, which miri cannot run"
)]
fn v2_through_the_alloc_api() {
    for (seed, architecture) in networks().iter().enumerate() {
        let seed = seed as u64;
        let sections = Sections::new(architecture, seed);
        let extras = sections.extras(architecture, true);
        // PyTorch's initialisation: running variances of 1, so the outputs are finite.
        let mut params = vec![0.0; architecture.param_count().unwrap()];
        architecture
            .init_params(&mut LcgRng::new(seed), &mut params)
            .unwrap();
        let mut bytes = vec![0; image_len_with(architecture, &extras).unwrap()];
        write_image_with(architecture, &params, &extras, &mut bytes).unwrap();
        // The scalar twin (see training_resumes_from_an_image_bit_for_bit).
        let scalar = simsiam::Backend::Scalar;
        let model = simsiam::SimSiam::from_image(&bytes)
            .unwrap()
            .with_backend(scalar);
        assert_eq!(
            model.to_image_with(extras.input, extras.training).unwrap(),
            bytes
        );
        let direct = simsiam::SimSiam::from_params(*architecture, params)
            .unwrap()
            .with_backend(scalar);
        let x: Vec<f32> = (0..architecture.d_input())
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        assert_eq!(
            bits(&model.project(&x).unwrap()),
            bits(&direct.project(&x).unwrap())
        );
        // `to_image`: version 1 for a head alone, else version 2 with the counters.
        let plain_bytes = model.to_image().unwrap();
        let plain = Image::parse(&plain_bytes).unwrap();
        let want = if architecture.encoder.is_some() { 2 } else { 1 };
        assert_eq!(plain.version(), want);
        assert_eq!(
            plain.encoder_batches_tracked(),
            Image::parse(&bytes).unwrap().encoder_batches_tracked()
        );
    }
}

/// The committed version-1 image (the firmware's, tests/data/official_head.simsiam)
/// still loads, writes back byte for byte, and as version 2 gives the same outputs bit
/// for bit on both twins.
#[test]
#[cfg_attr(
    miri,
    ignore = "five CRC passes over 31 KB: minutes under miri (the other tests parse both versions)"
)]
fn committed_v1_image_loads_and_runs_the_same_as_version_2() {
    let committed = include_bytes!("data/official_head.simsiam");
    let mut storage = Box::new(AlignedImage([0_u8; 1 << 16]));
    storage.0[..committed.len()].copy_from_slice(committed);
    let v1 = &storage.0[..committed.len()];
    let image = Image::parse(v1).unwrap();
    assert_eq!(image.version(), 1);
    assert_eq!(image.input_contract(), None);
    assert_eq!(image.training(), None);
    let head = simsiam::SimSiamHead::from_image(v1).unwrap();
    let mut again = vec![0; head.image_len().unwrap()];
    head.write_image(&mut again).unwrap();
    assert!(again == committed, "the version-1 writer changed");

    let extras = head.image_extras();
    let mut v2 = vec![0; image_len_with(head.architecture(), &extras).unwrap()];
    write_image_with(head.architecture(), head.params(), &extras, &mut v2).unwrap();
    let image2 = Image::parse(&v2).unwrap();
    assert_eq!(image2.version(), 2);
    assert_eq!(image2.architecture(), image.architecture());
    assert_eq!(image2.batches_tracked(), image.batches_tracked());
    let mut storage2 = Box::new(AlignedImage([0_u8; 1 << 16]));
    storage2.0[..v2.len()].copy_from_slice(&v2);
    let head2 = simsiam::SimSiamHead::from_image(&storage2.0[..v2.len()]).unwrap();
    assert_eq!(bits(head2.params()), bits(head.params()));

    let d = head.d_encoder();
    let z1: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
    let z2: Vec<f32> = (0..d).map(|i| (i as f32 * 0.11).cos()).collect();
    let mut workspace = vec![0.0; head.architecture().workspace_len(1).unwrap()];
    let run = |h: &simsiam::SimSiamHead<&[f32]>, ws: &mut [f32]| {
        let mut z = vec![0.0; h.d_out()];
        h.project_into(&z1, &mut z, ws).unwrap();
        let mut p = vec![0.0; h.d_out()];
        h.predict_into(&z, &mut p, ws).unwrap();
        let loss = h.loss(&z1, &z2, ws).unwrap();
        (bits(&z), bits(&p), loss.to_bits())
    };
    assert_eq!(run(&head, &mut workspace), run(&head2, &mut workspace));
    let (s1, s2) = (
        head.with_kernels::<simsiam::kernels::Scalar>(),
        head2.with_kernels::<simsiam::kernels::Scalar>(),
    );
    let mut z = vec![0.0; head.d_out()];
    let mut z_2 = vec![0.0; head.d_out()];
    s1.project_into(&z1, &mut z, &mut workspace).unwrap();
    s2.project_into(&z1, &mut z_2, &mut workspace).unwrap();
    assert_eq!(bits(&z), bits(&z_2));
}

/// A full version-2 image (every section) of the richest network this build has.
fn full_v2() -> (Architecture, Vec<u8>) {
    let architecture = *networks().last().unwrap();
    let sections = Sections::new(&architecture, 11);
    let bytes = v2_image_of(&architecture, &sections.extras(&architecture, true), 11);
    (architecture, bytes)
}

/// Every truncation of a version-2 image is `Truncated` with what could be read, and a
/// trailing byte is `Inconsistent`.
#[test]
fn v2_every_truncation_is_an_error() {
    let (_, bytes) = full_v2();
    let header_len = u32_at(&bytes, 16) as usize;
    let step = if cfg!(miri) { 127 } else { 1 };
    for len in (0..bytes.len())
        .step_by(step)
        .chain([63, 64, header_len - 1, header_len])
    {
        let needed = if len < 64 {
            64
        } else if len < header_len {
            header_len
        } else {
            bytes.len()
        };
        assert_eq!(
            image_error(&bytes[..len]),
            ImageError::Truncated { needed, got: len },
            "{len} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    reseal(&mut longer);
    assert_eq!(
        image_error(&longer),
        ImageError::Inconsistent {
            field: "length (trailing bytes)"
        }
    );
}

/// As `every_flipped_bit_is_an_error`, on a version-2 image with every section: a flip
/// the structure checks see gives their error, any other the checksum's; the data's
/// flips (parameters and momentum) are all checksum errors.
#[test]
#[cfg_attr(
    miri,
    ignore = "over 5 minutes interpreted; every_flipped_bit_is_an_error runs the same check on version 1 there"
)]
fn v2_every_flipped_bit_is_an_error() {
    let (_, bytes) = full_v2();
    let header_len = u32_at(&bytes, 16) as usize;
    let step = if cfg!(miri) { 127 } else { 1 };
    let (mut structural, mut checksum) = (0, 0);
    // Every byte before the data; in the data (parameters and momentum, where every
    // flip is a checksum error) every 13th, which keeps the test under a second. Under
    // miri (each flip is four CRC passes over the image, interpreted) every 61st byte of
    // the header, every 509th of the data, and their lowest and highest bits.
    let data_step = if cfg!(miri) { 1021 } else { 13 };
    let bits: &[u32] = if cfg!(miri) {
        &[0, 7]
    } else {
        &[0, 1, 2, 3, 4, 5, 6, 7]
    };
    let positions = (0..header_len)
        .step_by(step)
        .chain((header_len..bytes.len()).step_by(data_step));
    for at in positions {
        for &bit in bits {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 1 << bit;
            let mut resealed = corrupt.clone();
            reseal(&mut resealed);
            let want = match Image::parse(&resealed) {
                Err(SslError::Image(error)) if !(12..16).contains(&at) => {
                    structural += 1;
                    error
                }
                _ => {
                    checksum += 1;
                    let mut zeroed = corrupt.clone();
                    zeroed[12..16].fill(0);
                    ImageError::ChecksumMismatch {
                        stored: u32_at(&corrupt, 12),
                        computed: crc32(&zeroed),
                    }
                }
            };
            assert_eq!(image_error(&corrupt), want, "byte {at} bit {bit}");
            if at >= header_len {
                assert!(matches!(want, ImageError::ChecksumMismatch { .. }));
            }
        }
    }
    assert!(structural > 0 && checksum > 0);
}

/// Each header field of version 2, edited (and resealed), gives its own error.
#[test]
fn v2_header_fields() {
    let (_, good) = full_v2();
    let edit = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        reseal(&mut bytes);
        image_error(&bytes)
    };
    let field = |field| ImageError::Inconsistent { field };
    assert_eq!(edit(24, &(1_u32 << 5).to_le_bytes()), field("flags"));
    assert_eq!(edit(44, &[1]), field("reserved"));
    for count in [17_u16, u16::MAX] {
        assert_eq!(edit(28, &count.to_le_bytes()), field("layer count"));
    }
    for count in [0_u16, 5] {
        assert_eq!(edit(30, &count.to_le_bytes()), field("layer count"));
        assert_eq!(edit(32, &count.to_le_bytes()), field("layer count"));
    }
    assert_eq!(edit(34, &2_u16.to_le_bytes()), field("input layout"));
    assert_eq!(edit(34, &0_u16.to_le_bytes()), field("input layout"));
    assert_eq!(edit(36, &0_u32.to_le_bytes()), field("input shape"));
    assert_eq!(edit(40, &0_u32.to_le_bytes()), field("input shape"));
    assert_eq!(edit(16, &64_u32.to_le_bytes()), field("header_len"));
    assert_eq!(edit(48, &1_u64.to_le_bytes()), field("parameter count"));
    assert_eq!(edit(56, &4_u64.to_le_bytes()), field("parameter bytes"));
    // Without the contract flag, its fields must be zero, and an encoder needs it.
    let without_contract = u32_at(&good, 24) & !(1 << 2) & !(1 << 3);
    let error = edit(24, &without_contract.to_le_bytes());
    assert_eq!(error, field("input shape"));
    // A standardisation of another channel count moves the sections: header_len.
    assert_eq!(
        edit(36, &(u32_at(&good, 36) + 8).to_le_bytes()),
        field("header_len")
    );
    // The training flag off: the section's bytes are then padding... or the data's
    // length disagrees first (header_len is checked before both).
    let without_training = u32_at(&good, 24) & !(1 << 4);
    assert_eq!(
        edit(24, &without_training.to_le_bytes()),
        field("header_len")
    );
}

/// A head alone in version 2: its contract's `C·T` must be the head's input width, and
/// without the contract flag its fields must be zero.
#[test]
fn v2_head_input_contract() {
    let architecture = Architecture::official(12, 8, 4).unwrap();
    let params = params_for(&architecture, 1);
    let extras = ImageExtras {
        input: Some(InputContract::channel_major(Shape::sequence(3, 4))),
        ..ImageExtras::default()
    };
    let good = v2_image_of(&architecture, &extras, 1);
    let edit = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        reseal(&mut bytes);
        image_error(&bytes)
    };
    let field = |field| ImageError::Inconsistent { field };
    assert_eq!(edit(36, &4_u32.to_le_bytes()), field("input shape"));
    assert_eq!(edit(24, &0_u32.to_le_bytes()), field("input shape"));
    // The writer refuses a contract of another size, a standardisation of another
    // channel count, and a bad standardisation.
    let mut bytes = vec![0; good.len() + 4096];
    let wrong = ImageExtras {
        input: Some(InputContract::channel_major(Shape::sequence(5, 2))),
        ..ImageExtras::default()
    };
    assert_eq!(
        write_image_with(&architecture, &params, &wrong, &mut bytes),
        Err(SslError::InvalidParameter {
            name: "input",
            reason: "the input contract's shape is not the network's input"
        })
    );
    let (mean, std) = ([0.0_f32; 2], [1.0_f32; 2]);
    let two = ImageExtras {
        input: Some(
            InputContract::channel_major(Shape::sequence(3, 4))
                .with_standardization(Standardization::new(&mean, &std).unwrap()),
        ),
        ..ImageExtras::default()
    };
    assert_eq!(
        write_image_with(&architecture, &params, &two, &mut bytes),
        Err(SslError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        Standardization::new(&mean, &std[..1]).err(),
        Some(SslError::DimensionMismatch {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        Standardization::new(&[f32::NAN, 0.0], &std).err(),
        Some(SslError::NonFinite {
            location: "standardization"
        })
    );
    assert_eq!(
        Standardization::new(&mean, &[1.0, 0.0]).err(),
        Some(SslError::InvalidParameter {
            name: "std",
            reason: "every standard deviation must be > 0"
        })
    );
}

/// The sections' values: standardisation, training state, momentum.
#[test]
fn v2_sections() {
    let (architecture, good) = full_v2();
    let records =
        architecture.encoder.map_or(0, |e| e.layers().len()) + architecture.layers().count();
    let channels = u32_at(&good, 36) as usize;
    let standardization = 64 + 48 * records;
    let training = standardization + 8 * channels;
    let edit = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        reseal(&mut bytes);
        image_error(&bytes)
    };
    let field = |field| ImageError::Inconsistent { field };
    let bad_std = field("standardization");
    assert_eq!(edit(standardization, &f32::NAN.to_le_bytes()), bad_std);
    let first_std = standardization + 4 * channels;
    assert_eq!(edit(first_std, &0.0_f32.to_le_bytes()), bad_std);
    assert_eq!(edit(first_std, &(-1.0_f32).to_le_bytes()), bad_std);
    assert_eq!(edit(first_std, &f32::INFINITY.to_le_bytes()), bad_std);
    // Training: flags, reserved, generator states, the config and the rates.
    assert_eq!(edit(training + 48, &[0, 0, 0, 1]), field("training flags"));
    assert_eq!(edit(training + 52, &[1]), field("training reserved"));
    assert_eq!(edit(training + 56, &[0; 16]), field("training rng"));
    assert_eq!(
        edit(training + 48, &[0b0111, 0, 0, 0]),
        field("training rng")
    );
    for (offset, value) in [
        (24, f32::NAN),
        (24, -1.0),
        (28, -0.5),
        (32, f32::INFINITY),
        (36, 1.0),
        (40, -1e-4),
        (44, 1.5),
    ] {
        assert_eq!(
            edit(training + offset, &value.to_le_bytes()),
            field("training state"),
            "offset {offset}"
        );
    }
    // Padding after the training section.
    let header_len = u32_at(&good, 16) as usize;
    if training + 88 < header_len {
        assert_eq!(edit(header_len - 1, &[1]), field("padding"));
    }
    // A non-finite momentum slipped in with a valid checksum; and a parameter.
    let params = architecture.param_count().unwrap();
    let mut bytes = good.clone();
    let at = header_len + 4 * params + 4;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut bytes);
    assert_eq!(
        Image::parse(&bytes).err(),
        Some(SslError::NonFinite {
            location: "momentum"
        })
    );
    assert!(Image::parse_unverified(&bytes).is_ok());
    bytes[header_len..header_len + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    reseal(&mut bytes);
    assert_eq!(
        Image::parse(&bytes).err(),
        Some(SslError::NonFinite { location: "params" })
    );
}

/// The writer's checks of the training section.
#[test]
fn v2_training_writer_errors() {
    let architecture = Architecture::official(6, 4, 2).unwrap();
    let params = params_for(&architecture, 3);
    let mut momentum = params_for(&architecture, 4);
    let mut bytes = vec![0; 1 << 16];
    let write = |state: TrainingState, momentum: &[f32], bytes: &mut [u8]| {
        let extras = ImageExtras {
            training: Some(TrainingSection { state, momentum }),
            ..ImageExtras::default()
        };
        write_image_with(&architecture, &params, &extras, bytes)
    };
    assert!(write(TrainingState::default(), &momentum, &mut bytes).is_ok());
    assert_eq!(
        write(TrainingState::default(), &momentum[1..], &mut bytes),
        Err(SslError::DimensionMismatch {
            expected: momentum.len(),
            got: momentum.len() - 1
        })
    );
    let lr = TrainingState {
        lr: -1.0,
        ..TrainingState::default()
    };
    assert!(matches!(
        write(lr, &momentum, &mut bytes),
        Err(SslError::InvalidParameter { name: "lr", .. })
    ));
    let rng = TrainingState {
        shuffle_rng: Some([0; 4]),
        ..TrainingState::default()
    };
    assert!(matches!(
        write(rng, &momentum, &mut bytes),
        Err(SslError::InvalidParameter { name: "state", .. })
    ));
    let config = TrainingState {
        config: TrainConfig {
            momentum: 1.0,
            ..TrainConfig::default()
        },
        ..TrainingState::default()
    };
    assert!(matches!(
        write(config, &momentum, &mut bytes),
        Err(SslError::InvalidParameter {
            name: "momentum",
            ..
        })
    ));
    momentum[2] = f32::NAN;
    assert_eq!(
        write(TrainingState::default(), &momentum, &mut bytes),
        Err(SslError::NonFinite {
            location: "momentum"
        })
    );
}

/// A version-2 image's layer records: kinds, flags and the fields a kind does not use.
#[test]
fn v2_layer_records() {
    let architecture = Architecture::official(4, 3, 2).unwrap();
    let good = v2_image_of(&architecture, &ImageExtras::default(), 5);
    let record = |layer: usize| 64 + 48 * layer;
    let edit = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        reseal(&mut bytes);
        image_error(&bytes)
    };
    let bad = |index, reason| ImageError::BadLayer { index, reason };
    for kind in [0_u16, 2, 3, 7, 8, u16::MAX] {
        assert_eq!(
            edit(record(1), &kind.to_le_bytes()),
            bad(1, "the projector and predictor hold dense layers only")
        );
    }
    assert_eq!(
        edit(record(1) + 2, &[1 << 5, 0]),
        bad(1, "unknown layer flags")
    );
    assert_eq!(edit(record(1) + 3, &[1]), bad(1, "unknown layer flags"));
    assert_eq!(
        edit(record(1) + 2, &[2, 0]),
        bad(1, "a frozen bias without a bias")
    );
    for unused in [12, 16, 20, 28] {
        assert_eq!(
            edit(record(0) + unused, &[1]),
            bad(0, "a field the layer's kind does not use is set"),
            "field {unused}"
        );
    }
    assert_eq!(
        edit(record(4) + 32, &1_u64.to_le_bytes()),
        bad(4, "BatchNorm fields on a layer without BatchNorm")
    );
    assert_eq!(
        edit(record(0) + 24, &0.0_f32.to_le_bytes()),
        bad(0, "eps must be finite and > 0")
    );
    assert_eq!(
        edit(record(2) + 4, &5_u32.to_le_bytes()),
        bad(2, "a layer's d_in must equal the previous layer's d_out")
    );
    assert_eq!(
        edit(record(1) + 40, &17_u64.to_le_bytes()),
        ImageError::Inconsistent {
            field: "layer offset"
        }
    );
}

/// The encoder's records (feature `conv`: every kind).
#[cfg(feature = "conv")]
#[test]
fn v2_encoder_records() {
    let (architecture, good) = full_v2();
    let kinds = architecture.encoder.unwrap().layers().to_vec();
    assert_eq!(kinds.len(), 8, "the network with every option");
    let record = |layer: usize| 64 + 48 * layer;
    let edit = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        reseal(&mut bytes);
        image_error(&bytes)
    };
    let bad = |index, reason| ImageError::BadLayer { index, reason };
    let unused = "a field the layer's kind does not use is set";
    // Records: 0 Conv1d (same, frozen bias), 1 BatchNorm1d, 2 ReLU, 3 MaxPool1d,
    // 4 Conv1d (stride 2, padding 1), 5 GlobalMaxPool1d, 6 Linear, 7 BatchNorm1d.
    for kind in [0_u16, 1, 8, 99] {
        assert_eq!(
            edit(record(2), &kind.to_le_bytes()),
            bad(2, "unknown layer kind")
        );
    }
    // Each kind's unused fields (offsets 4, 8, 12, 16, 20, 24, 28, 32).
    let uses: [(usize, &[usize]); 8] = [
        (0, &[4, 8, 12, 16, 20]),
        (1, &[4, 24, 28, 32]),
        (2, &[]),
        (3, &[12]),
        (4, &[4, 8, 12, 16, 20]),
        (5, &[]),
        (6, &[4, 8]),
        (7, &[4, 24, 28, 32]),
    ];
    for (layer, used) in uses {
        for offset in [4, 8, 12, 16, 20, 24, 28, 32] {
            if !used.contains(&offset) {
                assert_eq!(
                    edit(record(layer) + offset, &[1]),
                    bad(layer, unused),
                    "layer {layer} field {offset}"
                );
            }
        }
    }
    // Flags each kind does not have.
    for (layer, flag) in [
        (1, 1_u8),
        (1, 1 << 4),
        (2, 1),
        (3, 1 << 3),
        (5, 1 << 5),
        (6, 1 << 5),
        (7, 1 << 2),
    ] {
        assert_eq!(
            edit(record(layer) + 2, &[flag, 0]),
            bad(layer, "unknown layer flags")
        );
    }
    assert_eq!(
        edit(record(6) + 2, &[2, 0]),
        bad(6, "a frozen bias without a bias")
    );
    assert_eq!(
        edit(record(0) + 20, &1_u32.to_le_bytes()),
        bad(0, "padding 'same' with a padding width")
    );
    // Shapes: a convolution of other input channels, a BatchNorm of other channels, a
    // zero kernel, a pool longer than its input.
    assert_eq!(
        edit(record(0) + 4, &4_u32.to_le_bytes()),
        bad(0, "its input's shape does not fit the layer")
    );
    assert_eq!(
        edit(record(1) + 4, &5_u32.to_le_bytes()),
        bad(1, "its input's shape does not fit the layer")
    );
    assert!(matches!(
        edit(record(3) + 12, &0_u32.to_le_bytes()),
        ImageError::BadLayer { index: 3, .. }
    ));
    assert!(matches!(
        edit(record(3) + 12, &100_u32.to_le_bytes()),
        ImageError::BadLayer { index: 3, .. }
    ));
    // BatchNorm: a bad eps, a momentum outside [0, 1].
    assert!(matches!(
        edit(record(1) + 24, &f32::NAN.to_le_bytes()),
        ImageError::BadLayer { index: 1, .. }
    ));
    assert!(matches!(
        edit(record(1) + 28, &2.0_f32.to_le_bytes()),
        ImageError::BadLayer { index: 1, .. }
    ));
    // The encoder's output must be the projector's input: the Linear's width.
    assert_eq!(
        edit(record(6) + 8, &13_u32.to_le_bytes()),
        bad(7, "its input's shape does not fit the layer")
    );
    // The offsets run through the encoder's records too.
    assert_eq!(
        edit(record(5) + 40, &1_u64.to_le_bytes()),
        ImageError::Inconsistent {
            field: "layer offset"
        }
    );
    // Dense records belong to the head: one in the encoder is an unknown kind.
    assert_eq!(
        edit(record(2), &1_u16.to_le_bytes()),
        bad(2, "unknown layer kind")
    );
    // The input shape must fit the first layer (one more channel of standardisation
    // stays within the header's padding here).
    assert_eq!(
        edit(36, &4_u32.to_le_bytes()),
        bad(0, "its input's shape does not fit the layer")
    );
}

/// A build without feature `conv` refuses a convolution, without `encoder` any encoder.
#[cfg(all(feature = "encoder", not(feature = "conv")))]
#[test]
fn v2_without_conv_refuses_conv_kinds() {
    let architecture = networks()
        .into_iter()
        .find(|a| a.encoder.is_some())
        .unwrap();
    let mut bytes = v2_image_of(&architecture, &ImageExtras::default(), 2);
    for kind in [5_u16, 6, 7] {
        bytes[64..66].copy_from_slice(&kind.to_le_bytes());
        // Conv1d uses the record's d_in/d_out; pools use none of them: clear them.
        if kind != 5 {
            bytes[68..76].fill(0);
        }
        reseal(&mut bytes);
        assert_eq!(
            image_error(&bytes),
            ImageError::FeatureRequired {
                index: 0,
                feature: "conv"
            }
        );
    }
}

#[cfg(not(feature = "encoder"))]
#[test]
fn v2_without_encoder_refuses_an_encoder() {
    let architecture = Architecture::official(4, 3, 2).unwrap();
    let mut bytes = v2_image_of(&architecture, &ImageExtras::default(), 2);
    bytes[28..30].copy_from_slice(&1_u16.to_le_bytes());
    reseal(&mut bytes);
    assert_eq!(
        image_error(&bytes),
        ImageError::FeatureRequired {
            index: 0,
            feature: "encoder"
        }
    );
}

/// A run saved in an image resumes exactly: the next steps after `resume_sgd` give the
/// same parameters, bit for bit, as the run that never stopped.
#[test]
#[cfg_attr(
    miri,
    ignore = "init_params: libm's sqrt is inline assembly on x86-64, which miri cannot run"
)]
fn training_resumes_from_an_image_bit_for_bit() {
    use simsiam::train::{Sgd, scratch_len};
    let architecture = *networks().last().unwrap();
    let mut params = vec![0.0; architecture.param_count().unwrap()];
    architecture
        .init_params(&mut LcgRng::new(5), &mut params)
        .unwrap();
    let n = 4;
    let mut rng = LcgRng::new(9);
    let batch = |rng: &mut LcgRng| -> Vec<f32> {
        (0..n * architecture.d_input())
            .map(|_| rng.next_f32() - 0.5)
            .collect()
    };
    let batches: Vec<(Vec<f32>, Vec<f32>)> =
        (0..4).map(|_| (batch(&mut rng), batch(&mut rng))).collect();
    let mut scratch = vec![0.0; scratch_len(&architecture, n).unwrap()];
    let config = TrainConfig {
        lr: 0.1,
        ..TrainConfig::default()
    };
    let momentum = vec![0.0; params.len()];
    // The scalar twin: the same bits on every lane width, and no prefetch instruction
    // (inline assembly, which miri cannot run).
    let mut head = simsiam::SimSiamHead::new(architecture, params)
        .unwrap()
        .with_kernels::<simsiam::kernels::Scalar>();
    let mut sgd = Sgd::new(&architecture, config, momentum).unwrap();
    for (x1, x2) in &batches[..2] {
        sgd.step(&mut head, x1, x2, &mut scratch, [&mut [], &mut []])
            .unwrap();
    }
    sgd.set_lr(0.07);
    // Save: parameters, counters, the optimiser.
    let state = TrainingState {
        schedule: SchedulePosition {
            base_lr: 0.1,
            step: 2,
            total: 4,
        },
        augment_rng: Some([5, 6, 7, 8]),
        ..TrainingState::from_sgd(&sgd)
    };
    let extras = ImageExtras {
        training: Some(TrainingSection {
            state,
            momentum: sgd.momentum(),
        }),
        ..head.image_extras()
    };
    let mut bytes = vec![0; image_len_with(&architecture, &extras).unwrap()];
    write_image_with(&architecture, head.params(), &extras, &mut bytes).unwrap();
    // The run goes on.
    for (x1, x2) in &batches[2..] {
        sgd.step(&mut head, x1, x2, &mut scratch, [&mut [], &mut []])
            .unwrap();
    }
    // Resume from the image.
    let image = Image::parse(&bytes).unwrap();
    let state = image.training().unwrap();
    assert_eq!(
        (state.steps, state.lr, state.augment_rng),
        (2, 0.07, Some([5, 6, 7, 8]))
    );
    let mut momentum = vec![0.0; image.param_count()];
    image.copy_momentum(&mut momentum).unwrap();
    let mut resumed_sgd = state.resume_sgd(image.architecture(), momentum).unwrap();
    let mut params = vec![0.0; image.param_count()];
    image.copy_params(&mut params).unwrap();
    let mut resumed = simsiam::SimSiamHead::new(*image.architecture(), params)
        .unwrap()
        .with_kernels::<simsiam::kernels::Scalar>();
    resumed.set_batches_tracked(*image.batches_tracked());
    resumed.set_encoder_batches_tracked(*image.encoder_batches_tracked());
    for (x1, x2) in &batches[2..] {
        resumed_sgd
            .step(&mut resumed, x1, x2, &mut scratch, [&mut [], &mut []])
            .unwrap();
    }
    assert_eq!(bits(resumed.params()), bits(head.params()));
    assert_eq!(bits(resumed_sgd.momentum()), bits(sgd.momentum()));
    assert_eq!(resumed.batches_tracked(), head.batches_tracked());
    assert_eq!(
        resumed.encoder_batches_tracked(),
        head.encoder_batches_tracked()
    );
    assert_eq!(resumed_sgd.steps(), sgd.steps());
}

/// `Sgd::resume` keeps the buffer it is given and checks it, the lr and the sizes.
#[test]
fn sgd_resume_checks_its_inputs() {
    use simsiam::train::Sgd;
    let architecture = Architecture::official(6, 4, 2).unwrap();
    let config = TrainConfig::default();
    let momentum = params_for(&architecture, 8);
    let sgd = Sgd::resume(&architecture, config, momentum.clone(), 5, 0.01).unwrap();
    assert_eq!((sgd.steps(), sgd.lr()), (5, 0.01));
    assert_eq!(bits(sgd.momentum()), bits(&momentum));
    assert_eq!(
        Sgd::resume(&architecture, config, momentum[1..].to_vec(), 5, 0.01).err(),
        Some(SslError::DimensionMismatch {
            expected: momentum.len(),
            got: momentum.len() - 1
        })
    );
    assert!(matches!(
        Sgd::resume(&architecture, config, momentum.clone(), 5, f32::NAN),
        Err(SslError::InvalidParameter { name: "lr", .. })
    ));
    let mut bad = momentum.clone();
    bad[3] = f32::INFINITY;
    assert_eq!(
        Sgd::resume(&architecture, config, bad, 5, 0.01).err(),
        Some(SslError::NonFinite {
            location: "momentum"
        })
    );
}
