#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-symbols.sh MAP [libvkv.a] [libvkv.so...] - the library defines no
# global symbol a program could collide with.
#
#   libvkv.a   every global symbol it defines is a public name of MAP (or a
#              versioned alias of one, name@VKV_x.y, in a node MAP lists it
#              in) or an internal one, vkvi_*.
#   libvkv.so  it exports exactly the name@version pairs of MAP (each name
#              in every node that lists it, the default version being the
#              newest) and the version nodes themselves; nothing else.
#
# Exits 1 naming every offending symbol, 2 on bad usage.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 MAP LIBRARY..." >&2
	exit 2
fi
map=$1
shift
[ -r "$map" ] || { echo "$0: cannot read $map" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "name node" for every name in every node's global: list, in file order.
sed -e 's|/\*.*\*/||g' "$map" | awk '
	/^\/\*/ { incomment = 1 }
	incomment { if ($0 ~ /\*\//) incomment = 0; next }
	/^[A-Za-z_][A-Za-z0-9_.]*[ \t]*\{/ { node = $1; sub(/\{.*/, "", node); global = 0; next }
	/^}/ { node = ""; next }
	/global:/ { global = 1; sub(/.*global:/, "") }
	/local:/ { global = 0; next }
	node != "" && global {
		n = split($0, w, /[ \t;]+/)
		for (i = 1; i <= n; i++)
			if (w[i] ~ /^[A-Za-z_][A-Za-z0-9_]*$/)
				print w[i], node
	}' > "$tmp/pairs"
[ -s "$tmp/pairs" ] || { echo "$0: no symbols in $map" >&2; exit 2; }
awk '{ print $2 }' "$tmp/pairs" | sort -u > "$tmp/nodes"
awk '{ print $1 }' "$tmp/pairs" | sort -u > "$tmp/names"
# The default version of each name: the last node that lists it.
awk '{ last[$1] = $2 } END { for (n in last) print n "@@" last[n] }' \
	"$tmp/pairs" | sort > "$tmp/defaults"
awk '{ print $1 "@" $2 }' "$tmp/pairs" | sort > "$tmp/versioned"

fail=0
bad() {
	echo "check-symbols: $1" >&2
	fail=1
}

check_archive() {
	nm -g --defined-only "$1" | awk 'NF == 3 { print $3 }' | sort -u |
	while read -r sym; do
		base=${sym%%@*}
		case $sym in
		vkvi_*) continue ;;
		esac
		if ! grep -qx "$base" "$tmp/names"; then
			echo "$sym"
			continue
		fi
		case $sym in
		*@@*) grep -qx "$sym" "$tmp/defaults" || echo "$sym" ;;
		*@*) grep -qx "$sym" "$tmp/versioned" || echo "$sym" ;;
		esac
	done > "$tmp/bad"
	if [ -s "$tmp/bad" ]; then
		bad "$1 defines globals that are neither public (in $map) nor vkvi_:"
		sed 's/^/  /' "$tmp/bad" >&2
	fi
}

check_shared() {
	nm -D --defined-only "$1" | awk 'NF == 3 { print $2, $3 }' > "$tmp/dyn"
	# The version nodes are exported as absolute symbols of their own.
	awk '$1 == "A" { print $2 }' "$tmp/dyn" | sort > "$tmp/got_nodes"
	awk '$1 != "A" { print $2 }' "$tmp/dyn" | sort > "$tmp/got"
	if ! cmp -s "$tmp/got_nodes" "$tmp/nodes"; then
		bad "$1: version nodes differ from $map's (< map, > library):"
		diff "$tmp/nodes" "$tmp/got_nodes" | grep '^[<>]' >&2 || true
	fi
	# What the library should export: each default, and each other pair.
	{
		cat "$tmp/defaults"
		sed 's/@@/@/' "$tmp/defaults" > "$tmp/defaults1"
		grep -vxF -f "$tmp/defaults1" "$tmp/versioned" || true
	} | sort > "$tmp/want"
	if ! cmp -s "$tmp/got" "$tmp/want"; then
		bad "$1 exports differ from $map (< map, > library):"
		diff "$tmp/want" "$tmp/got" | grep '^[<>]' >&2 || true
	fi
}

for lib in "$@"; do
	[ -r "$lib" ] || { echo "$0: cannot read $lib" >&2; exit 2; }
	case $lib in
	*.a) check_archive "$lib" ;;
	*) check_shared "$lib" ;;
	esac
done
[ "$fail" = 0 ] || exit 1
echo "check-symbols: $* keep to $map"
