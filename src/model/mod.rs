//! The model: what a head is made of ([`Architecture`], [`Stack`], [`Layer`],
//! [`BatchNorm`]), the reference's dimensions ([`SimSiamConfig`]), and the head that runs
//! it over any parameter storage ([`SimSiamHead`]).
//!
//! - `architecture`: the layer stacks and their validation;
//! - `encoder`: the optional [`Encoder`] in front of the projector, a list of
//!   [layer kinds](crate::layers) walked forward (eval and training) and back;
//! - `presets`: the sensor recipe's networks ([`HarDense`], [`HarConv`]) and PyTorch's
//!   default initialisation ([`Architecture::init_params`]);
//! - `layout`: where each parameter sits in the flat slice, computed once per head;
//! - `forward`: one input or two views through a stack (fused layer pairs, hidden
//!   blocks on the stack);
//! - `batch`: groups of sixteen inputs through a stack, one per SIMD lane;
//! - `head`: [`SimSiamHead`], its checks and its calls.

mod architecture;
pub(crate) mod batch;
mod config;
pub(crate) mod encoder;
mod forward;
pub(crate) mod head;
pub(crate) mod layout;
mod presets;
pub(crate) mod sizes;

pub use architecture::{Architecture, BATCH_NORM_EPS, BatchNorm, Layer, MAX_STACK_LAYERS, Stack};
pub use config::SimSiamConfig;
pub use encoder::{Encoder, MAX_ENCODER_LAYERS};
pub use forward::HIDDEN_BLOCK;
pub use head::{COSINE_EPS, SimSiamHead, init_params};
pub use layout::{MAX_LAYERS, StackName, Tensor};
pub use presets::{HarConv, HarDense};
pub use sizes::BATCH_GROUP;
