#!/bin/sh
# Boot one Debian kernel in qemu with a busybox initramfs holding vkv.ko and
# the statically linked test programs, run the suites, and judge the log.
#
#   tests/vm/run.sh RELEASE MODULE BINDIR OUTDIR SUITE[:params] ...
#
# RELEASE  kernel release; boots /boot/vmlinuz-RELEASE and takes the virtio,
#          ext4 and crc32c modules from /lib/modules/RELEASE (none when the
#          kernel has them built in)
# MODULE   vkv.ko built for that release
# BINDIR   holds the statically linked suites: every SUITE is a program
#          there (insmod parameters after ':', comma separated)
# OUTDIR   where the initramfs, the disk image and console.log go
#
# Environment: CK_RUN_CASE=<case> runs only that TCase of each suite,
# VKV_VM_KVM=1 uses KVM (default: TCG emulation),
# VKV_VM_TIMEOUT (seconds, default 900), VKV_VM_MEM (MiB, default 512),
# VKV_VM_DEBUG=0 boots without slub_debug and page poisoning (benchmarks),
# VKV_VM_KERNEL and VKV_VM_KCONFIG boot another image with its config (a
# kernel not under /boot, such as the debug kernel of
# scripts/build-debug-kernel.sh).
# Exit status 0 only if every suite passed and the guest log shows no BUG:,
# WARNING: (lockdep's reports among them), Oops, KASAN report, kmemleak
# suspect, hung or soft-locked task, or list_del corruption, and lockdep, if
# the kernel has it, is still on at the end.
set -eu

rel=$1 ko=$2 bin=$3 out=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
timeout_s=${VKV_VM_TIMEOUT:-900}
mem=${VKV_VM_MEM:-512}

kernel=${VKV_VM_KERNEL:-/boot/vmlinuz-$rel}
kconfig=${VKV_VM_KCONFIG:-/boot/config-$rel}
[ -r "$kernel" ] || { echo "vm: $kernel missing or unreadable" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "vm: qemu-system-x86_64 missing (sh scripts/setup.sh kmod)" >&2; exit 1; }
PATH=$PATH:/usr/sbin:/sbin
for tool in modprobe cpio mkfs.ext4 xz; do
	command -v "$tool" >/dev/null || { echo "vm: $tool missing (sh scripts/setup.sh kmod)" >&2; exit 1; }
done
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "vm: busybox missing" >&2; exit 1; }

mkdir -p "$out"
root=$out/root
rm -rf "$root"
mkdir -p "$root/bin" "$root/tests" "$root/modules" "$root/proc" "$root/sys" \
	"$root/dev" "$root/tmp" "$root/mnt"
cp "$busybox" "$root/bin/busybox"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init"
cp "$ko" "$root/vkv.ko"
[ ! -x "$bin/vkvctl" ] || cp "$bin/vkvctl" "$root/bin/vkvctl"
# Dynamically linked programs for test_shim_kmod, with the libraries they load.
if [ -d "$bin/shim" ]; then
	cp -r "$bin/shim" "$root/shim"
	for f in "$root"/shim/*; do ldd "$f" 2>/dev/null; done |
		awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' | sort -u |
		while read -r lib; do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done
fi

# The guest needs virtio block, ext4 and crc32c (for vkv's crc32c()); take
# them with their dependencies, in load order, uncompressed.
: > "$root/modules/order"
for m in virtio_pci virtio_blk crc32c_generic ext4 libcrc32c; do
	modprobe -S "$rel" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r path; do
	name=$(basename "$path")
	case "$name" in
	*.ko.xz) xz -dc "$path" > "$root/modules/${name%.xz}"; name=${name%.xz} ;;
	*.ko.zst) zstd -qdc "$path" > "$root/modules/${name%.zst}"; name=${name%.zst} ;;
	*.ko.gz) gzip -dc "$path" > "$root/modules/${name%.gz}"; name=${name%.gz} ;;
	*) cp "$path" "$root/modules/$name" ;;
	esac
	echo "$name" >> "$root/modules/order"
done
grep -q '^ext4\.ko$' "$root/modules/order" || grep -q '^CONFIG_EXT4_FS=y' "$kconfig" 2>/dev/null ||
	{ echo "vm: no ext4 module for $rel in /lib/modules/$rel" >&2; exit 1; }

: > "$root/tests/list"
for s in "$@"; do
	name=${s%%:*}
	params=
	case "$s" in *:*) params=$(echo "${s#*:}" | tr ',' ' ') ;; esac
	cp "$bin/$name" "$root/tests/$name"
	echo "$name $params" >> "$root/tests/list"
done
# One TCase of each suite only, when CK_RUN_CASE names one.
printf '%s\n' "${CK_RUN_CASE:-}" > "$root/tests/case"

(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out/initramfs.gz"

disk=$out/disk.img
rm -f "$disk"
truncate -s 1G "$disk"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$disk"

debug="slub_debug=FZPU page_poison=1"
[ "${VKV_VM_DEBUG:-1}" = 1 ] || debug=
# KASAN checks what slub_debug would, and more. Its stack trace on every
# allocation and free makes ACPI's bytecode so slow in a TCG guest that the
# PCI interrupt routing method (_PRT) runs into ACPI's loop timeout and the
# soft-lockup detector fires at boot: the BIOS's routing table does instead.
# With it, MSI finds no interrupt domain for virtio and WARNs: legacy
# interrupts then.
grep -q '^CONFIG_KASAN=y' "$kconfig" 2>/dev/null && debug=pci=noacpi,nomsi

accel="-accel tcg -cpu max"
if [ "${VKV_VM_KVM:-0}" = 1 ]; then
	accel="-accel kvm -cpu host"
fi

log=$out/console.log
echo "vm: booting $rel ($([ "${VKV_VM_KVM:-0}" = 1 ] && echo KVM || echo TCG), ${mem} MiB, timeout ${timeout_s}s); log in $log"
set +e
# shellcheck disable=SC2086
timeout "$timeout_s" qemu-system-x86_64 $accel -m "$mem" \
	-smp 2,sockets=2,cores=1,threads=1 \
	-numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1 \
	-object memory-backend-ram,id=m0,size=$((mem / 2))M \
	-object memory-backend-ram,id=m1,size=$((mem - mem / 2))M \
	-kernel "$kernel" -initrd "$out/initramfs.gz" \
	-append "console=ttyS0 panic=-1 oops=panic loglevel=5 $debug" \
	-drive "file=$disk,if=virtio,format=raw,cache=unsafe" \
	-nographic -no-reboot -monitor none -serial stdio < /dev/null > "$log" 2>&1
qrc=$?
set -e
tr -d '\r' < "$log" > "$log.txt"
mv "$log.txt" "$log"

fail=0
if [ $qrc = 124 ]; then
	echo "vm: $rel: timed out after ${timeout_s}s"
	fail=1
fi
grep -E "^(VKV-RESULT|VKV-SKIP|VKV-ERROR|VKV-BENCH)" "$log" || true
for s in "$@"; do
	name=${s%%:*}
	if ! grep -q "^VKV-RESULT $name PASS" "$log"; then
		echo "vm: $rel: suite $name did not pass"
		fail=1
	fi
done
grep -q "^VKV-DONE" "$log" || { echo "vm: $rel: guest did not finish"; fail=1; }
# Lockdep, DEBUG_ATOMIC_SLEEP and KASAN report as "WARNING:" or "BUG:";
# kmemleak's suspects are printed by init.sh after a final scan.
if grep -nE "BUG:|WARNING:|Oops|KASAN|unreferenced object|suspected memory leak|blocked for more than|soft lockup|list_del corruption|general protection|Kernel panic|RIP: 0010:" "$log"; then
	echo "vm: $rel: kernel problems in the guest log"
	fail=1
fi
# A lockdep that switched itself off (it does after its first report, or when
# its tables overflow) vouches for nothing after that point.
if grep -q "^VKV-LOCKDEP debug_locks=0" "$log"; then
	echo "vm: $rel: lockdep was off by the end of the run"
	fail=1
fi
grep -E "^VKV-BENCH" "$log" > "$out/bench.txt" || true
if [ $fail = 0 ]; then
	echo "vm: $rel: all suites passed"
else
	echo "vm: $rel: FAILED (console log: $log)"
	grep -E "^[0-9]+%: Checks|:[A-Z][a-z]+:|VKV-" "$log" | tail -40
fi
exit $fail
