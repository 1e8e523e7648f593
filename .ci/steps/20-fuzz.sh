#!/usr/bin/env bash
# cargo-fuzz targets (issues 5, 9): build them all, then run each for a bounded time from
# the committed seed corpus (fuzz/corpus/<target>/seed-*). Fails on any crash, panic,
# failed assertion, timeout or out-of-memory report (and prints the reproducer); when
# `cargo fuzz list` is not exactly the EXPECTED targets below (a missing target would
# otherwise pass silently, and a new one must be added here with its minimum); and when a
# target reports no execution count or fewer executions than its minimum (a target that
# stops early or returns before reaching the code under test).
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

source ../.ci/nightly.sh # NIGHTLY, the pinned toolchain
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# The targets, each with its minimum number of executions per 30 s of fuzzing (scaled to
# FUZZ_SECONDS). On this 2-core machine, 30 s with 2 jobs gave construct 465k, forward
# 91k, kernels 1.57M, params_view 415k executions on a quiet machine and 289k / 57k /
# 674k / 246k on a loaded one; with forward's per-case bound oracle (fuzz/src/lib.rs),
# on a machine also compiling: 267k / 39k / 1.02M / 283k (2026-11-30). The minimums are
# about a quarter of the loaded numbers (image, added with the parameter image: 4.27M
# alone on a machine also running miri and QEMU, 2026-11-30; its minimum is an eighth;
# train, added with on-device training: 326k beside the other targets on a shared
# machine, 207k with three targets on the two cores, from an empty corpus),
# so noise never trips them while a target that
# stops early or rejects its input before the code under test does.
# Exactly these targets must exist (a new one needs its line here).
declare -A MIN_EXECS_PER_30S=(
  [construct]=70000
  [forward]=10000
  [image]=500000
  [kernels]=160000
  [params_view]=60000
  [train]=50000
)
EXPECTED=("${!MIN_EXECS_PER_30S[@]}")

cargo +"$NIGHTLY" fuzz build --sanitizer none
mapfile -t targets < <(cargo +"$NIGHTLY" fuzz list)
if [[ "$(printf '%s\n' "${targets[@]}" | sort)" != "$(printf '%s\n' "${EXPECTED[@]}" | sort)" ]]; then
  echo "FAIL: cargo fuzz list gives [${targets[*]}], expected [${EXPECTED[*]}]:" >&2
  echo "a target is missing, or a new one needs its entry in EXPECTED and MIN_EXECS_PER_30S" >&2
  exit 1
fi
echo "fuzz targets: ${targets[*]} (${seconds}s each, $jobs at a time)"

logs=$(mktemp -d)
run_target() {
  cargo +"$NIGHTLY" fuzz run --sanitizer none "$1" -- \
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

too_few=()
for target in "${targets[@]}"; do
  minimum=$((MIN_EXECS_PER_30S[$target] * seconds / 30))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' | tail -n 1 || true)
  if [[ -z "$execs" ]]; then
    printf '%-12s %10s execs in %ss: FAIL, no execution count in its log\n' "$target" "none" "$seconds"
    too_few+=("$target")
  elif ((execs < minimum)); then
    printf '%-12s %10d execs in %ss: FAIL, minimum %d\n' "$target" "$execs" "$seconds" "$minimum"
    too_few+=("$target")
  else
    printf '%-12s %10d execs in %ss (minimum %d)\n' "$target" "$execs" "$seconds" "$minimum"
  fi
done
for target in "${too_few[@]}"; do
  if [[ " ${failed[*]} " != *" $target "* ]]; then failed+=("$target"); fi
done
if ((${#failed[@]} > 0)); then
  for target in "${failed[@]}"; do
    echo "=== FAILED: $target" >&2
    tail -n 60 "$logs/$target.log" >&2
  done
  echo "reproduce with: cd fuzz && cargo +$NIGHTLY fuzz run --sanitizer none <target> artifacts/<target>/<file>" >&2
  exit 1
fi
echo "all fuzz targets ran ${seconds}s without a failure"
