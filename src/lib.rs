//! The SimSiam projector + predictor head (Chen & He, CVPR 2021) as a `#![no_std]`,
//! allocation-free, panic-free SIMD kernel library.
//!
//! It reproduces `SimSiam` of `oxicuda-ssl` 0.5.5 — same API (feature `alloc`), same
//! weights for the same seed, same outputs — on a core that needs no allocator and can
//! keep its weights in flash, and runs trained heads (the official SimSiam head and
//! lightly's, with BatchNorm) from a parameter image.
//!
//! - [`kernels`]: dot, matrix–vector with fused bias/ReLU, L2 normalisation, each as a
//!   SIMD twin ([`kernels::simd`]) and a scalar twin ([`kernels::scalar`]).
//! - [`layers`]: the layer kinds (Linear, BatchNorm1d, ReLU; Conv1d and the pools with
//!   feature `conv`), each with its forward, backward and sizes.
//! - [`model`]: what a network is made of ([`model::Architecture`]: an optional
//!   [`model::Encoder`] of layer kinds, then stacks of dense layers with bias, BatchNorm
//!   and ReLU), and [`SimSiamHead`], the model over any parameter
//!   storage (`&'static [f32]`, `heapless::Vec`, `Vec`), writing into caller buffers,
//!   on the kernel twin given as its type parameter.
//! - [`image`]: the parameter image, a versioned binary format validated without
//!   allocation and run in place from flash.
//! - [`augment`]: two augmented views of a sensor window (random rotation,
//!   standardisation, scale, jitter) from a seeded [`augment::Xoshiro128PlusPlus`],
//!   the same bits on the host and the device.
//! - [`fewshot`]: a few-shot classifier for any device (nearest class mean on
//!   standardised features, one labelled feature at a time, caller's storage);
//! - [`stream`]: a streaming window buffer (samples in, overlapping and optionally
//!   averaged-down windows out, caller's storage). With an encoder,
//!   [`SimSiamHead::encode_batch_into`] encodes a batch of windows.
//! - `SimSiam` (feature `alloc`): the reference's `Vec`-returning API over the head.
//!
//! # Never panics
//! No public function panics on any input: every bad input is a typed [`SslError`].
//! Shapes are validated with checked arithmetic; inner loops use iterators and
//! `as_chunks`, not indexing.
//!
//! # Examples
//! ```
//! use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, init_params};
//! let config = SimSiamConfig { d_encoder: 8, d_projector: 16, d_predictor: 8, d_out: 4 };
//! let mut params = [0.0_f32; 8 * 16 + 16 + 16 * 4 + 4 + 4 * 8 + 8 + 8 * 4 + 4];
//! init_params(&config, &mut LcgRng::new(1), &mut params)?;
//! let head = SimSiamHead::from_params(config, &params[..])?;
//! let mut z = [0.0_f32; 4];
//! head.project_into(&[1.0; 8], &mut z, &mut [])?; // 2-layer stacks need no workspace
//! let norm: f32 = z.iter().map(|x| x * x).sum::<f32>().sqrt();
//! assert!((norm - 1.0).abs() < 1e-6);
//! # Ok::<(), simsiam::SslError>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod augment;
mod error;
pub mod fewshot;
pub mod image;
pub mod kernels;
pub mod layers;
pub mod model;
mod rng;
#[cfg(feature = "alloc")]
mod simsiam;
pub mod stream;
pub mod train;

pub use error::{ImageError, SslError, SslResult};
/// The fixed-capacity collections of the public API (`SimSiamHead::from_seed` owns its
/// parameters in a `heapless::Vec`), re-exported so users need not match its version.
pub use heapless;
pub use kernels::Backend;
pub use model::{BATCH_GROUP, HIDDEN_BLOCK, SimSiamConfig, SimSiamHead, init_params};
pub use rng::LcgRng;
#[cfg(feature = "alloc")]
pub use simsiam::SimSiam;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
