#!/usr/bin/env bash
# cargo-fuzz targets (issue 5): build them all, then run each for a bounded time from
# the committed seed corpus (fuzz/corpus/<target>/seed-*). Fails on any crash, panic,
# failed assertion, timeout or out-of-memory report, and prints the reproducer.
#
# Built with `--sanitizer none`: simsiam is #![forbid(unsafe_code)], so AddressSanitizer
# would check only its dependencies, at ~2.5x the build time and a third of the speed;
# what the targets look for are panics and wrong results. `-rss_limit_mb` bounds what a
# target may allocate.
#
# Environment: FUZZ_SECONDS (per target, default 30), FUZZ_JOBS (targets run at once,
# default 2).
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
unset CARGO_TARGET_DIR RUSTFLAGS
CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-2}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

cargo +nightly fuzz build --sanitizer none
mapfile -t targets < <(cargo +nightly fuzz list)
echo "fuzz targets: ${targets[*]} (${seconds}s each, $jobs at a time)"

logs=$(mktemp -d)
run_target() {
  cargo +nightly fuzz run --sanitizer none "$1" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=1024 -print_final_stats=1 \
    >"$logs/$1.log" 2>&1
}

failed=()
pids=()
names=()
wait_one() {
  local pid=${pids[0]} name=${names[0]}
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
  if ! wait "$pid"; then failed+=("$name"); fi
}
for target in "${targets[@]}"; do
  if ((${#pids[@]} >= jobs)); then wait_one; fi
  run_target "$target" &
  pids+=($!)
  names+=("$target")
done
while ((${#pids[@]} > 0)); do wait_one; done

for target in "${targets[@]}"; do
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' || echo '?')
  printf '%-12s %10s execs in %ss\n' "$target" "$execs" "$seconds"
done
if ((${#failed[@]} > 0)); then
  for target in "${failed[@]}"; do
    echo "=== FAILED: $target" >&2
    tail -n 60 "$logs/$target.log" >&2
  done
  echo "reproduce with: cd fuzz && cargo +nightly fuzz run --sanitizer none <target> artifacts/<target>/<file>" >&2
  exit 1
fi
echo "all fuzz targets ran ${seconds}s without a failure"
