#!/usr/bin/env bash
# The C ABI (capi/): header up to date with cbindgen, clippy, then the host static library
# linked into capi/tests/capi_test.c with gcc and run under valgrind on the reference
# head, on a parameter image of the official head and on one of the reference head
# (`reference write-image`); its output must hold exactly the Rust API's lines for the
# reference head and the official image, every float bit for bit (`reference compare
# ... --image`), and that comparison must reject a missing, duplicated, extra or
# one-ulp-off line. Installs what it uses on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
say() { printf -- '--- %s (%ss)\n' "$*" "$((SECONDS - started))"; }

CBINDGEN_VERSION=0.29.4
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR="$PWD/target/capi"
out="$CARGO_TARGET_DIR/c"
mkdir -p "$out"

say "install gcc, valgrind, cbindgen $CBINDGEN_VERSION (only what is missing)"
missing=()
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v valgrind >/dev/null || missing+=(valgrind)
if ((${#missing[@]})); then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
if [[ "$(cbindgen --version 2>/dev/null || true)" != "cbindgen $CBINDGEN_VERSION" ]]; then
  cargo install cbindgen --locked --version "$CBINDGEN_VERSION"
fi

say "include/simsiam.h is what cbindgen generates"
bash capi/gen-header.sh "$out/simsiam.h"
if ! diff -u include/simsiam.h "$out/simsiam.h"; then
  echo "include/simsiam.h is stale: run capi/gen-header.sh and commit it" >&2
  exit 1
fi

say "clippy and rustfmt on capi"
cargo clippy --locked -p simsiam-capi --all-targets -- -D warnings
rustfmt --edition 2024 --check capi/src/lib.rs capi/examples/reference.rs

say "host static library"
native_libs=$(cargo rustc --locked --release -p simsiam-capi --crate-type staticlib -- --print native-static-libs 2>&1 |
  sed -n 's/.*native-static-libs: //p' | tail -n 1)
echo "native libraries: $native_libs"

say "reference tool, and the parameter images the C test reads (official and reference heads)"
cargo build --locked -q --release -p simsiam-capi --example reference
reference="$CARGO_TARGET_DIR/release/examples/reference"
"$reference" write-image "$out/official.simsiam" official
"$reference" write-image "$out/reference.simsiam" reference

say "C test: gcc, valgrind"
# shellcheck disable=SC2086 # the library list is meant to split into words
gcc -std=c11 -O1 -g -Wall -Wextra -Werror -pedantic -Iinclude capi/tests/capi_test.c \
  "$CARGO_TARGET_DIR/release/libsimsiam_capi.a" $native_libs -o "$out/capi_test"
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  "$out/capi_test" "$out/official.simsiam" "$out/reference.simsiam" >"$out/capi_test.out"

say "C results equal the Rust API's (reference head and image): every line once, bit for bit"
"$reference" compare "$out/capi_test.out" simd,scalar --image

say "reference compare rejects what it must"
good="$out/capi_test.out"
bad="$out/compare-bad.out"
rejects() { # WHAT TWINS [--image]: the comparison of $bad must fail
  if "$reference" compare "$bad" "${@:2}" 2>"$out/compare-bad.err"; then
    echo "reference compare accepted $1" >&2
    exit 1
  fi
  printf 'rejected %s:\n' "$1"
  sed 's/^/    /' "$out/compare-bad.err"
}
# One firmware-like output per twin (what a Rust image prints) passes on its own.
for twin in simd scalar; do
  grep -E "^(#|params\.fnv |[a-z]+\.$twin )" "$good" >"$bad"
  "$reference" compare "$bad" "$twin"
done
grep -v '^predict\.scalar ' "$good" >"$bad"
rejects "a missing line" simd,scalar --image
grep -v '^params\.fnv ' "$good" >"$bad"
rejects "a missing parameter hash" simd,scalar --image
grep -v '^image\.loss\.simd ' "$good" >"$bad"
rejects "a missing image line" simd,scalar --image
read -r _ hash < <(grep '^image\.fnv ' "$good")
sed "s/^image\.fnv $hash\$/image.fnv $(printf '%016x' $((16#$hash ^ 1)))/" "$good" >"$bad"
rejects "another image hash" simd,scalar --image
read -r _ first _ < <(grep '^predict\.simd ' "$good")
sed "s/^predict\.simd $first /predict.simd $(printf '%08x' $((16#$first ^ 1))) /" "$good" >"$bad"
rejects "a value one ulp off (last mantissa bit flipped)" simd,scalar --image
read -r _ first _ < <(grep '^image\.project\.scalar ' "$good")
sed "s/^image\.project\.scalar $first /image.project.scalar $(printf '%08x' $((16#$first ^ 1))) /" \
  "$good" >"$bad"
rejects "an image value one ulp off" simd,scalar --image
sed '/^loss\.scalar /s/ [0-9a-f]*$/ /' "$good" >"$bad"
rejects "a line with a value missing" simd,scalar --image
{ cat "$good"; grep '^loss\.simd ' "$good"; } >"$bad"
rejects "a duplicated line" simd,scalar --image
{ cat "$good"; echo "loss.fma 3bf643a0"; } >"$bad"
rejects "an extra value line" simd,scalar --image
{ cat "$good"; echo "error: loss: NonFinite"; } >"$bad"
rejects "an extra line of another kind" simd,scalar --image
cp "$good" "$bad"
rejects "the other twin's lines (only simd expected)" simd --image
rejects "the image lines (not expected without --image)" simd,scalar

say "capi done"
