//! The head's image methods: built from an image, written as one.

use super::{Image, ImageExtras, image_len, image_len_with, write_image, write_image_with};
use crate::error::SslResult;
use crate::kernels::Kernels;
use crate::model::SimSiamHead;

impl<'a> SimSiamHead<&'a [f32]> {
    /// The network a parameter image describes, its parameters viewed in place (no
    /// copy): for an image in flash, `include_bytes!` wrapped in
    /// [`AlignedImage`](super::AlignedImage). Validation is [`Image::parse`]: O(layers)
    /// plus one pass over the data. The BatchNorm counters come with it; the input
    /// contract and the training section stay in the image ([`Image::input_contract`],
    /// [`Image::training`]).
    ///
    /// # Errors
    /// [`Image::parse`]'s errors; `Image(Misaligned)` when the parameters are not 4-byte
    /// aligned or the target is big-endian (copy them then, e.g. with
    /// `SimSiam::from_image` under feature `alloc`).
    pub fn from_image(bytes: &'a [u8]) -> SslResult<Self> {
        Self::from_parsed(Image::parse(bytes)?)
    }

    /// [`from_image`](Self::from_image) over bytes validated before and unchanged since:
    /// [`Image::parse_unverified`], O(layers), no pass over the data (the C API rebuilds
    /// an image model's head this way at every call).
    ///
    /// # Errors
    /// As [`from_image`](Self::from_image), except `ChecksumMismatch` and `NonFinite`.
    pub fn from_checked_image(bytes: &'a [u8]) -> SslResult<Self> {
        Self::from_parsed(Image::parse_unverified(bytes)?)
    }

    fn from_parsed(image: Image<'a>) -> SslResult<Self> {
        let mut head = Self::from_checked_params(*image.architecture(), image.params()?)?;
        head.set_batches_tracked(*image.batches_tracked());
        head.set_encoder_batches_tracked(*image.encoder_batches_tracked());
        Ok(head)
    }
}

impl<S: AsRef<[f32]>, K: Kernels> SimSiamHead<S, K> {
    /// What an image of this network records besides its parameters: its BatchNorm
    /// counters (no input contract, no training section: add them with struct update
    /// syntax, `ImageExtras { input: Some(..), ..head.image_extras() }`).
    #[must_use]
    pub fn image_extras(&self) -> ImageExtras<'_> {
        ImageExtras {
            batches_tracked: self.batches_tracked(),
            encoder_batches_tracked: self.encoder_batches_tracked(),
            ..ImageExtras::default()
        }
    }

    /// How many bytes [`write_image`](Self::write_image) writes.
    ///
    /// # Errors
    /// As [`crate::image::image_len`].
    pub fn image_len(&self) -> SslResult<usize> {
        if self.architecture().encoder.is_some() {
            image_len_with(self.architecture(), &self.image_extras())
        } else {
            image_len(self.architecture())
        }
    }

    /// Writes the network as a parameter image into the start of `out` and returns its
    /// length: version 1 for a head alone, version 2 (with the encoder's counters) for a
    /// network with an encoder, as [`crate::image::write_image`].
    ///
    /// # Errors
    /// As [`crate::image::write_image`].
    pub fn write_image(&self, out: &mut [u8]) -> SslResult<usize> {
        if self.architecture().encoder.is_some() {
            write_image_with(
                self.architecture(),
                self.params(),
                &self.image_extras(),
                out,
            )
        } else {
            write_image(
                self.architecture(),
                self.params(),
                self.batches_tracked(),
                out,
            )
        }
    }
}
