#!/usr/bin/env bash
# Runs benches/head.rs under three flag sets, each in its own target dir, one after the
# other (all binaries are built first, so no compile overlaps a measurement), then writes
# the results table (benchmarks/results.md, also spliced into BENCHMARKS.md between its
# results markers) and the plot (benchmarks/head.svg).
#
#   scripts/bench_all.sh            # everything (~15 min on 2 cores)
#   scripts/bench_all.sh 'default/' # extra arguments are criterion filters
set -euo pipefail
cd "$(dirname "$0")/.."

names=(default x86-64-v3 native)
flags=("" "-C target-cpu=x86-64-v3" "-C target-cpu=native")
dirs=(target/speed-default target/speed-v3 target/speed-native)

for i in 0 1 2; do
  echo "=== build ${names[$i]} (RUSTFLAGS='${flags[$i]}')"
  RUSTFLAGS="${flags[$i]}" CARGO_TARGET_DIR="${dirs[$i]}" cargo bench --bench head --no-run
done
for i in 0 1 2; do
  echo "=== run ${names[$i]} (RUSTFLAGS='${flags[$i]}')"
  rm -rf "${dirs[$i]}/criterion"
  RUSTFLAGS="${flags[$i]}" CARGO_TARGET_DIR="${dirs[$i]}" cargo bench --bench head -- "$@" \
    | tee "${dirs[$i]}/bench-head.log"
done

mkdir -p benchmarks
python3 scripts/plot_benchmarks.py \
  --machine "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')" \
  "default=${dirs[0]}/criterion" \
  "x86-64-v3=${dirs[1]}/criterion" \
  "native=${dirs[2]}/criterion" \
  --table benchmarks/results.md --svg benchmarks/head.svg --splice BENCHMARKS.md
echo "wrote benchmarks/results.md, benchmarks/head.svg and the tables in BENCHMARKS.md"
