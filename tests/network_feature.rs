//! The encoder's paths need the crate feature `encoder`: without it a network with an
//! encoder is refused with a typed error wherever it is built or checked (so a head
//! alone links none of the encoder's code, and nothing silently ignores an encoder).

use simsiam::layers::{LayerKind, Shape};
use simsiam::model::{Architecture, Encoder};
use simsiam::{SimSiamHead, SslError};

#[test]
fn an_encoder_is_refused_exactly_when_the_feature_is_off() {
    let head = Architecture::official(6, 4, 2).unwrap();
    let encoder = Encoder::new(Shape::sequence(2, 3), &[LayerKind::Relu]).unwrap();
    let result = head.with_encoder(encoder);
    if cfg!(feature = "encoder") {
        assert_eq!(result.unwrap().d_input(), 6);
        return;
    }
    let refused = SslError::InvalidParameter {
        name: "encoder",
        reason: "a network with an encoder needs the crate feature `encoder`",
    };
    assert_eq!(result.unwrap_err(), refused);
    // Set through the public field: every check refuses it too.
    let mut network = head;
    network.encoder = Some(encoder);
    assert_eq!(network.validate(), Err(refused));
    assert_eq!(network.workspace_len(1), Err(refused));
    let params = vec![0.0_f32; head.param_count().unwrap()];
    assert_eq!(SimSiamHead::new(network, &params[..]).unwrap_err(), refused);
}
