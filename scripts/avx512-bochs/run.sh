#!/usr/bin/env bash
# The AVX-512 build's test suite (RUSTFLAGS="-C target-cpu=x86-64-v4": wide's f32x16 on
# zmm registers) on a CPU without AVX-512. Each test executable of the root package boots
# its own Linux guest in Bochs, whose Skylake-X model has AVX-512 F/DQ/CD/BW/VL; the guest
# refuses to run a test unless its /proc/cpuinfo lists avx512f. Exits non-zero unless
# every executable passes. Results: target/avx512-bochs/runs/NAME.txt.
#
#   scripts/avx512-bochs/run.sh [BOCHS_CHECKOUT]
#
# BOCHS_CHECKOUT: a clone of https://github.com/bochs-emu/Bochs (cloned into
# target/avx512-bochs/Bochs when not given; run at 783b58fd6d9b). It needs Bochs newer
# than Debian 12's 2.7, which reports the standard XSAVE size where the compacted one is
# due, so the guest kernel turns XSAVE (and AVX) off; upstream fixed that in d794b516e.
# bochs-evex-vsib-index.patch fixes one more decoder bug, which the kernels tests hit:
# an EVEX gather/scatter with its index in zmm16-31 raised #UD.
#
# Not in .ci/run: CI machines cannot fetch Bochs's sources, and the run takes about eight
# minutes on two cores (~30 s of guest boot per executable). Needs Debian or Ubuntu
# (apt) and root for the packages it installs. JOBS=N guests at once (default 2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$root/target/avx512-bochs
jobs=${JOBS:-2}
mkdir -p "$work/runs"
say() { printf -- '--- %s\n' "$*"; }

say "packages: a C++ toolchain, ISO tools, a static busybox"
missing=()
for tool in g++:g++ make:make patch:patch strip:binutils genisoimage:genisoimage cpio:cpio \
  git:git; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
for package in isolinux syslinux-common busybox-static; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

say "Bochs: patched and built once (target/avx512-bochs/bochs)"
checkout=${1:-$work/Bochs}
[[ -d $checkout/bochs ]] || git clone https://github.com/bochs-emu/Bochs "$checkout"
bochs=$work/bochs
if [[ ! -x $bochs/bochs ]]; then
  rm -rf "$bochs"
  cp -a "$checkout/bochs" "$bochs"
  (
    cd "$bochs"
    patch -p2 <"$here/bochs-evex-vsib-index.patch"
    ./configure --enable-x86-64 --enable-avx --enable-evex --enable-cpu-level=6 \
      --enable-all-optimizations --enable-smp --enable-pci --disable-plugins \
      --enable-repeat-speedups --enable-handlers-chaining --enable-trace-linking --with-nogui
    make -j"$jobs"
  ) >"$work/bochs-build.log" 2>&1 || { tail -30 "$work/bochs-build.log"; exit 1; }
fi

say "guest kernel: Debian's linux-image-amd64"
if [[ ! -f $work/vmlinuz ]]; then
  package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  (cd "$work" && apt-get download "$package" && dpkg-deb -x "$package"_*.deb kernel)
  cp "$(ls "$work"/kernel/boot/vmlinuz-* | head -1)" "$work/vmlinuz"
fi

say "test executables: x86-64-v4, static"
RUSTFLAGS="-C target-cpu=x86-64-v4 -C target-feature=+crt-static" \
  CARGO_TARGET_DIR="$work/target" cargo test --release --all-features --no-run \
  --target x86_64-unknown-linux-gnu 2>&1 | tee "$work/tests-build.log" | tail -3
mapfile -t executables < <(sed -n 's/^ *Executable .*(\(.*\))$/\1/p' "$work/tests-build.log")

say "initramfs: busybox, the init script, ${#executables[@]} stripped executables, tests/data"
initramfs=$work/initramfs
rm -rf "$initramfs"
mkdir -p "$initramfs"/{bin,dev,proc,sys,tmp,tests}
cp /bin/busybox "$initramfs/bin/"
cp "$here/init" "$initramfs/init"
echo "$root" >"$initramfs/manifest-dir"
cp -a "$root/tests/data" "$initramfs/tests-data"
names=()
for executable in "${executables[@]}"; do
  name=$(basename "$executable")
  name=${name%-*} # the target's name, without cargo's hash
  [[ $executable == "$root"/* ]] || executable=$root/$executable
  strip -o "$initramfs/tests/$name" "$executable"
  names+=("$name")
done
(cd "$initramfs" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# One guest boot that runs the test executable $1; its console lines in runs/$1.txt.
boot() {
  local name=$1 dir=$work/runs/$1
  rm -rf "$dir"
  mkdir -p "$dir/iso/isolinux"
  cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 \
    "$work/vmlinuz" "$work/initrd.gz" "$dir/iso/isolinux/"
  cat >"$dir/iso/isolinux/isolinux.cfg" <<EOF
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=ttyS0,115200 loglevel=3 printk.devkmsg=on print-fatal-signals=1 log_buf_len=8M mitigations=off tsc=reliable run=$name
EOF
  genisoimage -quiet -o "$dir/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table -R -J "$dir/iso"
  cat >"$dir/bochsrc" <<EOF
megs: 2048
cpu: model=corei7_skylake_x, count=1, ips=200000000
romimage: file=$bochs/bios/BIOS-bochs-latest
vgaromimage: file=$bochs/bios/VGABIOS-lgpl/VGABIOS-lgpl-latest.bin
ata0-master: type=cdrom, path=$dir/boot.iso, status=inserted
boot: cdrom
display_library: nogui
com1: enabled=1, mode=file, dev=$dir/serial.txt
log: $dir/bochs.log
panic: action=fatal
error: action=report
clock: sync=none, time0=local
speaker: enabled=0
EOF
  local started=$SECONDS
  timeout 1800 "$bochs/bochs" -q -f "$dir/bochsrc" >"$dir/bochs.out" 2>&1 || true
  grep -a '@@' "$dir/serial.txt" | sed 's/^.*@@ //' >"$work/runs/$name.txt" || true
  echo "host seconds: $((SECONDS - started))" >>"$work/runs/$name.txt"
  rm -rf "$dir/iso" "$dir/boot.iso"
}
export -f boot
export work bochs

say "${#names[@]} guest boots, $jobs at a time"
printf '%s\n' "${names[@]}" | xargs -P "$jobs" -I{} bash -c 'boot "$1"' _ {}

say "results (PROPTEST_CASES=32)"
status=0
printf '%-16s %-6s %-7s %-7s %s\n' executable rc passed failed host_s
for name in "${names[@]}"; do
  result=$work/runs/$name.txt
  rc=$(sed -n "s/^=== END $name rc=\(.*\)$/\1/p" "$result")
  passed=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$result")
  failed=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$result")
  seconds=$(sed -n 's/^host seconds: //p' "$result")
  printf '%-16s %-6s %-7s %-7s %s\n' "$name" "${rc:-none}" "${passed:-?}" "${failed:-?}" "$seconds"
  [[ $rc == 0 ]] || status=1
done
grep -h '^=== avx512 flags' "$work"/runs/*.txt | sort -u
exit "$status"
