//! The reference's configuration: the dimensions of its 2-layer head.

use crate::error::{SslError, SslResult, WORKSPACE_OVERFLOW};

/// The dimensions of the reference's head (`oxicuda-ssl`'s `SimSiamConfig`).
///
/// ```text
/// Projector: d_encoder -> Linear + ReLU -> d_projector -> Linear -> d_out -> L2
/// Predictor: d_out     -> Linear + ReLU -> d_predictor -> Linear -> d_out -> L2
/// ```
///
/// This is exactly the reference's struct (four public fields, built with a struct
/// literal), so it will not gain fields: other heads are described by
/// [`Architecture`](crate::model::Architecture), which can grow. Every size is a
/// `const fn`, so firmware can size its buffers at compile time.
///
/// # Examples
/// ```
/// use simsiam::SimSiamConfig;
/// const CONFIG: SimSiamConfig = SimSiamConfig::DEFAULT;
/// const PARAMS: usize = match CONFIG.param_count() {
///     Ok(count) => count,
///     Err(_) => panic!("invalid config"),
/// };
/// static WEIGHTS: [f32; PARAMS] = [0.0; PARAMS];
/// assert_eq!(WEIGHTS.len(), 16_640);
/// assert_eq!(CONFIG.loss_workspace_len(), Ok(4 * 32));
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

const OVERFLOW: SslError = SslError::InvalidParameter {
    name: "config",
    reason: "parameter count overflows usize",
};

/// `a·b + c`, or `None` on overflow.
const fn mul_add(a: usize, b: usize, c: usize) -> Option<usize> {
    match a.checked_mul(b) {
        Some(product) => product.checked_add(c),
        None => None,
    }
}

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
    pub const fn validate(&self) -> SslResult<()> {
        const fn zero(name: &'static str) -> SslResult<()> {
            Err(SslError::InvalidParameter {
                name,
                reason: "must be > 0",
            })
        }
        if self.d_encoder == 0 {
            zero("d_encoder")
        } else if self.d_projector == 0 {
            zero("d_projector")
        } else if self.d_predictor == 0 {
            zero("d_predictor")
        } else if self.d_out == 0 {
            zero("d_out")
        } else {
            Ok(())
        }
    }

    /// How many `f32` the flat parameters hold:
    /// `d_projector·(d_encoder+1) + d_out·(d_projector+1) + d_predictor·(d_out+1) +
    /// d_out·(d_predictor+1)`.
    ///
    /// The layout, in order: `proj_w1 [d_projector × d_encoder]`, `proj_b1 [d_projector]`,
    /// `proj_w2 [d_out × d_projector]`, `proj_b2 [d_out]`, `pred_w1 [d_predictor × d_out]`,
    /// `pred_b1 [d_predictor]`, `pred_w2 [d_out × d_predictor]`, `pred_b2 [d_out]`, all
    /// row-major (the layout of [`Architecture::reference`](crate::model::Architecture::reference)).
    ///
    /// # Errors
    /// As [`validate`](Self::validate), then `InvalidParameter { name: "config", .. }`
    /// when the count overflows `usize`.
    pub const fn param_count(&self) -> SslResult<usize> {
        if let Err(error) = self.validate() {
            return Err(error);
        }
        let layers = [
            (self.d_projector, self.d_encoder),
            (self.d_out, self.d_projector),
            (self.d_predictor, self.d_out),
            (self.d_out, self.d_predictor),
        ];
        let mut total = 0_usize;
        let mut i = 0;
        while i < layers.len() {
            let (rows, cols) = layers[i];
            total = match mul_add(rows, cols, rows) {
                Some(count) => match total.checked_add(count) {
                    Some(sum) => sum,
                    None => return Err(OVERFLOW),
                },
                None => return Err(OVERFLOW),
            };
            i += 1;
        }
        Ok(total)
    }

    /// How many `f32` the `workspace` of
    /// [`SimSiamHead::loss`](crate::SimSiamHead::loss) must hold for this head:
    /// `4·d_out` (both projections and both predictions).
    ///
    /// # Errors
    /// As [`validate`](Self::validate); `InvalidParameter { name: "d_out", reason:
    /// "workspace length overflows usize" }` when `4·d_out` overflows.
    pub const fn loss_workspace_len(&self) -> SslResult<usize> {
        if let Err(error) = self.validate() {
            return Err(error);
        }
        match self.d_out.checked_mul(4) {
            Some(len) => Ok(len),
            None => Err(WORKSPACE_OVERFLOW),
        }
    }

    /// How many `f32` the `workspace` of
    /// [`SimSiamHead::loss_batch_into`](crate::SimSiamHead::loss_batch_into) must hold
    /// for `n` pairs: `4·d_out·min(n, 8)` (both projections and both predictions of the
    /// eight pairs processed together), plus, from `n = 2` on, the lane blocks of
    /// groups of more than two inputs,
    /// [`Architecture::lanes_len`](crate::model::Architecture::lanes_len) of the
    /// reference's architecture (its doc gives the block sizes). `0` for `n = 0`; equal to
    /// [`loss_workspace_len`](Self::loss_workspace_len) for `n = 1`.
    ///
    /// # Errors
    /// As [`loss_workspace_len`](Self::loss_workspace_len), whose overflow error it
    /// also gives when the sum overflows.
    ///
    /// # Examples
    /// ```
    /// use simsiam::SimSiamConfig;
    /// let config = SimSiamConfig::default();
    /// assert_eq!(config.batch_loss_workspace_len(1)?, config.loss_workspace_len()?);
    /// // 14 KiB of lanes: pack 64, hidden 128, rows 32.
    /// let lanes = 16 * (64 + 128 + 32) + 15;
    /// assert_eq!(config.batch_loss_workspace_len(64)?, 4 * 32 * 8 + lanes);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub const fn batch_loss_workspace_len(&self, n: usize) -> SslResult<usize> {
        let single = match self.loss_workspace_len() {
            Ok(len) => len,
            Err(error) => return Err(error),
        };
        let pairs = if n < super::sizes::BATCH_PAIRS {
            n
        } else {
            super::sizes::BATCH_PAIRS
        };
        let lanes = if n >= 2 {
            super::sizes::lanes_len(
                max(self.d_encoder, self.d_out),
                max(self.d_projector, self.d_predictor),
                self.d_out,
            )
        } else {
            0
        };
        match single.checked_mul(pairs) {
            Some(len) => match len.checked_add(lanes) {
                Some(len) => Ok(len),
                None => Err(WORKSPACE_OVERFLOW),
            },
            None => Err(WORKSPACE_OVERFLOW),
        }
    }
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}
