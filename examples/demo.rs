//! The main job: the default SimSiam head built from a seed with the no-alloc API, two
//! synthetic views through project / predict / loss, and a SIMD-vs-scalar timing table.
//!
//! `cargo run --release --example demo`

use std::hint::black_box;
use std::time::Instant;

use simsiam::kernels::{LANES, Scalar};
use simsiam::{Backend, HIDDEN_BLOCK, LcgRng, SimSiamConfig, SimSiamHead, SslResult};

const CONFIG: SimSiamConfig = SimSiamConfig::DEFAULT;
/// Parameter count of the default config (checked against `param_count` below).
const PARAMS: usize = 16_640;
const SEED: u64 = 42;

/// Median nanoseconds per call of `f`, over `samples` timings of `calls` calls each.
fn median_ns(samples: usize, calls: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> SslResult<()> {
    assert_eq!(CONFIG.param_count()?, PARAMS);
    // Parameters owned in fixed-capacity storage, initialised from the seed: no allocator.
    let head =
        SimSiamHead::<heapless::Vec<f32, PARAMS>>::from_seed(CONFIG, &mut LcgRng::new(SEED))?;

    // Two views: a vector and a noisy copy of it.
    let mut rng = LcgRng::new(7);
    let mut view1 = [0.0_f32; 64];
    rng.fill_normal(&mut view1);
    let mut noise = [0.0_f32; 64];
    rng.fill_normal(&mut noise);
    let mut view2 = view1;
    view2
        .iter_mut()
        .zip(&noise)
        .for_each(|(v, n)| *v += 0.1 * n);

    let mut z1 = [0.0_f32; 32];
    let mut p1 = [0.0_f32; 32];
    let mut workspace = [0.0_f32; 4 * 32];
    head.project_into(&view1, &mut z1, &mut [])?;
    head.predict_into(&z1, &mut p1, &mut [])?;
    let loss = head.loss(&view1, &view2, &mut workspace)?;
    let unrelated = {
        let mut other = [0.0_f32; 64];
        rng.fill_normal(&mut other);
        head.loss(&view1, &other, &mut workspace)?
    };

    println!("simsiam demo: SimSiam head {CONFIG:?}, seed {SEED}");
    println!("  project(view1)[..4]          = {:?}", &z1[..4]);
    println!("  predict(project(view1))[..4] = {:?}", &p1[..4]);
    println!("  loss(view1, noisy copy)      = {loss:+.6}");
    println!("  loss(view1, unrelated)       = {unrelated:+.6}");
    // With the exact identity predictor (d_predictor == 2·d_out here), SimSiam's loss
    // measures how well the projections of the two views align.
    let mut identity = head.clone();
    identity.set_identity_predictor()?;
    let same = identity.loss(&view1, &view1, &mut workspace)?;
    let noisy = identity.loss(&view1, &view2, &mut workspace)?;
    println!(
        "  with the identity predictor: loss(view1, view1) = {same:+.6}, loss(view1, noisy copy) = {noisy:+.6}"
    );
    println!("memory");
    println!(
        "  parameters                = {} bytes ({PARAMS} f32)",
        PARAMS * 4
    );
    println!(
        "  loss workspace (caller's) = {} bytes (4 x d_out f32)",
        workspace.len() * 4
    );
    println!(
        "  hidden blocks (stack)     = {} bytes (2 x {HIDDEN_BLOCK} f32, one per view)",
        2 * HIDDEN_BLOCK * 4
    );
    println!("  heap                      = 0 bytes");

    let features: Vec<&str> = [
        ("sse2", cfg!(target_feature = "sse2")),
        ("avx", cfg!(target_feature = "avx")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("neon", cfg!(target_feature = "neon")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    println!("timing of loss at the default config (median of 301 samples x 200 calls)");
    println!(
        "  target features: {}; SIMD lanes: f32x{LANES}",
        features.join("+")
    );
    let scalar = head.view().with_kernels::<Scalar>();
    let scalar_ns = median_ns(301, 200, || {
        let _ = black_box(scalar.loss(black_box(&view1), black_box(&view2), &mut workspace));
    });
    let simd_ns = median_ns(301, 200, || {
        let _ = black_box(head.loss(black_box(&view1), black_box(&view2), &mut workspace));
    });
    let timings = [(Backend::Scalar, scalar_ns), (Backend::Simd, simd_ns)];
    let scalar_ns = timings.first().map_or(f64::NAN, |t| t.1);
    let flops = 2.0 * 2.0 * (CONFIG.param_count()? as f64); // two views, a multiply-add per weight
    println!(
        "  {:<8} {:>10} {:>10} {:>9}",
        "backend", "ns/loss", "GFLOP/s", "speed-up"
    );
    for (backend, ns) in timings {
        println!(
            "  {:<8} {:>10.0} {:>10.2} {:>8.2}x",
            format!("{backend:?}"),
            ns,
            flops / ns,
            scalar_ns / ns
        );
    }
    if !cfg!(target_feature = "avx2") && cfg!(target_arch = "x86_64") {
        println!(
            "  (for AVX2+FMA lanes: RUSTFLAGS=\"-C target-cpu=x86-64-v3\" cargo run --release --example demo)"
        );
    }
    Ok(())
}
