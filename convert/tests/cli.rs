//! The command line itself: `import`, `export`, `inspect`, `emit`, and its errors.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::data;

fn convert(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simsiam-convert"))
        .args(args)
        .output()
        .expect("run simsiam-convert")
}

fn ok(args: &[&str]) -> String {
    let output = convert(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn import_export_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let official = dir.path().join("official.simsiam");
    let lightly = dir.path().join("lightly.simsiam");
    let seed = dir.path().join("seed.simsiam");
    let ckpt = data("official_head.pth.tar");
    ok(&[
        "import",
        "--preset",
        "official",
        path(&ckpt),
        "-o",
        path(&official),
    ]);
    let ckpt = data("lightly_head.safetensors");
    ok(&[
        "import",
        "--preset",
        "lightly",
        path(&ckpt),
        "-o",
        path(&lightly),
    ]);
    let ckpt = data("seed_head.pth");
    ok(&["import", "--preset", "seed", path(&ckpt), "-o", path(&seed)]);

    // The CLI writes what the library makes.
    let image = std::fs::read(&official).unwrap();
    let expected = simsiam_convert::import(
        data("official_head.pth.tar"),
        simsiam_convert::Preset::Official,
        &common::names(),
    )
    .unwrap();
    assert!(image == expected);

    let out = dir.path().join("official.safetensors");
    ok(&[
        "export",
        "--preset",
        "official",
        path(&official),
        "-o",
        path(&out),
    ]);
    let again = dir.path().join("again.simsiam");
    ok(&[
        "import",
        "--preset",
        "official",
        path(&out),
        "-o",
        path(&again),
    ]);
    assert!(std::fs::read(&again).unwrap() == image);

    let text = ok(&["inspect", path(&official)]);
    for needle in [
        "preset: official (prev_dim 48, dim 32, pred_dim 16)",
        "layer 0: 48 → 48, no bias, BatchNorm(affine=true, eps=1e-5), ReLU, num_batches_tracked 10",
        "layer 2: 48 → 32, bias (frozen), BatchNorm(affine=false, eps=1e-5), num_batches_tracked 10",
        "layer 4: 16 → 32, bias",
        "output L2-normalised: no",
        "parameters: 7744",
        "data bytes: 30976",
        &format!("image bytes: {}", image.len()),
        "CRC-32: 0x",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    let text = ok(&["inspect", path(&seed)]);
    assert!(text.contains("preset: seed"), "{text}");
    assert!(text.contains("output L2-normalised: yes"), "{text}");
    let text = ok(&["inspect", path(&lightly)]);
    assert!(
        text.contains("preset: lightly (input 40, hidden 24"),
        "{text}"
    );
}

#[test]
fn errors_are_one_line_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.simsiam");
    let ckpt = data("official_head.pth.tar");
    let output = convert(&[
        "import",
        "--preset",
        "lightly",
        path(&ckpt),
        "-o",
        path(&out),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("missing key `module.projection_head.layers.0.weight`"),
        "{stderr}"
    );
    assert!(!out.exists());

    let ckpt = data("seed_head.pth");
    ok(&["import", "--preset", "seed", path(&ckpt), "-o", path(&out)]);
    let st = dir.path().join("x.safetensors");
    let output = convert(&[
        "export",
        "--preset",
        "official",
        path(&out),
        "-o",
        path(&st),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not a `official` head"), "{stderr}");

    let output = convert(&["inspect", path(&dir.path().join("absent"))]);
    assert!(!output.status.success());
}

/// The byte list of emitted source, between its first `[`/`{` after `=` and the end.
fn emitted_bytes(source: &str) -> Vec<u8> {
    let body = &source[source.find('=').unwrap()..];
    body.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|token| token.strip_prefix("0x"))
        .map(|hex| u8::from_str_radix(hex, 16).unwrap())
        .collect()
}

#[test]
fn emit_c_and_rust() {
    let dir = tempfile::tempdir().unwrap();
    let image_path = dir.path().join("lightly.simsiam");
    let ckpt = data("lightly_head.safetensors");
    ok(&[
        "import",
        "--preset",
        "lightly",
        path(&ckpt),
        "-o",
        path(&image_path),
    ]);
    let image = std::fs::read(&image_path).unwrap();

    let c_path = dir.path().join("head.h");
    ok(&[
        "emit",
        "--lang",
        "c",
        "--name",
        "head_image",
        path(&image_path),
        "-o",
        path(&c_path),
    ]);
    let c = std::fs::read_to_string(&c_path).unwrap();
    assert!(
        c.contains("_Alignas(64) static const unsigned char head_image[] = {"),
        "{c}"
    );
    assert_eq!(emitted_bytes(&c), image);

    let rs_path = dir.path().join("head.rs");
    ok(&[
        "emit",
        "--lang",
        "rust",
        path(&image_path),
        "-o",
        path(&rs_path),
    ]);
    let rs = std::fs::read_to_string(&rs_path).unwrap();
    let decl = format!(
        "static SIMSIAM_IMAGE: simsiam::image::AlignedImage<[u8; {}]> = simsiam::image::AlignedImage([",
        image.len()
    );
    assert!(rs.contains(&decl), "{rs}");
    assert_eq!(emitted_bytes(&rs), image);

    // Both compile, and the arrays are 64-byte aligned and complete.
    let c_main = dir.path().join("main.c");
    std::fs::write(
        &c_main,
        format!(
            "#include <stdint.h>\n#include <string.h>\n#include \"head.h\"\n\
             int main(void) {{\n\
             if ((uintptr_t)head_image % 64 != 0) return 1;\n\
             if (sizeof head_image != {}) return 2;\n\
             return memcmp(head_image, \"SIMSIAM\", 8) != 0 ? 3 : 0;\n}}\n",
            image.len()
        ),
    )
    .unwrap();
    let c_bin = dir.path().join("c_check");
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&c_bin)
        .arg(&c_main)
        .status()
        .expect("cc");
    assert!(status.success(), "cc failed");
    assert!(Command::new(&c_bin).status().unwrap().success(), "C check");

    // The Rust source against a stand-in `simsiam::image::AlignedImage` of the same shape
    // (`#[repr(C, align(64))] pub struct AlignedImage<B: ?Sized>(pub B)`).
    let rs_main = dir.path().join("check.rs");
    std::fs::write(
        &rs_main,
        format!(
            "mod simsiam {{ pub mod image {{\n\
             #[repr(C, align(64))] pub struct AlignedImage<B: ?Sized>(pub B);\n}} }}\n\
             include!(\"head.rs\");\n\
             fn main() {{\n\
             assert_eq!(core::ptr::addr_of!(SIMSIAM_IMAGE) as usize % 64, 0);\n\
             assert_eq!(SIMSIAM_IMAGE.0.len(), {});\n\
             assert_eq!(&SIMSIAM_IMAGE.0[..8], b\"SIMSIAM\\0\");\n}}\n",
            image.len()
        ),
    )
    .unwrap();
    let rs_bin = dir.path().join("rs_check");
    let status = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--edition", "2024", "-o"])
        .arg(&rs_bin)
        .arg(&rs_main)
        .status()
        .expect("rustc");
    assert!(status.success(), "rustc failed");
    assert!(
        Command::new(&rs_bin).status().unwrap().success(),
        "Rust check"
    );

    let output = convert(&[
        "emit",
        "--lang",
        "c",
        "--name",
        "9bad",
        path(&image_path),
        "-o",
        path(&c_path),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid name `9bad`"));
}
