#!/bin/sh
# `make install-kmod` for real, DKMS and all, without changing this machine:
# run in a private mount namespace (unshare -m) where /etc, /usr/src,
# /usr/lib (so /lib/modules and /lib/udev), /usr/local and /var/lib/dkms
# are overlays whose writes land in a tmpfs that vanishes with the
# namespace. Then check what an administrator would find: the vkv group,
# the udev rule, the modprobe.d file, vkvctl, and vkv.ko installed by DKMS
# for every kernel with headers, with that kernel's vermagic.
#
#   unshare -m sh dist/check-install.sh VERSION
#
# Called by `make check-dkms`; needs root and dkms.
set -eu

ver=$1
die() { echo "check-install: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root"
command -v dkms >/dev/null || die "dkms missing (sh scripts/setup.sh kmod)"

scratch=$(mktemp -d)
mount -t tmpfs vkv-check "$scratch"
for d in /etc /usr/src /usr/lib /usr/local /var/lib/dkms; do
	[ -d "$d" ] || die "$d missing"
	n=$(echo "$d" | tr / _)
	mkdir -p "$scratch/$n/upper" "$scratch/$n/work"
	mount -t overlay overlay \
		-o "lowerdir=$d,upperdir=$scratch/$n/upper,workdir=$scratch/$n/work" "$d"
done

# The udev daemon outside must not be told about rules it cannot see.
make --no-print-directory -s install-kmod UDEV_RELOAD=0 > "$scratch/install.log" 2>&1 ||
	{ cat "$scratch/install.log"; die "make install-kmod failed"; }

getent group vkv >/dev/null || die "no vkv group"
rules=/lib/udev/rules.d/60-vkv.rules
grep -q '^KERNEL=="vkv", SUBSYSTEM=="misc", GROUP="vkv", MODE="0660"$' "$rules" ||
	die "$rules: missing or wrong"
[ -f /etc/modprobe.d/vkv.conf ] || die "no /etc/modprobe.d/vkv.conf"
[ -x /usr/local/sbin/vkvctl ] || die "no /usr/local/sbin/vkvctl"
/usr/local/sbin/vkvctl --help | grep -q metrics || die "vkvctl does not run"
[ -f "/usr/src/vkv-$ver/dkms.conf" ] || die "no /usr/src/vkv-$ver/dkms.conf"

n=0
for k in /lib/modules/*/build; do
	[ -e "$k/include" ] || continue
	rel=$(basename "$(dirname "$k")")
	n=$((n + 1))
	ko=$(ls /lib/modules/"$rel"/updates/dkms/vkv.ko* 2>/dev/null | head -1)
	[ -n "$ko" ] || { cat "$scratch/install.log"; die "$rel: no vkv.ko installed"; }
	modinfo -F vermagic "$ko" | grep -q "^$rel " || die "$ko: wrong vermagic"
	modinfo -F name "$ko" | grep -qx vkv || die "$ko: not vkv"
	dkms status -m vkv -v "$ver" -k "$rel" | grep -q installed ||
		die "$rel: dkms does not say installed"
	# Every option the modprobe.d example names exists in the module.
	for p in $(sed -n 's/^#*options vkv //p' /etc/modprobe.d/vkv.conf |
		tr ' ' '\n' | cut -d= -f1); do
		modinfo -p "$ko" | grep -q "^$p:" ||
			die "vkv.conf names $p, which $ko lacks"
	done
	# And so does modprobe: it resolves the installed module by name.
	modprobe -S "$rel" --show-depends vkv | grep -q "updates/dkms/vkv.ko" ||
		die "$rel: modprobe does not find the installed vkv"
	echo "check-install: $rel: $ko"
done
[ $n -gt 0 ] || die "no kernel headers"

# An existing modprobe.d file is kept on reinstall.
echo "options vkv max_user_pool_mb=1" > /etc/modprobe.d/vkv.conf
make --no-print-directory -s install-kmod-files > /dev/null
grep -qx "options vkv max_user_pool_mb=1" /etc/modprobe.d/vkv.conf ||
	die "reinstall replaced /etc/modprobe.d/vkv.conf"

make --no-print-directory -s uninstall-kmod > "$scratch/uninstall.log" 2>&1 ||
	{ cat "$scratch/uninstall.log"; die "make uninstall-kmod failed"; }
! ls /lib/modules/*/updates/dkms/vkv.ko* >/dev/null 2>&1 || die "uninstall left vkv.ko"
[ ! -e "/usr/src/vkv-$ver" ] || die "uninstall left /usr/src/vkv-$ver"
echo "check-install: make install-kmod and uninstall-kmod passed for $n kernel(s)"
