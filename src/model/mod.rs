//! The model: what a head is made of ([`Architecture`], [`Stack`], [`Layer`],
//! [`BatchNorm`]) and where each parameter sits in the flat layout.

mod architecture;

pub use architecture::{Architecture, BATCH_NORM_EPS, BatchNorm, Layer, MAX_STACK_LAYERS, Stack};
