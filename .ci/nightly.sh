# The dated nightly that cargo-fuzz (20-fuzz.sh) and miri (40-miri.sh) run on, pinned so a
# new nightly cannot break CI (issue 12). Sourced, not run. To move it: pick a date whose
# nightly has miri (rustup's component history), run both steps on it, change it here.
NIGHTLY=nightly-2026-05-20
if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
  rustup toolchain install "$NIGHTLY" --profile minimal
fi
