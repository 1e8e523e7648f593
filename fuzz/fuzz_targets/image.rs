//! The parameter image parser on arbitrary bytes (trained-heads issue; version 2 in
//! issue 20): every input is either a valid image or a typed `SslError::Image` / shape
//! error, never a panic; and a valid one behaves the same everywhere:
//! - `SimSiamHead::from_image` views it in place when the data is aligned (else it is
//!   `Image(Misaligned)`), `SimSiam::from_image` copies it at any alignment, and both
//!   hold the parser's architecture, parameters and BatchNorm counters bit for bit;
//! - `parse_unverified` gives the same image;
//! - writing it back gives the input bytes exactly: `SimSiam::to_image` for version 1,
//!   `write_image_with` with everything the image holds (counters, input contract,
//!   training section and momentum) for version 2, and `SimSiam::to_image_with` too;
//! - the input contract's standardisation and the momentum copy out in full; the
//!   training state validates and resumes an optimiser;
//! - a forward pass (the encoder's too) and the loss give a value or a typed error.
//!
//! The fuzz crate builds simsiam with feature `conv`, so every layer kind is reachable.
//! The input is placed at an offset of 0–3 bytes inside a 64-byte-aligned buffer (the
//! first input byte chooses it), so both aligned and misaligned data are exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simsiam::image::{
    AlignedImage, Image, ImageExtras, TrainingSection, image_len_with, write_image_with,
};
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
    assert_eq!(Image::parse_unverified(bytes), Ok(image));
    let model = copied.expect("a valid image copies");
    assert_eq!(model.architecture(), image.architecture());
    let mut params = vec![0.0; image.param_count()];
    image.copy_params(&mut params).expect("sized");
    let same = |a: &[f32], b: &[f32]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    };
    assert!(
        same(model.head().params(), &params),
        "copy is not bit for bit"
    );
    assert_eq!(model.head().batches_tracked(), image.batches_tracked());
    assert_eq!(
        model.head().encoder_batches_tracked(),
        image.encoder_batches_tracked()
    );
    match viewed {
        Ok(head) => {
            assert!(same(head.params(), &params), "view is not bit for bit");
            assert_eq!(
                head.params().as_ptr().cast::<u8>(),
                bytes[bytes.len() - image_data_len(&image)..].as_ptr()
            );
        }
        Err(SslError::Image(ImageError::Misaligned)) => {
            assert_ne!(shift, 0, "aligned data was called misaligned");
        }
        Err(e) => panic!("a valid image failed to view: {e:?}"),
    }

    // What version 2 adds.
    let mut momentum = vec![
        0.0;
        if image.training().is_some() {
            params.len()
        } else {
            0
        }
    ];
    match image.training() {
        Some(state) => {
            image.copy_momentum(&mut momentum).expect("sized");
            if let Ok(view) = image.momentum() {
                assert!(same(view, &momentum), "momentum view is not the copy");
            }
            assert_eq!(state.validate(), Ok(()));
            let sgd = state
                .resume_sgd(image.architecture(), momentum.clone())
                .expect("a valid training section resumes");
            assert_eq!((sgd.steps(), sgd.lr()), (state.steps, state.lr));
        }
        None => assert!(image.copy_momentum(&mut []).is_err()),
    }
    if let Some(standardization) = image.input_contract().and_then(|c| c.standardization) {
        let channels = standardization.channels();
        let (mut mean, mut std) = (vec![0.0; channels], vec![0.0; channels]);
        standardization
            .copy_into(&mut mean, &mut std)
            .expect("sized");
        assert!(std.iter().all(|s| *s > 0.0) && mean.iter().all(|m| m.is_finite()));
    }

    // Written back, the same bytes.
    if image.version() == 1 {
        assert_eq!(
            model.to_image().expect("small").as_slice(),
            bytes,
            "round trip"
        );
    } else {
        let extras = ImageExtras {
            batches_tracked: image.batches_tracked(),
            encoder_batches_tracked: image.encoder_batches_tracked(),
            input: image.input_contract(),
            training: image.training().map(|state| TrainingSection {
                state,
                momentum: &momentum,
            }),
        };
        let mut again = vec![0; image_len_with(image.architecture(), &extras).expect("valid")];
        write_image_with(image.architecture(), &params, &extras, &mut again).expect("valid");
        assert_eq!(again, bytes, "round trip (version 2)");
        let copied = model
            .to_image_with(extras.input, extras.training)
            .expect("valid");
        assert_eq!(copied, bytes, "round trip (SimSiam::to_image_with)");
    }

    // Forward passes give a value or a typed error.
    let x: Vec<f32> = (0..model.d_input())
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    if image.architecture().encoder.is_some()
        && let Ok(feature) = model.encode(&x)
    {
        assert_eq!(feature.len(), model.d_encoder());
    }
    if let Ok(projected) = model.project(&x) {
        assert_eq!(projected.len(), model.d_out());
        let _ = model.predict(&projected);
    }
    let _ = model.loss(&x, &x);
});

/// Bytes of the image's data: the parameters, and the momentum after them.
fn image_data_len(image: &Image<'_>) -> usize {
    let floats = image.param_count() * if image.training().is_some() { 2 } else { 1 };
    4 * floats
}
