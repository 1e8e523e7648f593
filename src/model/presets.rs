//! The sensor recipe's networks (`har-dense`, `har-conv`) and PyTorch's default
//! initialisation of any network.

use super::architecture::Architecture;
#[cfg(feature = "encoder")]
use super::architecture::{BatchNorm, Layer, Stack};
#[cfg(feature = "encoder")]
use super::encoder::Encoder;
use crate::error::{SslError, SslResult, check_len};
use crate::layers::LayerKind;
#[cfg(feature = "encoder")]
use crate::layers::{BatchNorm1d, Bias, Linear, Shape};
use crate::rng::LcgRng;

/// The sizes of `Architecture::har_dense` (feature `encoder`); `Default` is the recipe's (6 channels × 128
/// samples, 256, 128, projection 128, predictor 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HarDense {
    /// Input channels `C`.
    pub channels: usize,
    /// Input window length `T`.
    pub window: usize,
    /// The encoder's first width.
    pub hidden: usize,
    /// The encoder's output width (the feature).
    pub feature: usize,
    /// The projector's hidden width.
    pub projector_hidden: usize,
    /// The projection width.
    pub projection: usize,
    /// The predictor's hidden width.
    pub predictor_hidden: usize,
}

impl Default for HarDense {
    fn default() -> Self {
        Self {
            channels: 6,
            window: 128,
            hidden: 256,
            feature: 128,
            projector_hidden: 128,
            projection: 128,
            predictor_hidden: 32,
        }
    }
}

impl HarDense {
    /// The microcontroller recipe's sizes (`hapt-mcu`, issue 22): 6 channels × 32 samples
    /// (HAPT's 128-sample windows averaged over runs of 4: 12.5 Hz), encoder 192→32→32,
    /// projector 32→32→32, predictor 32→16→32: 10 784 parameters, so parameters,
    /// momentum and gradients take 129 408 bytes.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "encoder")] {
    /// use simsiam::model::{Architecture, HarDense};
    /// let network = Architecture::har_dense(&HarDense::MCU)?;
    /// assert_eq!((network.d_input(), network.d_encoder()), (192, 32));
    /// assert_eq!(network.param_count()?, 10_784);
    /// # }
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub const MCU: Self = Self {
        channels: 6,
        window: 32,
        hidden: 32,
        feature: 32,
        projector_hidden: 32,
        projection: 32,
        predictor_hidden: 16,
    };
}

/// The sizes of `Architecture::har_conv` (feature `conv`); `Default` is the recipe's
/// (6 channels × 128 samples, convolutions 32/64/128 of kernel 8, pools of 2,
/// projection 128, predictor 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HarConv {
    /// Input channels `C`.
    pub channels: usize,
    /// Input window length `T`.
    pub window: usize,
    /// The three convolutions' output channels (the last is the feature width).
    pub conv_channels: [usize; 3],
    /// The three convolutions' kernel lengths (stride 1, no padding).
    pub kernels: [usize; 3],
    /// The two max pools' kernel (= stride).
    pub pool: usize,
    /// The projector's hidden width.
    pub projector_hidden: usize,
    /// The projection width.
    pub projection: usize,
    /// The predictor's hidden width.
    pub predictor_hidden: usize,
}

impl Default for HarConv {
    fn default() -> Self {
        Self {
            channels: 6,
            window: 128,
            conv_channels: [32, 64, 128],
            kernels: [8; 3],
            pool: 2,
            projector_hidden: 128,
            projection: 128,
            predictor_hidden: 32,
        }
    }
}

#[cfg(feature = "encoder")]
const fn linear(d_in: usize, d_out: usize) -> LayerKind {
    LayerKind::Linear(Linear {
        d_in,
        d_out,
        bias: Bias::None,
    })
}

#[cfg(feature = "encoder")]
const fn batch_norm(channels: usize) -> LayerKind {
    LayerKind::BatchNorm1d(BatchNorm1d::new(channels))
}

impl Architecture {
    /// The recipe's projector and predictor after an encoder of `feature` outputs:
    /// ```text
    /// projector: Linear(feature, hidden, bias=False), BatchNorm1d(hidden), ReLU,
    ///            Linear(hidden, projection, bias=False), BatchNorm1d(projection, affine=False)
    /// predictor: Linear(projection, pred, bias=False), BatchNorm1d(pred), ReLU,
    ///            Linear(pred, projection)
    /// ```
    /// No L2 normalisation after either (the loss's cosine normalises, as for
    /// [`official`](Self::official)).
    #[cfg(feature = "encoder")]
    fn har_head(
        feature: usize,
        hidden: usize,
        projection: usize,
        predictor_hidden: usize,
    ) -> SslResult<Self> {
        Self::new(
            Stack::new(&[
                Layer::linear(feature, hidden)
                    .with_batch_norm(BatchNorm::AFFINE)
                    .with_relu(),
                Layer::linear(hidden, projection).with_batch_norm(BatchNorm::PLAIN),
            ])?,
            Stack::new(&[
                Layer::linear(projection, predictor_hidden)
                    .with_batch_norm(BatchNorm::AFFINE)
                    .with_relu(),
                Layer::linear(predictor_hidden, projection).with_bias(),
            ])?,
            false,
            false,
        )
    }

    /// The sensor recipe's dense network (`har-dense`, feature `encoder`): the input
    /// `[C, T]` flattened
    /// channel-major (`C·T` floats, `c·T + t`), then
    /// ```text
    /// encoder:   Linear(C·T, hidden, bias=False), BatchNorm1d(hidden), ReLU,
    ///            Linear(hidden, feature, bias=False), BatchNorm1d(feature), ReLU
    /// projector: Linear(feature, projector_hidden, bias=False), BatchNorm1d, ReLU,
    ///            Linear(projector_hidden, projection, bias=False),
    ///            BatchNorm1d(projection, affine=False)
    /// predictor: Linear(projection, predictor_hidden, bias=False), BatchNorm1d, ReLU,
    ///            Linear(predictor_hidden, projection)
    /// ```
    /// with no L2 normalisation after the stacks (the loss's cosine normalises).
    ///
    /// # Errors
    /// `InvalidParameter` for a zero size or an overflowing parameter count.
    ///
    /// # Examples
    /// ```
    /// use simsiam::model::{Architecture, HarDense};
    /// let network = Architecture::har_dense(&HarDense::default())?;
    /// assert_eq!((network.d_input(), network.d_encoder(), network.d_out()), (768, 128, 128));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    #[cfg(feature = "encoder")]
    pub fn har_dense(sizes: &HarDense) -> SslResult<Self> {
        let d_input = sizes
            .channels
            .checked_mul(sizes.window)
            .ok_or(crate::layers::OVERFLOW)?;
        let encoder = Encoder::new(
            Shape::sequence(sizes.channels, sizes.window),
            &[
                linear(d_input, sizes.hidden),
                batch_norm(sizes.hidden),
                LayerKind::Relu,
                linear(sizes.hidden, sizes.feature),
                batch_norm(sizes.feature),
                LayerKind::Relu,
            ],
        )?;
        Self::har_head(
            sizes.feature,
            sizes.projector_hidden,
            sizes.projection,
            sizes.predictor_hidden,
        )?
        .with_encoder(encoder)
    }

    /// The sensor recipe's convolutional network (`har-conv`, feature `conv`): the input
    /// `[C, T]` channel-major, then
    /// ```text
    /// encoder:   Conv1d(C, c1, k1, bias=False), BatchNorm1d(c1), ReLU, MaxPool1d(pool),
    ///            Conv1d(c1, c2, k2, bias=False), BatchNorm1d(c2), ReLU, MaxPool1d(pool),
    ///            Conv1d(c2, c3, k3, bias=False), BatchNorm1d(c3), ReLU,
    ///            AdaptiveMaxPool1d(1), Flatten()
    /// ```
    /// (convolutions of stride 1 without padding; BatchNorm over `N·T`), and the
    /// projector and predictor of [`har_dense`](Self::har_dense) after a feature of
    /// `c3`.
    ///
    /// # Errors
    /// `InvalidParameter` for a zero size, a window too short for the kernels and pools,
    /// or an overflowing parameter count.
    ///
    /// # Examples
    /// ```
    /// use simsiam::model::{Architecture, HarConv};
    /// let network = Architecture::har_conv(&HarConv::default())?;
    /// assert_eq!(network.encoder.map(|e| e.layers().len()), Some(12));
    /// assert_eq!((network.d_input(), network.d_encoder()), (768, 128));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    #[cfg(feature = "conv")]
    pub fn har_conv(sizes: &HarConv) -> SslResult<Self> {
        use crate::layers::{Conv1d, MaxPool1d, Padding};
        let [c1, c2, c3] = sizes.conv_channels;
        let [k1, k2, k3] = sizes.kernels;
        let conv = |c_in, c_out, kernel| {
            LayerKind::Conv1d(Conv1d {
                c_in,
                c_out,
                kernel,
                stride: 1,
                padding: Padding::Zeros(0),
                bias: Bias::None,
            })
        };
        let pool = LayerKind::MaxPool1d(MaxPool1d { kernel: sizes.pool });
        let encoder = Encoder::new(
            Shape::sequence(sizes.channels, sizes.window),
            &[
                conv(sizes.channels, c1, k1),
                batch_norm(c1),
                LayerKind::Relu,
                pool,
                conv(c1, c2, k2),
                batch_norm(c2),
                LayerKind::Relu,
                pool,
                conv(c2, c3, k3),
                batch_norm(c3),
                LayerKind::Relu,
                LayerKind::GlobalMaxPool1d,
            ],
        )?;
        Self::har_head(
            c3,
            sizes.projector_hidden,
            sizes.projection,
            sizes.predictor_hidden,
        )?
        .with_encoder(encoder)
    }

    /// Writes PyTorch's default initialisation of every layer into `params` (the flat
    /// layout, [`param_count`](Self::param_count) floats), drawing from `rng`:
    /// - `Linear` and `Conv1d` weights and biases (a frozen one too) uniform in
    ///   `±1/√fan_in`, `fan_in` the layer's `d_in` (`C_in·k` for a convolution): what
    ///   `kaiming_uniform_(a=√5)` and the bias rule of `reset_parameters` give; each draw
    ///   is `(2u − 1)·bound` with `u` [`LcgRng::next_f32`];
    /// - BatchNorm `γ = 1`, `β = 0`, `running_mean = 0`, `running_var = 1` (no draw).
    ///
    /// Draws follow the flat layout: encoder first, then projector and predictor, each
    /// layer's weight then bias, elements in order. (PyTorch's own generator differs,
    /// so the values differ from PyTorch's; the distribution is the same.)
    ///
    /// # Errors
    /// The architecture's errors; `DimensionMismatch` when `params` is not
    /// `param_count` long.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "encoder")] {
    /// use simsiam::LcgRng;
    /// use simsiam::model::{Architecture, HarDense};
    /// let sizes = HarDense { channels: 2, window: 8, hidden: 8, feature: 4,
    ///                        projector_hidden: 4, projection: 4, predictor_hidden: 2 };
    /// let network = Architecture::har_dense(&sizes)?;
    /// let mut params = vec![0.0_f32; network.param_count()?];
    /// network.init_params(&mut LcgRng::new(0), &mut params)?;
    /// let bound = 1.0 / 16.0_f32.sqrt(); // the first Linear's fan_in is 2·8
    /// assert!(params[..16 * 8].iter().all(|w| w.abs() <= bound));
    /// # }
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn init_params(&self, rng: &mut LcgRng, params: &mut [f32]) -> SslResult<()> {
        self.init_params_with(|| rng.next_f32(), params)
    }

    /// [`init_params`](Self::init_params) with the uniform draws taken from `unit`, a
    /// source of floats in `[0, 1]`: the same layout, order and distribution (each
    /// weight or bias `(2u − 1)·bound`, `u = unit()`), any generator.
    /// `init_params(rng, …)` is `init_params_with(|| rng.next_f32(), …)`.
    ///
    /// # Errors
    /// As [`init_params`](Self::init_params).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "encoder")] {
    /// use simsiam::augment::Xoshiro128PlusPlus;
    /// use simsiam::model::{Architecture, HarDense};
    /// let sizes = HarDense { channels: 2, window: 8, hidden: 8, feature: 4,
    ///                        projector_hidden: 4, projection: 4, predictor_hidden: 2 };
    /// let network = Architecture::har_dense(&sizes)?;
    /// let mut params = vec![0.0_f32; network.param_count()?];
    /// let mut rng = Xoshiro128PlusPlus::from_seed(0);
    /// // 24 random bits: a float in [0, 1).
    /// network.init_params_with(|| (rng.next_u32() >> 8) as f32 / 16_777_216.0, &mut params)?;
    /// let bound = 1.0 / 16.0_f32.sqrt(); // the first Linear's fan_in is 2·8
    /// assert!(params[..16 * 8].iter().all(|w| w.abs() <= bound));
    /// # }
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn init_params_with(
        &self,
        mut unit: impl FnMut() -> f32,
        params: &mut [f32],
    ) -> SslResult<()> {
        self.validate()?;
        let expected = self.param_count()?;
        check_len(expected, params.len())?;
        let wrong_length = SslError::DimensionMismatch {
            expected,
            got: params.len(),
        };
        for tensor in self.tensors() {
            let v = params.get_mut(tensor.range()).ok_or(wrong_length)?;
            match (tensor.kind, tensor.name) {
                (LayerKind::BatchNorm1d(_), "weight" | "running_var") => v.fill(1.0),
                (LayerKind::BatchNorm1d(_), _) => v.fill(0.0),
                _ => {
                    let bound = 1.0 / libm::sqrtf(tensor.fan_in() as f32);
                    v.iter_mut().for_each(|w| *w = (2.0 * unit() - 1.0) * bound);
                }
            }
        }
        Ok(())
    }
}
