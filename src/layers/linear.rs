//! `nn.Linear`: `y = W·x + b` for each sample, `W` row-major `[d_out, d_in]`.
//!
//! The input is the sample flattened (`C·T = d_in` floats, channel-major: PyTorch's
//! `nn.Flatten()` before the layer); the output is a vector `[d_out, 1]`.
//!
//! - Forward (eval and training are the same): every output starts at its bias (or 0),
//!   then adds `W[i, p]·x[p]` for `p` ascending. Batches of at least [`GEMM_SAMPLES`]
//!   on x86 with FMA (see [`GEMM_FORWARD`]) take one product `Y += X·Wᵀ`
//!   ([`Kernels::gemm_nt_add`]: its register blocks broadcast inputs against lanes of
//!   outputs, no horizontal sums); smaller batches, and other targets, take the
//!   dot-product kernels eight samples per pass over `W`
//!   (`matmat_add`, as the training step's `dense_forward`). On the
//!   [`Scalar`](crate::kernels::Scalar) twin both are the reference's order, bit for bit
//!   the training step's; on [`Simd`](crate::kernels::Simd) each is within
//!   [`sum_error_bound`](crate::kernels::sum_error_bound)`(d_in + 1, |b| + Σ|W·x|)` of
//!   it.
//! - Backward: `dW += dYᵀ·X` ([`Kernels::gemm_tn_add`], samples ascending), `db += Σ dY`
//!   (samples ascending), `dX = dY·W` ([`Kernels::gemm_nn_add`], overwritten): the
//!   training step's `layer_backward`, in its order. Nothing saved: the backward reads
//!   the forward's input.
//! - Memory: no scratch, no stack beyond the kernels'.

use super::{Bias, ParamTensors, Shape, check_batch, check_len, nonzero};
use crate::error::SslResult;
use crate::kernels::{Kernels, VECTOR_UNIT, matmat_add, pieces, pieces_mut};

/// Samples one pass over the weights serves in the forward (`matmat_add`'s group, as in
/// the training step).
const GROUP: usize = 8;

/// The least batch whose forward is one `X·Wᵀ` product ([`Kernels::gemm_nt_add`]) on a
/// target with a vector unit: the product copies `W` (transposed) once per call, which
/// a group of eight samples (the rows of the dot-product kernels) already repays.
pub const GEMM_SAMPLES: usize = GROUP;

/// Whether batches of [`GEMM_SAMPLES`] or more run their forward as one `X·Wᵀ` product:
/// on x86 with FMA, where it measured faster (BENCHMARKS.md, "What limits one training
/// step"); a plain x86-64 build (SSE2, no FMA) measured it slower than the dot-product
/// kernels, and other targets were not measured, so they keep those.
pub const GEMM_FORWARD: bool = VECTOR_UNIT
    && cfg!(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "fma"
    ));

/// A dense layer, `nn.Linear(d_in, d_out, bias)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Linear {
    /// Input width (the flattened sample's `C·T`).
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
    /// The bias, if any, and whether it trains.
    pub bias: Bias,
}

/// A [`Linear`]'s parameters, cut from the layer's flat slice.
struct Params<'a> {
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
}

impl Linear {
    /// `[d_out, 1]` for an input of `d_in` floats (any `[C, T]` with `C·T = d_in`).
    ///
    /// # Errors
    /// `InvalidParameter` (`"d_in"`, `"d_out"`, `"shape"`) for a zero width or an
    /// overflowing size; `DimensionMismatch { expected: d_in, got: C·T }` otherwise.
    pub fn output_shape(&self, input: Shape) -> SslResult<Shape> {
        nonzero(self.d_in, "d_in")?;
        nonzero(self.d_out, "d_out")?;
        check_len(self.d_in, input.size()?)?;
        Ok(Shape::vector(self.d_out))
    }

    /// `weight [d_out, d_in]`, then `bias [d_out]` when present (trainable unless
    /// frozen).
    #[must_use]
    pub fn params(&self) -> ParamTensors {
        let mut tensors = ParamTensors::NONE;
        tensors.push("weight", &[self.d_out, self.d_in], true);
        if self.bias.present() {
            tensors.push("bias", &[self.d_out], self.bias == Bias::Trainable);
        }
        tensors
    }

    /// Checks `params` and the batch: returns the parameters.
    fn check<'a>(&self, params: &'a [f32], n: usize, x_len: usize) -> SslResult<Params<'a>> {
        self.output_shape(Shape::vector(self.d_in))?;
        let weight_len = self.d_out.checked_mul(self.d_in).ok_or(super::OVERFLOW)?;
        let bias_len = if self.bias.present() { self.d_out } else { 0 };
        check_len(
            weight_len.checked_add(bias_len).ok_or(super::OVERFLOW)?,
            params.len(),
        )?;
        check_batch(Shape::vector(self.d_in), n, x_len)?;
        let (weight, bias) = params.split_at_checked(weight_len).unwrap_or_default();
        Ok(Params {
            weight,
            bias: self.bias.present().then_some(bias),
        })
    }

    /// `y = W·x + b` for `n` samples (`x` is `n × d_in`, `y` is `n × d_out`, overwritten).
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape); `DimensionMismatch` when `params` is not
    /// [`params`](Self::params)'s total length, `x` not `n·d_in` or `y` not `n·d_out`;
    /// `InvalidParameter` (`"n"`) for `n = 0`. Nothing is written on error.
    ///
    /// # Examples
    /// ```
    /// use simsiam::kernels::Scalar;
    /// use simsiam::layers::{Bias, linear::Linear};
    /// let layer = Linear { d_in: 2, d_out: 1, bias: Bias::Trainable };
    /// let params = [1.0, 2.0, 0.5]; // weight [[1, 2]], bias [0.5]
    /// let mut y = [0.0; 2];
    /// layer.forward_eval::<Scalar>(&params, 2, &[1.0, 1.0, 3.0, -1.0], &mut y)?;
    /// assert_eq!(y, [3.5, 1.5]);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn forward_eval<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        x: &[f32],
        y: &mut [f32],
    ) -> SslResult<()> {
        let p = self.check(params, n, x.len())?;
        check_batch(Shape::vector(self.d_out), n, y.len())?;
        forward_unchecked::<K>(&p, self.d_in, self.d_out, x, y);
        Ok(())
    }

    /// The training forward: the same as [`forward_eval`](Self::forward_eval) (a dense
    /// layer saves nothing; its backward reads `x`).
    ///
    /// # Errors
    /// As [`forward_eval`](Self::forward_eval).
    pub fn forward_train<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        x: &[f32],
        y: &mut [f32],
    ) -> SslResult<()> {
        self.forward_eval::<K>(params, n, x, y)
    }

    /// The backward pass for `n` samples: `grads` (the layer's parameter layout) gets
    /// `dW += dYᵀ·X` and, for a trainable bias, `db += Σ_samples dY`; `dx`, when given,
    /// is overwritten with `dY·W` (`n × d_in`).
    ///
    /// # Errors
    /// As [`forward_eval`](Self::forward_eval), with `dy` `n·d_out`, `grads` as long as
    /// `params` and `dx` `n·d_in`. Nothing is written on error.
    ///
    /// # Examples
    /// ```
    /// use simsiam::kernels::Scalar;
    /// use simsiam::layers::{Bias, linear::Linear};
    /// let layer = Linear { d_in: 2, d_out: 1, bias: Bias::Trainable };
    /// let params = [1.0, 2.0, 0.5];
    /// let mut grads = [0.0; 3];
    /// let mut dx = [0.0; 2];
    /// layer.backward::<Scalar>(&params, 1, &[3.0, -1.0], &[2.0], Some(&mut dx), &mut grads)?;
    /// assert_eq!((grads, dx), ([6.0, -2.0, 2.0], [2.0, 4.0]));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    #[allow(
        clippy::too_many_arguments,
        reason = "parameters, batch, input, output gradient, input gradient, parameter gradients"
    )]
    pub fn backward<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        x: &[f32],
        dy: &[f32],
        dx: Option<&mut [f32]>,
        grads: &mut [f32],
    ) -> SslResult<()> {
        let p = self.check(params, n, x.len())?;
        check_batch(Shape::vector(self.d_out), n, dy.len())?;
        check_len(params.len(), grads.len())?;
        if let Some(dx) = &dx {
            check_batch(Shape::vector(self.d_in), n, dx.len())?;
        }
        let (d_in, d_out) = (self.d_in, self.d_out);
        let (d_weight, d_bias) = grads
            .split_at_mut_checked(p.weight.len())
            .unwrap_or_default();
        if self.bias == Bias::Trainable {
            for g_row in pieces(dy, d_out) {
                d_bias.iter_mut().zip(g_row).for_each(|(d, g)| *d += *g);
            }
        }
        // dW += dYᵀ·X: [d_out × n]·[n × d_in].
        K::gemm_tn_add(d_out, d_in, n, dy, d_out, x, d_in, d_weight, d_in);
        if let Some(dx) = dx {
            dx.fill(0.0);
            // dX = dY·W: [n × d_out]·[d_out × d_in].
            K::gemm_nn_add(n, d_in, d_out, dy, d_out, p.weight, d_in, dx, d_in);
        }
        Ok(())
    }
}

/// `y` rows `= b` (or 0), then `+= W·x` for every sample, the weights read once per
/// [`GROUP`] samples. Shapes checked by the caller.
fn forward_unchecked<K: Kernels>(
    p: &Params<'_>,
    d_in: usize,
    d_out: usize,
    x: &[f32],
    y: &mut [f32],
) {
    for row in pieces_mut(y, d_out) {
        match p.bias.and_then(|b| b.get(..row.len())) {
            Some(bias) => row.iter_mut().zip(bias).for_each(|(o, b)| *o = *b),
            None => row.fill(0.0),
        }
    }
    let n = y.len().checked_div(d_out).unwrap_or(0);
    if GEMM_FORWARD && n >= GEMM_SAMPLES {
        // Y += X·Wᵀ: [n × d_in]·[d_in × d_out], `W` stored [d_out × d_in].
        K::gemm_nt_add(n, d_out, d_in, x, d_in, p.weight, d_in, y, d_out);
        return;
    }
    let mut inputs = pieces(x, d_in);
    let mut outputs = pieces_mut(y, d_out);
    loop {
        let mut xs: [&[f32]; GROUP] = [&[]; GROUP];
        let mut ys: [&mut [f32]; GROUP] = Default::default();
        let mut count = 0_usize;
        // The slots first: `zip` pulls from its first iterator first, and an input
        // pulled when the slots are full would be lost.
        for ((x_slot, y_slot), (x, y)) in xs
            .iter_mut()
            .zip(ys.iter_mut())
            .zip(inputs.by_ref().zip(outputs.by_ref()))
        {
            *x_slot = x;
            *y_slot = y;
            count = count.saturating_add(1);
        }
        if count == 0 {
            break;
        }
        let xs = xs.get(..count).unwrap_or_default();
        let ys = ys.get_mut(..count).unwrap_or_default();
        matmat_add::<K>(p.weight, d_in, 0, xs, ys);
        if count < GROUP {
            break;
        }
    }
}
