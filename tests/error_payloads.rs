//! Each error cause has one error with a true payload, including on paths that only a
//! broken invariant or a pathological storage type can reach.

use simsiam::{LcgRng, SimSiamConfig, SimSiamHead, SslError, init_params};

const WORKSPACE_OVERFLOW: SslError = SslError::InvalidParameter {
    name: "d_out",
    reason: "workspace length overflows usize",
};

fn config(d_out: usize) -> SimSiamConfig {
    SimSiamConfig {
        d_encoder: 1,
        d_projector: 1,
        d_predictor: 1,
        d_out,
    }
}

#[test]
fn workspace_overflow_is_not_a_parameter_count_overflow() {
    assert_eq!(
        config(usize::MAX / 2).loss_workspace_len(),
        Err(WORKSPACE_OVERFLOW)
    );
    // `4·d_out` fits, eight pairs of it do not.
    let wide = config(usize::MAX / 16);
    assert_eq!(wide.loss_workspace_len(), Ok(usize::MAX / 16 * 4));
    assert_eq!(wide.batch_loss_workspace_len(1), Ok(usize::MAX / 16 * 4));
    assert_eq!(wide.batch_loss_workspace_len(8), Err(WORKSPACE_OVERFLOW));
    // A parameter count that overflows is the other cause, with its own words.
    let wider = SimSiamConfig {
        d_predictor: 17,
        ..wide
    };
    assert_eq!(wider.loss_workspace_len(), Ok(usize::MAX / 16 * 4));
    assert_eq!(
        wider.param_count(),
        Err(SslError::InvalidParameter {
            name: "config",
            reason: "parameter count overflows usize",
        })
    );
}

#[test]
fn init_params_reports_the_lengths() {
    let c = SimSiamConfig::default();
    let mut params = vec![0.0; 100];
    assert_eq!(
        init_params(&c, &mut LcgRng::new(1), &mut params),
        Err(SslError::DimensionMismatch {
            expected: 16_640,
            got: 100
        })
    );
}

/// Storage whose mutable view is one float shorter than its shared view: a contract
/// breach `SimSiamHead` cannot rule out at construction.
#[derive(Clone)]
struct ShrinksWhenMutated(Vec<f32>);

impl AsRef<[f32]> for ShrinksWhenMutated {
    fn as_ref(&self) -> &[f32] {
        &self.0
    }
}

impl AsMut<[f32]> for ShrinksWhenMutated {
    fn as_mut(&mut self) -> &mut [f32] {
        let len = self.0.len() - 1;
        &mut self.0[..len]
    }
}

#[test]
fn identity_predictor_on_storage_that_changed_length() {
    let c = SimSiamConfig {
        d_encoder: 3,
        d_projector: 5,
        d_predictor: 4,
        d_out: 2,
    };
    let count = c.param_count().unwrap();
    let mut params = vec![0.0; count];
    init_params(&c, &mut LcgRng::new(2), &mut params).unwrap();
    let mut head = SimSiamHead::from_params(c, ShrinksWhenMutated(params)).unwrap();
    assert_eq!(
        head.set_identity_predictor(),
        Err(SslError::DimensionMismatch {
            expected: count,
            got: count - 1
        })
    );
}
