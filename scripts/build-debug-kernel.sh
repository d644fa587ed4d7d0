#!/bin/sh
# Build the debug kernel the guest suites also run on: Debian's
# linux-source-6.1 with lockdep, KASAN, kmemleak, DEBUG_VM, atomic-sleep
# and hung-task checks (tests/vm/debug.config), everything the guest needs
# built in.
#
#   scripts/build-debug-kernel.sh [OUTDIR]      (default build/kdebug)
#
# The tree is built once and kept in OUTDIR/linux-<key>, where <key> hashes
# the source package's version and the config fragment: a new source or a
# changed fragment builds a new tree (and removes the old one). OUTDIR/current
# points at the finished tree; out-of-tree modules build against it with
# `make -C OUTDIR/current M=...`, and its image is arch/x86/boot/bzImage.
# Needs only Debian packages (scripts/setup-kmod.sh installs them).
set -eu

say() { echo "kdebug: $*"; }
die() { echo "kdebug: $*" >&2; exit 1; }

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/kdebug}
pkg=linux-source-6.1
tarball=/usr/src/$pkg.tar.xz
frag=$top/tests/vm/debug.config

ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
	die "$pkg is not installed (sh scripts/setup-kmod.sh)"
[ -r "$tarball" ] || die "$tarball missing (sh scripts/setup-kmod.sh)"
key=$({ echo "$pkg $ver"; cat "$frag"; } | sha256sum | cut -c1-12)
tree=$out/linux-$key

mkdir -p "$out"
if [ -f "$tree/.vkv-built" ]; then
	ln -sfn "linux-$key" "$out/current"
	exit 0
fi

start=$(date +%s)
say "building $pkg $ver with $(basename "$frag") in $tree ($(nproc) jobs)"
# An interrupted build goes on where it stopped (same key, same sources).
if [ ! -f "$tree.tmp/.vkv-extracted" ]; then
	rm -rf "$tree.tmp"
	mkdir -p "$tree.tmp"
	tar -xJf "$tarball" -C "$tree.tmp" --strip-components=1
	touch "$tree.tmp/.vkv-extracted"
fi

kmake() { make -C "$tree.tmp" -s ARCH=x86_64 "$@"; }
kmake allnoconfig KCONFIG_ALLCONFIG="$frag" >/dev/null
# Kconfig drops a forced symbol silently when a dependency is missing: an
# option the run depends on must not vanish unnoticed.
lost=$(grep -E '^CONFIG_[A-Z0-9_]+=' "$frag" | while IFS= read -r l; do
	grep -qxF "$l" "$tree.tmp/.config" || echo "$l"
done)
[ -z "$lost" ] || die "the kernel config lost: $lost"

# All of vmlinux, bzImage and Module.symvers, which out-of-tree builds need.
kmake -j"$(nproc)" >"$tree.tmp/.vkv-build.log" 2>&1 || {
	tail -40 "$tree.tmp/.vkv-build.log" >&2
	die "kernel build failed (log: $tree.tmp/.vkv-build.log)"
}
# Sources are no longer needed to build modules or boot; objects are.
find "$tree.tmp" -name '*.o' ! -path '*/scripts/*' ! -path '*/tools/*' -delete

secs=$(($(date +%s) - start))
echo "$secs" >"$tree.tmp/.vkv-build-seconds"
touch "$tree.tmp/.vkv-built"
for old in "$out"/linux-*; do
	[ "$old" = "$tree.tmp" ] || rm -rf "$old"
done
mv "$tree.tmp" "$tree"
ln -sfn "linux-$key" "$out/current"
say "built $(make -C "$tree" -s kernelrelease) in ${secs}s;" \
	"bzImage $(du -k "$tree/arch/x86/boot/bzImage" | cut -f1) KiB," \
	"tree $(du -sm "$tree" | cut -f1) MiB"
