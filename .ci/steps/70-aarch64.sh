#!/usr/bin/env bash
# The test suite on aarch64 (issue 9): `wide` runs the SIMD twin on NEON there, a path the
# x86-64 runs of `.ci/run` never execute (the bare-metal aarch64-unknown-none build only
# compiles it). The library, the integration tests and the doctests are cross-compiled for
# aarch64-unknown-linux-gnu and run under qemu-aarch64 (user mode), so the twin property
# suites, the parity suite against oxicuda-ssl and the no-allocation proof all hold on
# NEON lanes too. Installs what it uses on a bare machine.
#
# Time: about 2 min on the 2-core CI machine, build included (117 s measured on
# 2026-11-30); the proptest suites run their full case counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
say() { printf -- '--- %s (%ss)\n' "$*" "$((SECONDS - started))"; }

TARGET=aarch64-unknown-linux-gnu
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR="$PWD/target/aarch64"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# Host flags (e.g. -C target-cpu=x86-64-v3) mean nothing to the cross target.
unset RUSTFLAGS CARGO_BUILD_TARGET

say "install qemu-user, the aarch64 GCC linker and libc, the Rust target (only what is missing)"
missing=()
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
dpkg -s libc6-dev-arm64-cross >/dev/null 2>&1 || missing+=(libc6-dev-arm64-cross)
if ((${#missing[@]})); then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
rustup target add "$TARGET"

say "cargo test -p simsiam --all-features --lib --tests --target $TARGET under qemu-aarch64 (the doctests run natively)"
cargo test --locked -p simsiam --all-features --target "$TARGET" --lib --tests
say "the short HAPT recipe (hapt/tests/recipe.rs) on NEON lanes"
cargo test --locked -p simsiam-hapt --target "$TARGET" --test recipe

say "aarch64 done"
