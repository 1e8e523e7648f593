#!/usr/bin/env bash
# Link-time proof that simsiam's no-alloc path has no panic path (issue 5).
#
# nopanic/ is a #![no_std] #![no_main] binary for thumbv7em-none-eabihf whose
# #[panic_handler] calls an undefined symbol: the release link fails if any panic path
# reachable from its calls (project / predict / loss on a parameter view, both kernel
# twins, the public kernels, on-device initialisation) survives optimisation.
#   1. release (as shipped), with initialisation;
#   2. release with overflow checks on (as a debug build has them), inference only;
#   3. a canary with a deliberate out-of-bounds index, which must FAIL to link: proof
#      that the check itself works;
#   4. opt-level "s" (profile `firmware`, what examples/firmware and the C firmware
#      build with) and opt-level "z" (profile `size`), where other inlining decisions
#      leave iterator code out of line: the library avoids `chunks`/`zip` length
#      divisions and `swap(i, j)` there. Both must link: a failure fails CI.
# Every build covers the same calls: single, pair and batch paths on both twins, every
# public kernel, on-device initialisation (not with overflow checks, see Cargo.toml).
# On a failed link, the script rebuilds with `--features diagnose` (a looping handler)
# and lists the functions that still call into core::panicking.
set -euo pipefail
cd "$(dirname "$0")/../../nopanic"
unset CARGO_TARGET_DIR
TARGET=thumbv7em-none-eabihf
MISSING=simsiam_nopanic__a_panic_path_survived_optimisation

rustup target add "$TARGET"

diagnose() { # $1 = profile, rest = cargo flags
  local profile=$1
  shift
  echo "--- functions still calling core::panicking (profile $profile):"
  rustup component add llvm-tools >/dev/null 2>&1 || true
  local objdump
  objdump=$(find "$(rustc --print sysroot)" -name llvm-objdump -type f | head -n 1)
  local debug_var="CARGO_PROFILE_${profile^^}_DEBUG"
  env "${debug_var//-/_}=true" cargo build --locked --profile "$profile" --target "$TARGET" "$@" --features diagnose
  if [[ -n "$objdump" ]]; then
    "$objdump" -d --demangle "target/$TARGET/$profile/simsiam-nopanic" |
      awk '/^[0-9a-f]+ <.*>:$/ {f=$2} /bl.*core::panicking/ {print f}' | sort | uniq -c
  fi
}

check() { # $1 = profile, rest = cargo flags
  local profile=$1
  echo "--- link, profile $profile ${*:2}"
  if ! cargo build --locked --profile "$profile" --target "$TARGET" "${@:2}"; then
    echo "FAIL: a panic path survives in profile $profile (undefined $MISSING above)" >&2
    diagnose "$profile" "${@:2}" || true
    exit 1
  fi
}

check release
check overflow-checks --no-default-features

echo "--- canary: a deliberate panic path must fail the link"
if log=$(cargo build --locked --release --target "$TARGET" --features canary 2>&1); then
  echo "FAIL: the canary linked, so the no-panic check proves nothing" >&2
  exit 1
fi
if ! grep -q "undefined symbol: $MISSING" <<<"$log"; then
  echo "$log" >&2
  echo "FAIL: the canary failed for another reason than the panic handler" >&2
  exit 1
fi
echo "no-panic link check passed (canary correctly rejected)"

check firmware
check size
echo "no-panic link check passed at opt-level 3, \"s\" and \"z\""
