#!/usr/bin/env bash
# Tests under miri (issue 5): undefined behaviour in dependencies' unsafe code
# on the paths the tests take (wide, heapless, the counting allocator of
# tests/no_alloc.rs), out-of-bounds or misaligned accesses, leaks.
#
# - libm/force-soft-floats: miri cannot run libm's x86 inline assembly;
# - -Zmiri-disable-isolation: proptest reads the environment and the clock;
# - -Zmiri-deterministic-floats: no random extra error in std's ln/sin/cos, which the
#   parity test compares to within 3 ulp;
# - PROPTEST_CASES=1 and `cfg(miri)` sizes/ignores in tests/batch.rs, tests/kernels.rs
#   and tests/parity.rs: the interpreter is ~1000x slower.
# Two halves of the test targets run at once (two cores), each in its own target dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset RUSTFLAGS CARGO_TARGET_DIR
export PROPTEST_CASES=${PROPTEST_CASES:-1}
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation -Zmiri-deterministic-floats}"

source .ci/nightly.sh # NIGHTLY, the pinned toolchain
rustup +"$NIGHTLY" component add miri rust-src
cargo +"$NIGHTLY" miri setup

miri_test() { # $1 = target dir, rest = target selection
  local dir=$1
  shift
  CARGO_TARGET_DIR="target/miri-$dir" cargo +"$NIGHTLY" miri test --locked -p simsiam --all-features \
    --features libm/force-soft-floats "$@"
}

# Miri looks for undefined behaviour, so it runs the tests that reach the unsafe code
# this crate builds on, once each, not the whole suite (which .ci/run runs natively on
# every lane width): `wide`'s lanes (every kernel: kernels, train_kernels; the lane blocks
# of the batch paths: batch; the training step: train), `heapless` and the allocator
# (no_alloc), `bytemuck`'s views of parameter images (image), and the unit tests. Left
# out: properties, parity, paper_size, pytorch, train_pytorch (the same kernels on larger
# heads, or files), layers (the kinds run the kernels the kernels tests cover), collapse,
# error_payloads, bad_input (validation before any kernel), augment (scalar code over
# libm, no unsafe dependency: 190 s under miri), correlate (the convolution kernels: safe
# code over the same `wide` operations, lanes from and to arrays and FMAs, that kernels
# reaches; even on three small shapes it took 146 s of CPU under miri) and the doctests (examples whose paths the
# test targets cover). Two halves balanced by measured time (a fresh-clone run at
# 37f123d: image 231 s, batch 46 s, train 45 s, lib about 35 s once the register-pack
# tests' large shapes were left out under miri; no_alloc 175 s, train_kernels 103 s,
# kernels 76 s).
half_a=(--lib --test image --test batch --test train)
half_b=(--test no_alloc --test kernels --test train_kernels)

logs=$(mktemp -d)
miri_test a "${half_a[@]}" >"$logs/a.log" 2>&1 &
pid_a=$!
miri_test b "${half_b[@]}" >"$logs/b.log" 2>&1 &
pid_b=$!
status=0
wait "$pid_a" || status=1
wait "$pid_b" || status=1
for half in a b; do
  echo "=== miri half $half"
  grep -E '^(test |test result|     Running|   Doc-tests)|error|panicked' "$logs/$half.log" || true
done
if ((status != 0)); then
  for half in a b; do
    echo "=== miri half $half (last lines)" >&2
    tail -n 40 "$logs/$half.log" >&2
  done
  exit 1
fi
echo "miri: all tests passed"
