#!/usr/bin/env bash
# The C ABI (capi/): header up to date with cbindgen, clippy, then the host static library
# linked into capi/tests/capi_test.c with gcc and run under valgrind; its values must equal
# the Rust API's bit for bit. Installs what it uses on a bare machine.
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
cargo clippy -p simsiam-capi --all-targets -- -D warnings
rustfmt --edition 2024 --check capi/src/lib.rs capi/examples/reference.rs

say "host static library"
native_libs=$(cargo rustc --release -p simsiam-capi --crate-type staticlib -- --print native-static-libs 2>&1 |
  sed -n 's/.*native-static-libs: //p' | tail -n 1)
echo "native libraries: $native_libs"

say "C test: gcc, valgrind"
# shellcheck disable=SC2086 # the library list is meant to split into words
gcc -std=c11 -O1 -g -Wall -Wextra -Werror -pedantic -Iinclude capi/tests/capi_test.c \
  "$CARGO_TARGET_DIR/release/libsimsiam_capi.a" $native_libs -o "$out/capi_test"
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  "$out/capi_test" >"$out/capi_test.out"

say "C results equal the Rust API's, bit for bit"
cargo run -q --release -p simsiam-capi --example reference -- compare "$out/capi_test.out" 0

say "capi done"
