//! Generates the firmware's parameters at build time: `simsiam::init_params` with the
//! scenario's seed, written as a Rust array of exact bit patterns that becomes a `static`
//! in flash. Also puts `memory.x` where the linker finds it.

use std::fmt::Write as _;
use std::path::PathBuf;

use simsiam::{LcgRng, SimSiamConfig, init_params};

/// The seed of the scenario (the same in `capi/examples/reference.rs`).
const SEED: u64 = 42;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let config = SimSiamConfig::default();
    let count = config.param_count().expect("the default config is valid");
    let mut params = vec![0.0_f32; count];
    init_params(&config, &mut LcgRng::new(SEED), &mut params).expect("length is param_count");

    let mut code = String::new();
    let SimSiamConfig {
        d_encoder,
        d_projector,
        d_predictor,
        d_out,
    } = config;
    writeln!(
        code,
        "/// The head's dimensions.\n\
         pub const CONFIG: simsiam::SimSiamConfig = simsiam::SimSiamConfig {{ \
         d_encoder: {d_encoder}, d_projector: {d_projector}, d_predictor: {d_predictor}, d_out: {d_out} }};\n\
         /// `init_params` with seed {SEED}, bit for bit; read in place from flash.\n\
         pub static PARAMS: [f32; {count}] = ["
    )
    .unwrap();
    for chunk in params.chunks(8) {
        for p in chunk {
            write!(code, "f32::from_bits(0x{:08x}),", p.to_bits()).unwrap();
        }
        code.push('\n');
    }
    code.push_str("];\n");
    std::fs::write(out.join("params.rs"), code).unwrap();

    std::fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
