#!/bin/sh
# Install the Debian packages that building and testing vkv need, when they
# are missing. Idempotent: a machine that has everything is left untouched and
# no package index is fetched. Must run as root when anything is missing.
#
#   scripts/setup.sh          userspace build and tests
#   scripts/setup.sh kmod     also what the kernel-module tests in qemu need
#   scripts/setup.sh bench    also what `make bench` needs (fio, gnuplot)
#   scripts/setup.sh python   also what the Python binding needs (`make python`,
#                             `make check-python`, `make bench-python`)
set -eu

pkgs="build-essential pkg-config libnuma-dev liburing-dev check groff-base"
# `make bench` also compares against fio and draws plots with gnuplot.
if [ "${1:-}" = bench ]; then
	pkgs="$pkgs fio gnuplot-nox"
fi
# The binding is built and tested with Debian's /usr/bin/python3 and these
# packages for it; its tests hand tensors to numpy and PyTorch.
if [ "${1:-}" = python ]; then
	pkgs="$pkgs python3-dev python3-numpy python3-torch python3-pytest"
fi

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: missing packages:$missing; run as root: $0" >&2
		exit 1
	fi
	echo "setup: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ "${1:-}" = kmod ] && [ -x "$(dirname "$0")/setup-kmod.sh" ]; then
	exec "$(dirname "$0")/setup-kmod.sh"
fi
exit 0
