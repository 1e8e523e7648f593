#!/usr/bin/env bash
# The test suite on WebAssembly (issue 23): wasm32 with `simd128` runs the SIMD twin on
# `f32x4` lanes (one v128) with multiply-then-add (simd128 has no FMA; `wide`'s `mul_add`
# is `a * b + c` there, as on x86-64 without `fma`), a path no other step executes, and a
# 32-bit `usize` on an application processor (the GEMM cache blocks and packed path of
# the 64-bit hosts). The library's unit tests and every integration test (parity with the
# scalar twin and with oxicuda-ssl, the properties, no_alloc, training, the PyTorch
# fixtures, the paper-size head) are built for wasm32-wasip1 and run under Node.js's WASI
# (`.ci/wasi-run.mjs`, which preopens the package root so tests/data opens). The
# doctests ran natively. The library alone is also built for wasm32-unknown-unknown, with
# and without `simd128` (without it `Simd` is the scalar twin: VECTOR_UNIT false).
#
# Node runs with --no-turbo-fast-api-calls: with V8's fast API calls into node:wasi
# (nodejs/node#46777, #53087: a GC inside a fast call), Node 20.20 crashed (SIGSEGV or
# SIGTRAP, after "test result: ok") in 4 of 5 runs of the paper-size pair-path test, the
# one that grows the module's memory to 138 MiB; without them, in none of 6.
#
# Time: 4.0 min measured from an empty target dir on the 2-core machine at a load of 10
# (1.9 min of CPU; the dev-dependencies' build is most of it); with the builds done, 21 s
# (the test binaries themselves).
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
say() { printf -- '--- %s (%ss)\n' "$*" "$((SECONDS - started))"; }

export CARGO_TERM_COLOR=never
# Host flags (e.g. -C target-cpu=x86-64-v3) mean nothing to wasm.
unset RUSTFLAGS CARGO_BUILD_TARGET CARGO_TARGET_DIR
SIMD128="-C target-feature=+simd128"

say "install Node.js 20 or newer (only if missing; node:wasi runs the tests), the Rust targets"
if ! command -v node >/dev/null; then
  apt-get update
  apt-get install -y --no-install-recommends nodejs
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
  echo "FAIL: node $(node --version) is too old: .ci/wasi-run.mjs needs Node.js 20 (node:wasi preview1 without a flag)" >&2
  exit 1
fi
rustup target add wasm32-wasip1 wasm32-unknown-unknown

say "build the library for wasm32-unknown-unknown with simd128, then without (the scalar path)"
RUSTFLAGS="$SIMD128" CARGO_TARGET_DIR=target/wasm \
  cargo build --locked -p simsiam --release --lib --features alloc --target wasm32-unknown-unknown
CARGO_TARGET_DIR=target/wasm-scalar \
  cargo build --locked -p simsiam --release --lib --features alloc --target wasm32-unknown-unknown

say "cargo test --all-features --lib --tests on wasm32-wasip1 with simd128, under node $(node --version)"
# --nocapture: a failing test aborts the module (wasm has no unwinding), so libtest could
# not print the output it captured; this way the panic message is in the log.
RUSTFLAGS="$SIMD128" CARGO_TARGET_DIR=target/wasm \
  CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-turbo-fast-api-calls $PWD/.ci/wasi-run.mjs" \
  cargo test --locked --no-fail-fast -p simsiam --all-features --target wasm32-wasip1 --lib --tests \
  -- --nocapture

say "wasm done"
