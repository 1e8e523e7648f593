#!/usr/bin/env bash
# Writes the C header for the simsiam C ABI: include/simsiam.h by default, or the path given.
# Needs cbindgen (the version pinned in .ci/steps/50-capi.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/include/simsiam.h}"
cbindgen --quiet --config "$root/capi/cbindgen.toml" --crate simsiam-capi --output "$out" "$root/capi"
