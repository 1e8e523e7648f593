//! Shared helpers of the converter's tests.
#![allow(dead_code)]

use std::path::PathBuf;

use simsiam_convert::{ExportTensor, KeyNames, Preset};

/// The committed PyTorch fixtures (`tests/data/README.md`).
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(name)
}

/// The fixtures: preset, checkpoint, eval file.
pub const FIXTURES: [(Preset, &str, &str); 3] = [
    (
        Preset::Official,
        "official_head.pth.tar",
        "official_eval.safetensors",
    ),
    (
        Preset::Lightly,
        "lightly_head.safetensors",
        "lightly_eval.safetensors",
    ),
    (Preset::Seed, "seed_head.pth", "seed_eval.safetensors"),
];

/// The default key names.
pub fn names() -> KeyNames {
    KeyNames::default()
}

/// The F32 tensor `name` of a safetensors file, with its shape.
pub fn f32_tensor(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let tensors = safetensors::SafeTensors::deserialize(bytes).expect("safetensors");
    let view = tensors.tensor(name).expect(name);
    assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
    let (words, rest) = view.data().as_chunks::<4>();
    assert!(rest.is_empty());
    (
        view.shape().to_vec(),
        words.iter().map(|w| f32::from_le_bytes(*w)).collect(),
    )
}

/// Every tensor of a safetensors file, to modify and write again.
pub fn tensors(bytes: &[u8]) -> Vec<(String, ExportTensor)> {
    let tensors = safetensors::SafeTensors::deserialize(bytes).expect("safetensors");
    tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                ExportTensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    data: view.data().to_vec(),
                },
            )
        })
        .collect()
}

/// Writes `tensors` as a safetensors file `name` in `dir`.
pub fn write_safetensors(
    dir: &std::path::Path,
    name: &str,
    tensors: Vec<(String, ExportTensor)>,
) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        safetensors::serialize(tensors, None).expect("serialize"),
    )
    .expect("write");
    path
}
