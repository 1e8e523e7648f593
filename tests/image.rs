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
    let step = if cfg!(miri) { 61 } else { 1 }; // see every_flipped_bit_is_an_error
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
    let step = if cfg!(miri) { 61 } else { 1 };
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
    assert_eq!(
        edit(8, &2_u32.to_le_bytes()),
        ImageError::UnsupportedVersion { version: 2 }
    );
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
