#!/usr/bin/env bash
# Firmware: the head on QEMU's Cortex-M4F board (mps2-an386), from Rust (examples/firmware)
# and from C (examples/firmware-c over the thumbv7em static library of capi/). Every image
# must print exactly the host reference's lines (`reference compare`: the parameter hash
# and project / predict / loss of each twin it runs, each once, every float bit for bit;
# the Rust images also the official head imported from PyTorch, run from its parameter
# image in flash: tests/data/official_head.simsiam; and train the reference head for
# three SGD steps at batch 8 from a RAM copy of its parameters: `--train`);
# the Rust image's .text that simsiam's inference path adds, the training step's stack
# and the training RAM must stay within the budgets below; the C
# image's calls must stay within the stack include/simsiam.h documents; no image may hold
# a panic symbol. Installs what it uses on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$SECONDS
say() { printf -- '--- %s (%ss)\n' "$*" "$((SECONDS - started))"; }

# Budgets for the .text simsiam adds to the Rust firmware (inference path: from_params,
# project, predict, loss over the flash parameters, and the same from a parameter image:
# from_image with its CRC pass; one kernel twin linked), at opt-level "s" with fat LTO.
# Measured (see README, Firmware): SIMD 16 524 B, scalar 11 720 B. The 2-layer-only
# head before the layer-stack model added 9 600 / 4 680 B: BatchNorm, 3- and 4-layer
# stacks and the image parser cost the difference. The budgets leave about 10 % for
# growth; bringing the sizes down is the speed and footprint issue's (goal: 4 KiB for
# the faster twin's inference path).
TEXT_BUDGET_SIMD=${TEXT_BUDGET_SIMD:-19968}
TEXT_BUDGET_SCALAR=${TEXT_BUDGET_SCALAR:-14848}
# Training on the board (feature `train`, the images that run): one `Sgd::step` at batch 8
# on the reference head (64/128/64/32). Stack: the painted high-water mark of a step from
# the caller's SP, measured 4 852 B on both twins (budget +16 %). RAM: the image's
# .data + .bss, i.e. the training statics: parameters 66 560 + momentum 66 560 + scratch
# 97 408 (scratch_len 24 352 floats) + the batch 4 096 + the input gradients 4 096 =
# 238 720 B, plus 4 B (budget +15 %).
TRAIN_STACK_BUDGET=${TRAIN_STACK_BUDGET:-6400}
TRAIN_RAM_BUDGET=${TRAIN_RAM_BUDGET:-274432}
# The stack each C API call may use on the board (default config, painted from the
# caller's SP): what include/simsiam.h promises. Measured: project and predict 4 836 /
# 3 696 B, loss 6 152 / 5 268 B, loss_batch of 3 pairs 25 412 / 24 680 B (SIMD / scalar;
# up from 2 884 / 3 752 / 22 564 B on the SIMD twin before the layer-stack model).
declare -A STACK_BUDGET=([project]=6144 [predict]=6144 [loss]=6656 [loss_batch]=26624)
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

say "host reference tool (plain x86-64: its SIMD twin rounds as the Cortex-M's)"
CARGO_TARGET_DIR="$root/target/capi" cargo build -q --release -p simsiam-capi --example reference
reference="$root/target/capi/release/examples/reference"
# Bit-identity of the SIMD twin needs the reference's lanes to multiply then add, as
# wide's portable f32x8 does on thumbv7em; a build with FMA or AVX (a target-cpu in some
# cargo config) rounds differently. The scalar twin matches whatever the build.
arithmetic=$("$reference" print | sed -n 's/^# simd-arithmetic //p')
echo "reference simd-arithmetic: $arithmetic"
if [[ $arithmetic != portable:* ]]; then
  echo "the reference was built with fused or AVX lanes: build it for plain x86-64" >&2
  exit 1
fi

say "Rust firmware: build the SIMD, scalar and baseline images (opt-level s, fat LTO)"
# firmware-TWIN.elf: what runs (inference and training, the default features);
# firmware-TWIN-inference.elf (no training) and firmware-baseline.elf: the .text budgets.
(
  cd examples/firmware
  export CARGO_TARGET_DIR="$PWD/target"
  cargo clippy -q --release -- -D warnings
  cargo clippy -q --release --no-default-features --features baseline -- -D warnings
  for variant in simd scalar simd-inference scalar-inference baseline; do
    features=()
    [[ $variant == scalar* ]] && features=(--features scalar)
    [[ $variant == baseline ]] && features=(--features baseline)
    [[ $variant == *-inference || $variant == baseline ]] && features+=(--no-default-features)
    cargo build -q --release "${features[@]}"
    cp "target/$TARGET/release/simsiam-firmware" "$out/firmware-$variant.elf"
  done
)

# The Rust images also run the imported official head from its image in flash, and train.
official_image="$root/tests/data/official_head.simsiam"
for twin in simd scalar; do
  say "Rust firmware in QEMU: $twin twin (inference and 3 training steps), bit for bit against the host"
  run_qemu "$out/firmware-$twin.elf" "$out/firmware-$twin.txt"
  "$reference" compare "$out/firmware-$twin.txt" "$twin" --image-file "$official_image" --train
done

say "Rust firmware: a training step's stack and the training RAM (batch 8), budgets"
status=0
for twin in simd scalar; do
  elf="$out/firmware-$twin.elf"
  stack=$(sed -n 's/^# train stack: step \([0-9]*\) bytes.*/\1/p' "$out/firmware-$twin.txt")
  printed=$(sed -n 's/^# train ram: .*; total \([0-9]*\) bytes.*/\1/p' "$out/firmware-$twin.txt")
  ram=$(($(size "$elf" .data) + $(size "$elf" .bss)))
  # The statics' sizes as the linker placed them: what the image printed, byte for byte.
  statics=$("${nm[@]}" -C -S --radix=d "$elf" | awk '
    $4 ~ /^simsiam_firmware::train::ram::TRAIN_[A-Z_]+::/ {
      name = $4; sub(/^simsiam_firmware::train::ram::/, "", name); sub(/::.*/, "", name)
      printf "%s %d\n", name, $2 + 0 }')
  sum=$(awk '{ s += $2 } END { print s + 0 }' <<<"$statics")
  printf '%-6s Sgd::step at batch 8: stack %6s B (budget %d B); RAM .data + .bss %d B (budget %d B)\n' \
    "$twin" "${stack:-?}" "$TRAIN_STACK_BUDGET" "$ram" "$TRAIN_RAM_BUDGET"
  printf '         training statics (nm): %s; total %d B (the image printed %s B)\n' \
    "$(awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $1, $2 }' <<<"$statics")" "$sum" "${printed:-?}"
  if [[ -z $stack ]] || ((stack > TRAIN_STACK_BUDGET)); then
    echo "the $twin training step's stack (${stack:-not printed} B) is over $TRAIN_STACK_BUDGET B" >&2
    status=1
  fi
  if ((ram > TRAIN_RAM_BUDGET)); then
    echo "the $twin training image's RAM ($ram B) is over $TRAIN_RAM_BUDGET B" >&2
    status=1
  fi
  if [[ $(wc -l <<<"$statics") != 5 || $sum != "${printed:-}" ]]; then
    echo "the $twin image's training statics (nm: $sum B) are not the $printed B it printed" >&2
    status=1
  fi
done
((status == 0))

say "Rust firmware: .text simsiam adds (inference image minus the baseline image), budgets, panic symbols"
base=$(size "$out/firmware-baseline.elf" .text)
status=0
for variant in simd scalar; do
  elf="$out/firmware-$variant-inference.elf"
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
  train_elf="$out/firmware-$variant.elf"
  printf '%-7s with training: .text %6d B (training adds %d B, not budgeted)\n' "$variant" \
    "$(size "$train_elf" .text)" "$(($(size "$train_elf" .text) - text))"
  no_panic "$train_elf"
  echo "largest simsiam / libm / wide symbols ($variant, inference image):"
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

say "C firmware in QEMU: both twins, bit for bit against the host; stack against the header"
run_qemu "$out/firmware-c.elf" "$out/firmware-c.txt"
"$reference" compare "$out/firmware-c.txt" simd,scalar
for twin in simd scalar; do
  line=$(grep "^# $twin stack: " "$out/firmware-c.txt" || true)
  for call in project predict loss loss_batch; do
    if [[ $call == loss_batch ]]; then
      used=$(sed -n 's/.* loss_batch of [0-9]* pairs \([0-9]*\) bytes.*/\1/p' <<<"$line")
    else
      used=$(sed -n "s/.* $call \([0-9]*\)[, ].*/\1/p" <<<"$line")
    fi
    printf '%-6s simsiam_%-10s stack %6s B (include/simsiam.h: under %d B)\n' \
      "$twin" "$call" "${used:-?}" "${STACK_BUDGET[$call]}"
    if [[ -z $used ]] || ((used >= STACK_BUDGET[$call])); then
      echo "simsiam_$call on the $twin twin: stack ${used:-not printed}, over what the header says" >&2
      exit 1
    fi
  done
done

say "firmware done"
