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
# thumbv7em has no vector unit, so both twins link the same register-blocked scalar
# kernels (simsiam::kernels::VECTOR_UNIT). Measured (see README, Firmware): 13 804 B
# (before: SIMD 16 524 B on wide's scalar emulation, scalar 11 720 B one row at a time).
# The budget leaves about 10 % for growth; the speed and footprint issue aims at 4 KiB.
TEXT_BUDGET_SIMD=${TEXT_BUDGET_SIMD:-15104}
TEXT_BUDGET_SCALAR=${TEXT_BUDGET_SCALAR:-15104}
# Instructions of one default `loss` on either twin (SysTick under -icount shift=0, as the
# image prints it): 81 480 measured (2.49 per multiply-add of its 32 768, the issue's
# goal is 2.5; before: SIMD 278 800, scalar 153 600). The budget is that goal, 81 920:
# a slower kernel shape fails CI.
LOSS_INSTRUCTIONS_BUDGET=${LOSS_INSTRUCTIONS_BUDGET:-81920}
# Training on the board (feature `train`, the images that run): one `Sgd::step` at batch 8
# on the reference head (64/128/64/32). Stack: the painted high-water mark of a step from
# the caller's SP (the README's Firmware table gives the measured value). RAM: the image's
# .data + .bss, i.e. the training statics: parameters 66 560 + momentum 66 560 + scratch
# 97 408 (scratch_len 24 352 floats) + the batch 4 096 + the input gradients 4 096 =
# 238 720 B, plus 4 B (budget +15 %).
TRAIN_STACK_BUDGET=${TRAIN_STACK_BUDGET:-6400}
TRAIN_RAM_BUDGET=${TRAIN_RAM_BUDGET:-274432}
# The stack each C API call may use on the board (default config, painted from the
# caller's SP): what include/simsiam.h promises. Measured: project and predict 4 272 /
# 4 280 B, loss 4 872 B, loss_batch of 3 pairs 4 272 B (both twins: thumbv7em has no
# vector unit; the batch's lane blocks are in the caller's workspace since the speed and
# footprint issue: before, 25 412 / 24 680 B SIMD / scalar).
declare -A STACK_BUDGET=([project]=6144 [predict]=6144 [loss]=6656 [loss_batch]=6144)
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
  local symbols
  # nm's own status first: a failing nm must not read as "no panic symbols".
  symbols=$("${nm[@]}" -C "$1")
  if [[ -z $symbols ]]; then
    echo "nm listed no symbols in $1" >&2
    exit 1
  fi
  if grep -i -E 'panic|rust_begin_unwind' <<<"$symbols"; then
    echo "$1 holds panic symbols (above)" >&2
    exit 1
  fi
  echo "$(basename "$1"): no panic symbols"
}

say "host reference tool"
CARGO_TARGET_DIR="$root/target/capi" cargo build --locked -q --release -p simsiam-capi --example reference
reference="$root/target/capi/release/examples/reference"
# thumbv7em has no vector unit, so the firmware's SIMD twin runs the scalar twin's kernels
# (simsiam::kernels::VECTOR_UNIT): its `.simd` lines must hold the host's scalar values
# (`--simd-as-scalar`), bit for bit whatever the host's own SIMD arithmetic.

say "Rust firmware: build the SIMD, scalar and baseline images (opt-level s, fat LTO)"
# firmware-TWIN.elf: what runs (inference and training, the default features);
# firmware-TWIN-inference.elf (no training) and firmware-baseline.elf: the .text budgets.
(
  cd examples/firmware
  export CARGO_TARGET_DIR="$PWD/target"
  cargo clippy --locked -q --release -- -D warnings
  cargo clippy --locked -q --release --no-default-features --features baseline -- -D warnings
  for variant in simd scalar simd-inference scalar-inference baseline; do
    features=()
    [[ $variant == scalar* ]] && features=(--features scalar)
    [[ $variant == baseline ]] && features=(--features baseline)
    [[ $variant == *-inference || $variant == baseline ]] && features+=(--no-default-features)
    cargo build --locked -q --release "${features[@]}"
    cp "target/$TARGET/release/simsiam-firmware" "$out/firmware-$variant.elf"
  done
)

# The Rust images also run the imported official head from its image in flash, and train.
official_image="$root/tests/data/official_head.simsiam"
for twin in simd scalar; do
  say "Rust firmware in QEMU: $twin twin (inference and 3 training steps), bit for bit against the host"
  run_qemu "$out/firmware-$twin.elf" "$out/firmware-$twin.txt"
  "$reference" compare "$out/firmware-$twin.txt" "$twin" --image-file "$official_image" --train \
    --simd-as-scalar
  loss=$(sed -n 's/^# instructions: .* loss \([0-9]*\) (SysTick.*/\1/p' "$out/firmware-$twin.txt")
  printf '%-7s one loss: %s instructions, %s per multiply-add of 32 768 (budget %d)\n' "$twin" \
    "${loss:-?}" "$(awk -v n="${loss:-0}" 'BEGIN { printf "%.2f", n / 32768 }')" \
    "$LOSS_INSTRUCTIONS_BUDGET"
  if [[ -z $loss ]] || ((loss > LOSS_INSTRUCTIONS_BUDGET)); then
    echo "the $twin twin's loss took ${loss:-no reported} instructions > $LOSS_INSTRUCTIONS_BUDGET" >&2
    exit 1
  fi
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
  cargo build --locked -q --release -p simsiam-capi --target "$TARGET"
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
"$reference" compare "$out/firmware-c.txt" simd,scalar --simd-as-scalar
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

# SimSiam trained on the board (issue 22): examples/firmware-ssl trains hapt-mcu from a seed on
# a slice of HAPT in flash and classifies test windows few-shot before and after; the host
# replay (hapt/examples/mcu_replay.rs, the same run.rs) must print every loss, parameter hash,
# prediction and the accuracy line bit for bit. Budgets: RAM (.data + .bss + the painted
# stack) <= 512 KiB (hard; the goal is 256 KiB, see README), after >= before + 5 points on
# >= 120 test windows, no panic symbols. Measured: 369 836 B RAM, 58.9 -> 69.4 % on 180,
# 13.2 M instructions a step, about 30 s in QEMU.
SSL_RAM_BUDGET=${SSL_RAM_BUDGET:-524288}
say "SSL firmware: build (opt-level s, fat LTO) and the host replay"
(
  cd examples/firmware-ssl
  export CARGO_TARGET_DIR="$PWD/target"
  cargo clippy --locked -q --release -- -D warnings
  cargo build --locked -q --release
  cp "target/$TARGET/release/simsiam-firmware-ssl" "$out/firmware-ssl.elf"
)
cargo build --locked -q --release -p simsiam-hapt --example mcu_replay
no_panic "$out/firmware-ssl.elf"
say "SSL firmware in QEMU: 500 SimSiam steps, few-shot before and after, bit for bit against the host"
run_qemu "$out/firmware-ssl.elf" "$out/firmware-ssl.txt" | grep -v -E '^# (loss|predictions) '
"$root/target/release/examples/mcu_replay" "$out/firmware-ssl.txt" | tail -n 1
summary=$(grep '^mcu-ssl: recipe ' "$out/firmware-ssl.txt" || true)
accuracy=$(grep '^mcu-ssl: few-shot accuracy ' "$out/firmware-ssl.txt" || true)
read -r ram stack < <(sed -n 's/^mcu-ssl: recipe [a-z0-9-]* steps [0-9]* batch [0-9]* params [0-9]* ram \([0-9]*\) B stack \([0-9]*\) B instructions\/step [0-9]*$/\1 \2/p' <<<"$summary")
read -r before after tests < <(sed -n 's/^mcu-ssl: few-shot accuracy before \([0-9.]*\) % after \([0-9.]*\) % on \([0-9]*\) test windows$/\1 \2 \3/p' <<<"$accuracy")
elf_ram=$(($(size "$out/firmware-ssl.elf" .data) + $(size "$out/firmware-ssl.elf" .bss)))
printf 'SSL image: RAM %s B = .data + .bss %d B + stack %s B (budget %d B, goal 262144 B); few-shot %s %% -> %s %% on %s test windows\n' \
  "${ram:-?}" "$elf_ram" "${stack:-?}" "$SSL_RAM_BUDGET" "${before:-?}" "${after:-?}" "${tests:-?}"
if [[ -z ${ram:-} || -z ${before:-} ]]; then
  echo "the SSL image did not print its two mcu-ssl lines in the documented format" >&2
  exit 1
fi
if ((ram != elf_ram + stack)); then
  echo "the SSL image's RAM ($ram B) is not its .data + .bss ($elf_ram B) + stack ($stack B)" >&2
  exit 1
fi
if ((ram > SSL_RAM_BUDGET)); then
  echo "the SSL image's RAM ($ram B) is over $SSL_RAM_BUDGET B" >&2
  exit 1
fi
if ((tests < 120)) || ! awk -v b="$before" -v a="$after" 'BEGIN { exit !(a >= b + 5) }'; then
  echo "few-shot accuracy after training ($after %) is not 5 points above before ($before %) on >= 120 windows ($tests)" >&2
  exit 1
fi

say "SSL firmware from C: examples/firmware-ssl-c over the thumbv7em static library, the slice from the host replay"
"$root/target/release/examples/mcu_replay" --write-data "$out/ssl-data"
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os -g -std=c11 \
  -Wall -Wextra -Werror -ffunction-sections -fdata-sections -Iinclude "-Wa,-I$out/ssl-data" \
  --specs=rdimon.specs -nostartfiles -T examples/firmware-c/link.ld \
  examples/firmware-c/startup.c examples/firmware-ssl-c/main.c examples/firmware-ssl-c/data.S \
  "$root/target/capi/$TARGET/release/libsimsiam_capi.a" \
  -Wl,--gc-sections -Wl,--no-warn-execstack -o "$out/firmware-ssl-c.elf"
no_panic "$out/firmware-ssl-c.elf"
say "SSL firmware from C in QEMU: the same lines as the Rust image and the host, bit for bit"
run_qemu "$out/firmware-ssl-c.elf" "$out/firmware-ssl-c.txt" | grep -v -E '^# (loss|predictions) '
"$root/target/release/examples/mcu_replay" "$out/firmware-ssl-c.txt" | tail -n 1
c_ram=$(sed -n 's/^mcu-ssl: recipe .* ram \([0-9]*\) B stack .*/\1/p' "$out/firmware-ssl-c.txt")
if [[ -z $c_ram ]] || ((c_ram > SSL_RAM_BUDGET)); then
  echo "the C SSL image's RAM (${c_ram:-not printed} B) is over $SSL_RAM_BUDGET B" >&2
  exit 1
fi

say "firmware done"
