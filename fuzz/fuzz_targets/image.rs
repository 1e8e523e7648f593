//! The parameter image parser on arbitrary bytes (trained-heads issue): every input is
//! either a valid image or a typed `SslError::Image` / shape error, never a panic; and a
//! valid one behaves the same everywhere:
//! - `SimSiamHead::from_image` views it in place when the data is aligned (else it is
//!   `Image(Misaligned)`), `SimSiam::from_image` copies it at any alignment, and both
//!   hold the parser's architecture and parameters bit for bit;
//! - writing it back (`SimSiam::to_image`) gives the input bytes exactly;
//! - a forward pass and the loss give a value or a typed error.
//!
//! The input is placed at an offset of 0–3 bytes inside a 64-byte-aligned buffer (the
//! first input byte chooses it), so both aligned and misaligned data are exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simsiam::image::{AlignedImage, Image};
use simsiam::{ImageError, SimSiam, SimSiamHead, SslError};

/// Larger inputs are cut (the images worth fuzzing are small).
const MAX: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&shift, data)) = data.split_first() else {
        return;
    };
    let shift = usize::from(shift % 4);
    let len = data.len().min(MAX);
    let mut buffer = Box::new(AlignedImage([0_u8; MAX + 4]));
    buffer.0[shift..shift + len].copy_from_slice(&data[..len]);
    let bytes = &buffer.0[shift..shift + len];

    let parsed = Image::parse(bytes);
    let copied = SimSiam::from_image(bytes);
    let viewed = SimSiamHead::from_image(bytes);
    let image = match parsed {
        Err(error) => {
            assert_eq!(copied.map(|_| ()), Err(error));
            assert_eq!(viewed.map(|_| ()), Err(error));
            return;
        }
        Ok(image) => image,
    };
    let model = copied.expect("a valid image copies");
    assert_eq!(model.architecture(), image.architecture());
    let mut params = vec![0.0; image.param_count()];
    image.copy_params(&mut params).expect("sized");
    let same = |a: &[f32]| {
        a.iter()
            .map(|x| x.to_bits())
            .eq(params.iter().map(|x| x.to_bits()))
    };
    assert!(same(model.head().params()), "copy is not bit for bit");
    match viewed {
        Ok(head) => {
            assert!(same(head.params()), "view is not bit for bit");
            assert_eq!(
                head.params().as_ptr().cast::<u8>(),
                bytes[bytes.len() - 4 * params.len()..].as_ptr()
            );
        }
        Err(SslError::Image(ImageError::Misaligned)) => {
            assert_ne!(shift, 0, "aligned data was called misaligned");
        }
        Err(e) => panic!("a valid image failed to view: {e:?}"),
    }
    assert_eq!(
        model.to_image().expect("small").as_slice(),
        bytes,
        "round trip"
    );

    // Forward passes give a value or a typed error.
    let d_encoder = model.d_encoder();
    let z: Vec<f32> = (0..d_encoder).map(|i| (i as f32 * 0.37).sin()).collect();
    if let Ok(projected) = model.project(&z) {
        assert_eq!(projected.len(), model.d_out());
        let _ = model.predict(&projected);
    }
    let _ = model.loss(&z, &z);
});
