//! Cuts the slice of HAPT the firmware holds (`slice.rs`, shared with the host replay)
//! and writes it to `OUT_DIR` as little-endian `f32` / `u8` files the firmware includes,
//! with its sizes as Rust constants. Also puts `memory.x` where the linker finds it.

#[path = "slice.rs"]
mod slice;

use std::path::PathBuf;

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let hapt = simsiam_hapt::Hapt::load_committed().expect("data/hapt.bin loads");
    let s = slice::slice(&hapt).expect("the slice cuts");
    let write = |name: &str, bytes: &[u8]| std::fs::write(out.join(name), bytes).expect("write");
    write("train.f32", &floats(&s.train));
    write("labelled.f32", &floats(&s.labelled));
    write("test.f32", &floats(&s.test));
    write("stats.f32", &floats(&[s.mean, s.std].concat()));
    write("labelled.u8", &s.labelled_classes);
    write("test.u8", &s.test_classes);
    let code = format!(
        "/// Training windows in flash.\npub const TRAIN_WINDOWS: usize = {};\n\
         /// Labelled windows in flash.\npub const LABELLED_WINDOWS: usize = {};\n\
         /// Test windows in flash.\npub const TEST_WINDOWS: usize = {};\n",
        s.train.len() / 192,
        s.labelled_classes.len(),
        s.test_classes.len()
    );
    std::fs::write(out.join("sizes.rs"), code).expect("write");
    std::fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=slice.rs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../data/hapt.bin");
}
