#!/usr/bin/env bash
# Firmware: the head on QEMU's Cortex-M4F board (mps2-an386), from Rust (examples/firmware)
# and from C (examples/firmware-c over the thumbv7em static library of capi/). Both images
# must print the host's values within the parity tolerance; the Rust image's .text that
# simsiam adds must stay within the budgets below; no image may hold a panic symbol.
# Installs what it uses on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$SECONDS
say() { printf -- '--- %s (%ss)\n' "$*" "$((SECONDS - started))"; }

# Budgets for the .text simsiam adds to the Rust firmware (inference path: from_params,
# project, predict, loss over the flash parameters, one kernel twin linked), at
# opt-level "s" with fat LTO. Measured (see README, Firmware): SIMD 9 112 B, scalar
# 4 504 B; the budgets leave about 20 % for growth.
TEXT_BUDGET_SIMD=${TEXT_BUDGET_SIMD:-11264}
TEXT_BUDGET_SCALAR=${TEXT_BUDGET_SCALAR:-5632}
# The parity suite's tolerance on a unit-vector entry or the loss (tests/parity.rs).
TOLERANCE=2e-5
TARGET=thumbv7em-none-eabihf
QEMU=(qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none
  -semihosting-config enable=on,target=native -icount shift=0)

export CARGO_TERM_COLOR=never
# RUSTFLAGS from the environment would replace the firmware's `-Tlink.x` (.cargo/config.toml).
unset RUSTFLAGS CARGO_BUILD_TARGET
out="$root/target/firmware-out"
mkdir -p "$out"

say "install QEMU, the Arm GCC toolchain and newlib, the Rust target and llvm-tools (only what is missing)"
missing=()
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v arm-none-eabi-gcc >/dev/null || missing+=(gcc-arm-none-eabi)
dpkg -s libnewlib-arm-none-eabi >/dev/null 2>&1 || missing+=(libnewlib-arm-none-eabi)
if ((${#missing[@]})); then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
rustup target add "$TARGET"
rustup component add llvm-tools
tools=$(dirname "$(ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-nm)")
nm=("$tools/llvm-nm")
size() { "$tools/llvm-size" -A "$1" | awk -v s="$2" '$1 == s { print $2 }'; }

run_qemu() { # ELF OUTPUT
  timeout 120 "${QEMU[@]}" -kernel "$1" >"$2"
  cat "$2"
}

no_panic() { # ELF
  if "${nm[@]}" -C "$1" | grep -i -E 'panic|rust_begin_unwind'; then
    echo "$1 holds panic symbols (above)" >&2
    exit 1
  fi
  echo "$(basename "$1"): no panic symbols"
}

say "host reference tool"
CARGO_TARGET_DIR="$root/target/capi" cargo build -q --release -p simsiam-capi --example reference
reference="$root/target/capi/release/examples/reference"

say "Rust firmware: build the SIMD, scalar and baseline images (opt-level s, fat LTO)"
(
  cd examples/firmware
  export CARGO_TARGET_DIR="$PWD/target"
  cargo clippy -q --release -- -D warnings
  for variant in simd scalar baseline; do
    features=()
    [[ $variant != simd ]] && features=(--features "$variant")
    cargo build -q --release "${features[@]}"
    cp "target/$TARGET/release/simsiam-firmware" "$out/firmware-$variant.elf"
  done
)

say "Rust firmware in QEMU: SIMD twin"
run_qemu "$out/firmware-simd.elf" "$out/firmware-simd.txt"
"$reference" compare "$out/firmware-simd.txt" "$TOLERANCE"
say "Rust firmware in QEMU: scalar twin"
run_qemu "$out/firmware-scalar.elf" "$out/firmware-scalar.txt"
"$reference" compare "$out/firmware-scalar.txt" "$TOLERANCE"

say "Rust firmware: .text simsiam adds (image minus the baseline image), budgets, panic symbols"
base=$(size "$out/firmware-baseline.elf" .text)
status=0
for variant in simd scalar; do
  elf="$out/firmware-$variant.elf"
  text=$(size "$elf" .text)
  added=$((text - base))
  budget=TEXT_BUDGET_${variant^^}
  printf '%-7s .text %6d B, baseline %6d B, simsiam adds %6d B (budget %d B); .rodata %d B\n' \
    "$variant" "$text" "$base" "$added" "${!budget}" "$(size "$elf" .rodata)"
  if ((added > ${!budget})); then
    echo "over budget: the $variant inference path adds $added B > ${!budget} B" >&2
    status=1
  fi
  no_panic "$elf"
  echo "largest simsiam / libm / wide symbols ($variant):"
  "${nm[@]}" -C --size-sort -S --radix=d "$elf" | grep -E ' [tT] ' |
    grep -E 'simsiam::|simsiam\.\.|libm::|wide::|run::' | tail -n 8 |
    awk '{ size = $2 + 0; $1 = $2 = $3 = ""; printf "  %5d %s\n", size, $0 }'
done
((status == 0))

say "C firmware: thumbv7em static library (opt-level s, fat LTO), parameters as C, arm-none-eabi-gcc"
CARGO_TARGET_DIR="$root/target/capi" CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort \
  cargo build -q --release -p simsiam-capi --target "$TARGET"
"$reference" c-params >"$out/params.c"
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os -g -std=c11 \
  -Wall -Wextra -Werror -ffunction-sections -fdata-sections -Iinclude \
  --specs=rdimon.specs -nostartfiles -T examples/firmware-c/link.ld \
  examples/firmware-c/startup.c examples/firmware-c/main.c "$out/params.c" \
  "$root/target/capi/$TARGET/release/libsimsiam_capi.a" \
  -Wl,--gc-sections -Wl,--no-warn-execstack -o "$out/firmware-c.elf"
printf 'C image: .text %d B, .rodata %d B\n' "$(size "$out/firmware-c.elf" .text)" \
  "$(size "$out/firmware-c.elf" .rodata)"
no_panic "$out/firmware-c.elf"

say "C firmware in QEMU: both twins"
run_qemu "$out/firmware-c.elf" "$out/firmware-c.txt"
"$reference" compare "$out/firmware-c.txt" "$TOLERANCE"

say "firmware done"
