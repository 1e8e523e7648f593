//! The reference, `oxicuda-ssl` 0.5.5: its config, its weights, ulp distances.

use oxicuda_ssl::handle::LcgRng as RefRng;
use oxicuda_ssl::ssl::sim_siam::{SimSiam as RefSimSiam, SimSiamConfig as RefConfig};
use simsiam::SimSiamConfig;

/// The reference's config for ours.
#[must_use]
pub fn ref_config(c: &SimSiamConfig) -> RefConfig {
    RefConfig {
        d_encoder: c.d_encoder,
        d_projector: c.d_projector,
        d_predictor: c.d_predictor,
        d_out: c.d_out,
    }
}

/// The reference's weights in our flat layout. The reference keeps them private; its
/// derived `Debug` prints them with round-trip precision, so parsing it gives them back
/// bit for bit.
#[must_use]
pub fn reference_params(model: &RefSimSiam) -> Vec<f32> {
    let text = format!("{model:?}");
    let mut params = Vec::new();
    for field in [
        "proj_w1", "proj_b1", "proj_w2", "proj_b2", "pred_w1", "pred_b1", "pred_w2", "pred_b2",
    ] {
        let start = text.find(&format!("{field}: [")).expect("field in Debug") + field.len() + 3;
        let end = start + text[start..].find(']').expect("closing bracket");
        params.extend(
            text[start..end]
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<f32>().expect("float")),
        );
    }
    params
}

/// The reference's weights for `seed` without printing them: its `kaiming_init` (a
/// private function) rebuilt from its public RNG, `fill_normal` then `*= sqrt(2/fan_in)`
/// per layer in the same order, zero biases. Much faster than [`reference_params`] at
/// the paper's size; `tests/parity.rs` checks the two agree bit for bit.
#[must_use]
pub fn reference_weights(c: &SimSiamConfig, seed: u64) -> Vec<f32> {
    let mut rng = RefRng::new(seed);
    let mut params = Vec::with_capacity(c.param_count().unwrap());
    for shape in simsiam::model::Architecture::reference(*c)
        .unwrap()
        .layers()
    {
        let scale = (2.0_f32 / shape.d_in as f32).sqrt();
        let mut w = vec![0.0_f32; shape.d_out * shape.d_in];
        rng.fill_normal(&mut w);
        w.iter_mut().for_each(|v| *v *= scale);
        params.extend_from_slice(&w);
        params.extend(std::iter::repeat_n(0.0_f32, shape.d_out));
    }
    params
}

/// Distance in ulps between two finite floats (±0 are the same point).
#[must_use]
pub fn ulps(a: f32, b: f32) -> u32 {
    let key = |x: f32| {
        let bits = x.to_bits() as i32;
        if bits < 0 { i32::MIN - bits } else { bits }
    };
    key(a).abs_diff(key(b))
}

/// `a` and `b` are the same float, bit for bit, except that `0.0 == -0.0`.
#[must_use]
pub fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a == 0.0 && b == 0.0)
}
