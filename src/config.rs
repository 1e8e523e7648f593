//! The head's dimensions, and the parameter layout they imply.

use crate::error::{SslError, SslResult, WORKSPACE_OVERFLOW};

/// The dimensions of a SimSiam head (the reference's `SimSiamConfig`).
///
/// ```text
/// Projector: d_encoder -> Linear + ReLU -> d_projector -> Linear -> d_out -> L2
/// Predictor: d_out     -> Linear + ReLU -> d_predictor -> Linear -> d_out -> L2
/// ```
///
/// # Examples
/// ```
/// use simsiam::SimSiamConfig;
/// let config = SimSiamConfig::default();
/// assert_eq!((config.d_encoder, config.d_projector, config.d_predictor, config.d_out), (64, 128, 64, 32));
/// assert_eq!(config.param_count()?, 16_640);
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SimSiamConfig {
    /// Backbone output dimension (input of the projector).
    pub d_encoder: usize,
    /// Projector hidden dimension.
    pub d_projector: usize,
    /// Predictor hidden dimension.
    pub d_predictor: usize,
    /// Projector output dimension = predictor input and output dimension.
    pub d_out: usize,
}

impl Default for SimSiamConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The shape of one dense layer `y = act(W·x + b)`, `W` row-major `[d_out × d_in]`,
/// stored in the flat parameters as `W` then `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerShape {
    /// Input width (columns of `W`, the fan-in).
    pub d_in: usize,
    /// Output width (rows of `W`, length of `b`).
    pub d_out: usize,
    /// Whether ReLU follows the affine map.
    pub relu: bool,
}

impl LayerShape {
    /// `d_out·d_in` (the weights), or an error when it overflows.
    pub(crate) fn weight_count(&self) -> SslResult<usize> {
        self.d_out.checked_mul(self.d_in).ok_or(OVERFLOW)
    }

    /// Weights plus bias.
    pub(crate) fn param_count(&self) -> SslResult<usize> {
        self.weight_count()?.checked_add(self.d_out).ok_or(OVERFLOW)
    }
}

const OVERFLOW: SslError = SslError::InvalidParameter {
    name: "config",
    reason: "parameter count overflows usize",
};

impl SimSiamConfig {
    /// The reference's default, `{ 64, 128, 64, 32 }`.
    pub const DEFAULT: Self = Self {
        d_encoder: 64,
        d_projector: 128,
        d_predictor: 64,
        d_out: 32,
    };

    /// Checks `d_encoder`, `d_projector`, `d_predictor`, `d_out` in that order.
    ///
    /// # Errors
    /// `InvalidParameter { name: "<field>", reason: "must be > 0" }` for the first zero.
    pub fn validate(&self) -> SslResult<()> {
        let fields = [
            ("d_encoder", self.d_encoder),
            ("d_projector", self.d_projector),
            ("d_predictor", self.d_predictor),
            ("d_out", self.d_out),
        ];
        match fields.iter().find(|(_, value)| *value == 0) {
            Some(&(name, _)) => Err(SslError::InvalidParameter {
                name,
                reason: "must be > 0",
            }),
            None => Ok(()),
        }
    }

    /// The four dense layers in parameter order: projector 1 and 2, predictor 1 and 2.
    #[must_use]
    pub const fn layers(&self) -> [LayerShape; 4] {
        [
            LayerShape {
                d_in: self.d_encoder,
                d_out: self.d_projector,
                relu: true,
            },
            LayerShape {
                d_in: self.d_projector,
                d_out: self.d_out,
                relu: false,
            },
            LayerShape {
                d_in: self.d_out,
                d_out: self.d_predictor,
                relu: true,
            },
            LayerShape {
                d_in: self.d_predictor,
                d_out: self.d_out,
                relu: false,
            },
        ]
    }

    /// How many `f32` the flat parameters hold: for each layer, its weights then its bias.
    ///
    /// The layout, in order: `proj_w1 [d_projector × d_encoder]`, `proj_b1 [d_projector]`,
    /// `proj_w2 [d_out × d_projector]`, `proj_b2 [d_out]`, `pred_w1 [d_predictor × d_out]`,
    /// `pred_b1 [d_predictor]`, `pred_w2 [d_out × d_predictor]`, `pred_b2 [d_out]`, all
    /// row-major.
    ///
    /// # Errors
    /// As [`validate`](Self::validate), then `InvalidParameter { name: "config", .. }`
    /// when the count overflows `usize`.
    pub fn param_count(&self) -> SslResult<usize> {
        self.validate()?;
        self.layers().iter().try_fold(0_usize, |total, layer| {
            total.checked_add(layer.param_count()?).ok_or(OVERFLOW)
        })
    }

    /// How many `f32` the `workspace` of
    /// [`SimSiamHead::loss_with_workspace`](crate::SimSiamHead::loss_with_workspace)
    /// must hold: `4·d_out` (both projections and both predictions).
    ///
    /// # Errors
    /// As [`validate`](Self::validate); `InvalidParameter { name: "d_out", reason:
    /// "workspace length overflows usize" }` when `4·d_out` overflows.
    pub fn loss_workspace_len(&self) -> SslResult<usize> {
        self.validate()?;
        self.d_out.checked_mul(4).ok_or(WORKSPACE_OVERFLOW)
    }

    /// How many `f32` the `workspace` of
    /// [`SimSiamHead::loss_batch_with_workspace`](crate::SimSiamHead::loss_batch_with_workspace)
    /// must hold for `n` pairs: `4·d_out·min(n, 8)` (both projections and both
    /// predictions of the eight pairs processed together). `0` for `n = 0`; equal to
    /// [`loss_workspace_len`](Self::loss_workspace_len) for `n = 1`.
    ///
    /// # Errors
    /// As [`loss_workspace_len`](Self::loss_workspace_len), whose overflow error it
    /// also gives when the product overflows.
    ///
    /// # Examples
    /// ```
    /// use simsiam::SimSiamConfig;
    /// let config = SimSiamConfig::default();
    /// assert_eq!(config.batch_loss_workspace_len(1)?, config.loss_workspace_len()?);
    /// assert_eq!(config.batch_loss_workspace_len(64)?, 4 * 32 * 8);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn batch_loss_workspace_len(&self, n: usize) -> SslResult<usize> {
        self.loss_workspace_len()?
            .checked_mul(n.min(crate::batch::BATCH_PAIRS))
            .ok_or(WORKSPACE_OVERFLOW)
    }
}
