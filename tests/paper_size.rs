//! The paper's head (Chen & He: 2048-wide projector, 512-wide predictor bottleneck):
//! `d_encoder = d_projector = d_out = 2048`, `d_predictor = 512`, 10.5 million weights.
//! It takes the wide paths that smaller heads never reach: the two-view pair path with
//! 1024-unit hidden blocks (the forward module's `stage_pair_wide`, via `loss`), and the
//! batch lanes path with its wide blocks (whole 2048-column packs and hidden blocks,
//! 256-row output blocks; via the batch calls with three inputs or more).
//!
//! # How it is checked
//! At this width a bound carried end to end through the four layers is vacuous for the
//! loss: each layer multiplies a componentwise bound by about `Σ|w·x| / |Σ w·x| ≈ √2048`.
//! So every stage is checked on the `f32` values the previous stage actually produced
//! (the loss's workspace holds the two projections, then the two predictions):
//! - projections against the `f64` oracle of the exact inputs, predictions against the
//!   oracle of the stage's own `f32` input, the loss against the oracle's loss of the
//!   `f32` projections and predictions, each within the bound `support::Bounds` derives
//!   for one evaluation (`support::ORACLE`);
//! - on the scalar twin, exact claims: the pair path equals the single calls, and the
//!   batch lanes path equals the single calls, bit for bit;
//! - on the SIMD twin, the batch loss equals its composition from `project_batch_into`,
//!   `predict_batch_into` and `simd::dot` bit for bit: each input is one lane of
//!   `Kernels::matmat_t_add`, whose sums do not depend on the other lanes;
//! - against `oxicuda-ssl` 0.5.5: the scalar twin on the reference's own weights gives
//!   the reference's loss bit for bit; on our weights (within 4 ulp of its), its
//!   projections and its predictions of our projections are within the bound for two
//!   evaluations and perturbed weights (`support::REFERENCE`), and its loss within the
//!   oracle's bound of the loss of its own projections and predictions.
//!
//! About 8 s in a debug build on two cores, 16 s of CPU (the batch calls dominate: the
//! lanes path always computes sixteen lanes).

mod support;

use std::sync::OnceLock;

use oxicuda_ssl::handle::LcgRng as RefRng;
use oxicuda_ssl::ssl::sim_siam::SimSiam as RefSimSiam;
use simsiam::kernels::{Scalar, Simd, simd};
use simsiam::{Backend, LcgRng, SimSiamConfig, SimSiamHead, init_params};
use support::reference::{ref_config, reference_weights, same, ulps};
use support::twin::twin;
use support::{Book, Bounded, Bounds, MAX_VACUOUS, ORACLE, REFERENCE, layers};

const PAPER: SimSiamConfig = SimSiamConfig {
    d_encoder: 2048,
    d_projector: 2048,
    d_predictor: 512,
    d_out: 2048,
};
const D: usize = 2048;
const SEED: u64 = 2021;
/// Distinct encoder outputs: the batch calls take three of them (the lanes path), the
/// batch loss three pairs of them (six lanes), the two-view loss the first two.
const INPUTS: usize = 3;
/// The batch loss's pairs, as indices into the inputs.
const PAIRS: [(usize, usize); 3] = [(0, 1), (1, 2), (2, 0)];

/// Our weights and the inputs, made once for all tests.
struct Fixture {
    params: Vec<f32>,
    inputs: Vec<Vec<f32>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut params = vec![0.0; PAPER.param_count().unwrap()];
        init_params(&PAPER, &mut LcgRng::new(SEED), &mut params).unwrap();
        let mut data = LcgRng::new(SEED ^ 0x9a9e7);
        let inputs = (0..INPUTS)
            .map(|_| (0..D).map(|_| data.next_f32() * 4.0 - 2.0).collect())
            .collect();
        Fixture { params, inputs }
    })
}

/// The oracle's projection of input `i` with its one-evaluation bound, made once.
fn oracle_projection(i: usize) -> &'static Bounded {
    static PROJECTIONS: [OnceLock<Bounded>; INPUTS] = [const { OnceLock::new() }; INPUTS];
    PROJECTIONS[i].get_or_init(|| {
        let f = fixture();
        Bounds::new(ORACLE, &PAPER, &f.params).project(&f.inputs[i])
    })
}

/// The oracle's loss of the computed projections `z1p`, `z2p` and predictions `p1`,
/// `p2`, all exact inputs for it: only the dot products and the last rounding remain.
fn oracle_loss_of(oracle: &Bounds<'_>, parts: [&[f32]; 4]) -> support::BoundedScalar {
    let [z1p, z2p, p1, p2] = parts.map(Bounded::exact);
    oracle.loss_of(&z1p, &z2p, &p1, &p2)
}

/// The two-view loss (pair path, 1024-unit hidden blocks), stage by stage on both twins,
/// and against the reference.
#[test]
#[cfg_attr(miri, ignore = "10.5 million weights: far too slow under miri")]
fn paper_size_pair_path_and_reference() {
    let make_reference = || {
        let theirs = RefSimSiam::new(ref_config(&PAPER), &mut RefRng::new(SEED)).unwrap();
        (theirs, reference_weights(&PAPER, SEED))
    };
    // wasm32-wasip1 has no threads (`spawn` fails with `Unsupported`): there the reference
    // is built on this thread, after our stages instead of beside them.
    #[cfg(not(target_family = "wasm"))]
    let reference = std::thread::spawn(make_reference);
    let f = fixture();
    let oracle = Bounds::new(ORACLE, &PAPER, &f.params);
    let (z1, z2) = (&f.inputs[0], &f.inputs[1]);
    let mut book = Book::default();
    let mut stages = Vec::new();
    let core = SimSiamHead::from_params(PAPER, &f.params[..]).unwrap();
    for backend in [Backend::Simd, Backend::Scalar] {
        let head = twin(&core, backend);
        let mut workspace = vec![f32::NAN; core.architecture().workspace_len(1).unwrap()];
        let loss = head.loss(z1, z2, &mut workspace).unwrap();
        let [z1p, z2p, p1, p2] = [0, 1, 2, 3].map(|k| workspace[k * D..][..D].to_vec());
        let what = if backend == Backend::Simd {
            [
                "SIMD pair path: projections vs oracle",
                "SIMD pair path: predictions vs oracle",
                "SIMD pair path: loss vs oracle",
            ]
        } else {
            [
                "scalar pair path: projections vs oracle",
                "scalar pair path: predictions vs oracle",
                "scalar pair path: loss vs oracle",
            ]
        };
        book.get(what[0])
            .check_oracle("z1'", &z1p, oracle_projection(0));
        book.get(what[0])
            .check_oracle("z2'", &z2p, oracle_projection(1));
        book.get(what[1])
            .check_oracle("p1", &p1, &oracle.predict(&z1p));
        book.get(what[1])
            .check_oracle("p2", &p2, &oracle.predict(&z2p));
        let loss_bound = oracle_loss_of(&oracle, [&z1p, &z2p, &p1, &p2]);
        book.get(what[2])
            .check_oracle_scalar("loss", loss, &loss_bound);
        if backend == Backend::Scalar {
            // The reference's order on every path: the single calls, bit for bit.
            let mut single = vec![0.0; D];
            head.project_into(z1, &mut single, &mut []).unwrap();
            assert_eq!(single, z1p, "scalar pair path z1' vs project_into");
            head.predict_into(&z2p, &mut single, &mut []).unwrap();
            assert_eq!(single, p2, "scalar pair path p2 vs predict_into");
        }
        stages.push((backend, loss, z1p, z2p, p1, p2));
    }

    #[cfg(not(target_family = "wasm"))]
    let (theirs, their_params) = reference.join().unwrap();
    #[cfg(target_family = "wasm")]
    let (theirs, their_params) = make_reference();
    let (mut worst, mut bitwise) = (0, 0_usize);
    for (x, y) in f.params.iter().zip(&their_params) {
        let d = ulps(*x, *y);
        worst = worst.max(d);
        bitwise += usize::from(d == 0);
    }
    println!(
        "paper size: {bitwise}/{} weights bitwise equal to the reference's, worst {worst} ulp",
        f.params.len()
    );
    assert!(worst <= REFERENCE.weight_ulps, "{worst} ulp");
    for (a, b) in layers(&PAPER, &f.params)
        .iter()
        .zip(&layers(&PAPER, &their_params))
    {
        assert!(a.b.iter().zip(b.b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    let want = theirs.loss(z1, z2).unwrap();
    // The scalar twin on the reference's weights is the reference.
    let mut workspace = vec![0.0; core.architecture().workspace_len(1).unwrap()];
    let on_their_weights = SimSiamHead::from_params(PAPER, &their_params[..])
        .unwrap()
        .with_kernels::<Scalar>()
        .loss(z1, z2, &mut workspace)
        .unwrap();
    assert!(same(on_their_weights, want), "{on_their_weights} vs {want}");
    // The reference's stages on our weights' inputs.
    let against = Bounds::new(REFERENCE, &PAPER, &f.params);
    let their_z1p = theirs.project(z1).unwrap();
    let their_z2p = theirs.project(z2).unwrap();
    let (bound_z1p, bound_z2p) = (against.project(z1), against.project(z2));
    for (backend, loss, z1p, z2p, p1, p2) in &stages {
        let stats = book.get(if *backend == Backend::Simd {
            "reference vs SIMD, stage by stage"
        } else {
            "reference vs scalar, stage by stage"
        });
        stats.check_pair("z1'", &their_z1p, z1p, &bound_z1p);
        stats.check_pair("z2'", &their_z2p, z2p, &bound_z2p);
        let their_p1 = theirs.predict(z1p).unwrap();
        stats.check_pair("p1", &their_p1, p1, &against.predict(z1p));
        let their_p2 = theirs.predict(z2p).unwrap();
        stats.check_pair("p2", &their_p2, p2, &against.predict(z2p));
        println!(
            "paper size: loss {backend:?} {loss}, reference {want}: |Δ| {:.3e}",
            (loss - want).abs()
        );
    }
    // The reference's own loss from its own stages.
    let their_p1 = theirs.predict(&their_z1p).unwrap();
    let their_p2 = theirs.predict(&their_z2p).unwrap();
    let bound = oracle_loss_of(&oracle, [&their_z1p, &their_z2p, &their_p1, &their_p2]);
    book.get("reference loss vs oracle of its stages")
        .check_oracle_scalar("loss", want, &bound);
    book.report("paper size, pair path", MAX_VACUOUS);
}

/// The batch calls on the SIMD twin (lanes path, wide blocks), stage by stage against the oracle; the batch loss against its composition.
#[test]
#[cfg_attr(miri, ignore = "10.5 million weights: far too slow under miri")]
fn paper_size_batch_lanes_path_simd() {
    let f = fixture();
    let oracle = Bounds::new(ORACLE, &PAPER, &f.params);
    let head = SimSiamHead::from_params(PAPER, &f.params[..])
        .unwrap()
        .with_kernels::<Simd>();
    let zs: Vec<f32> = f.inputs.concat();
    // The lane blocks (2048 columns, 2048 hidden units, 256 rows) live in the workspace.
    let mut lanes = vec![f32::NAN; head.architecture().lanes_len()];
    let mut projected = vec![f32::NAN; INPUTS * D];
    head.project_batch_into(&zs, &mut projected, &mut lanes)
        .unwrap();
    let mut predicted = vec![f32::NAN; INPUTS * D];
    head.predict_batch_into(&projected, &mut predicted, &mut lanes)
        .unwrap();
    let z1s: Vec<f32> = PAIRS
        .iter()
        .flat_map(|(a, _)| f.inputs[*a].clone())
        .collect();
    let z2s: Vec<f32> = PAIRS
        .iter()
        .flat_map(|(_, b)| f.inputs[*b].clone())
        .collect();
    let mut losses = vec![f32::NAN; PAIRS.len()];
    let mut workspace = vec![0.0; head.architecture().workspace_len(PAIRS.len()).unwrap()];
    head.loss_batch_into(&z1s, &z2s, &mut losses, &mut workspace)
        .unwrap();

    let mut book = Book::default();
    let row = |v: &[f32], j: usize| v[j * D..][..D].to_vec();
    for j in 0..INPUTS {
        let stats = book.get("project_batch_into vs oracle");
        stats.check_oracle("project_batch", &row(&projected, j), oracle_projection(j));
        let p = row(&projected, j);
        let stats = book.get("predict_batch_into vs oracle");
        stats.check_oracle("predict_batch", &row(&predicted, j), &oracle.predict(&p));
    }
    for (j, (a, b)) in PAIRS.iter().enumerate() {
        let (za, zb) = (row(&projected, *a), row(&projected, *b));
        let (pa, pb) = (row(&predicted, *a), row(&predicted, *b));
        let composed = (-simd::dot(&pa, &zb).unwrap() + -simd::dot(&pb, &za).unwrap()) * 0.5;
        assert_eq!(
            losses[j].to_bits(),
            composed.to_bits(),
            "loss_batch row {j}"
        );
        let bound = oracle_loss_of(&oracle, [&za, &zb, &pa, &pb]);
        book.get("loss_batch_into vs oracle")
            .check_oracle_scalar("loss_batch", losses[j], &bound);
    }
    book.report("paper size, SIMD batch lanes path", MAX_VACUOUS);
}

/// The batch lanes path on the scalar twin: every lane in the reference's order, so the
/// rows equal the single calls bit for bit (which checks the wide blocking exactly).
#[test]
#[cfg_attr(miri, ignore = "10.5 million weights: far too slow under miri")]
fn paper_size_batch_lanes_path_scalar_is_the_single_calls() {
    let f = fixture();
    let head = SimSiamHead::from_params(PAPER, &f.params[..])
        .unwrap()
        .with_kernels::<Scalar>();
    let zs: Vec<f32> = f.inputs.concat();
    // The lane blocks (2048 columns, 2048 hidden units, 256 rows) live in the workspace.
    let mut lanes = vec![f32::NAN; head.architecture().lanes_len()];
    let mut projected = vec![f32::NAN; INPUTS * D];
    head.project_batch_into(&zs, &mut projected, &mut lanes)
        .unwrap();
    let mut single = vec![0.0; D];
    for (j, z) in f.inputs.iter().enumerate() {
        head.project_into(z, &mut single, &mut []).unwrap();
        assert_eq!(
            &projected[j * D..][..D],
            &single[..],
            "project_batch row {j}"
        );
    }
    let mut predicted = vec![f32::NAN; INPUTS * D];
    head.predict_batch_into(&projected, &mut predicted, &mut lanes)
        .unwrap();
    for j in 0..INPUTS {
        head.predict_into(&projected[j * D..][..D], &mut single, &mut [])
            .unwrap();
        assert_eq!(
            &predicted[j * D..][..D],
            &single[..],
            "predict_batch row {j}"
        );
    }
}
