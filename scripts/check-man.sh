#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-man.sh MAP HEADER MANROOT - every public function has a true man page.
#
#   - each name exported by MAP has MANROOT/man3/<name>.3, a page of its own
#     or a ".so man3/<page>.3" link to the page of its family, whose NAME
#     line lists it;
#   - that page's SYNOPSIS has the prototype HEADER declares, word for word;
#   - every function a man3 page names in its NAME line is in MAP, and its
#     .TH names the version HEADER is (vkv X.Y.Z), on every page;
#     a .BR reference to a vkv page names a page that exists;
#   - every page under MANROOT (any section) passes groff -ww and, where man
#     is installed, man --warnings; man3 pages have the sections of man-pages(7).
#
# MANROOT is the tree's man/ or an installed share/man. Exits 1 naming what
# is wrong, 2 on bad usage.
set -eu

if [ $# -ne 3 ]; then
	echo "usage: $0 MAP HEADER MANROOT" >&2
	exit 2
fi
map=$1
header=$2
root=$3
for f in "$map" "$header"; do
	[ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 2; }
done
[ -d "$root/man3" ] || { echo "$0: no man3 under $root" >&2; exit 2; }

command -v groff >/dev/null 2>&1 ||
	{ echo "$0: groff is missing (scripts/setup.sh installs groff-base)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() {
	echo "check-man: $*" >&2
	fail=1
}

# The map's names: identifiers in global: sections.
sed -e 's|/\*.*\*/||g' "$map" | awk '
	/^\/\*/ { c = 1 } c { if ($0 ~ /\*\//) c = 0; next }
	/^}/ { g = 0; next }
	/global:/ { g = 1; sub(/.*global:/, "") }
	/local:/ { g = 0; next }
	g { n = split($0, w, /[ \t;]+/)
	    for (i = 1; i <= n; i++) if (w[i] ~ /^[A-Za-z_][A-Za-z0-9_]*$/) print w[i] }' |
	sort -u > "$tmp/names"
[ -s "$tmp/names" ] || { echo "$0: no names in $map" >&2; exit 2; }

# Spaces only where two words meet, so layouts compare equal.
norm() {
	tr '\n\t' '  ' | sed -e 's/  */ /g' -e 's/ *\([][(),;*]\) */\1/g' \
		-e 's/^ //' -e 's/ $//'
}

# The header's declarations, comments and preprocessor lines dropped, one
# per line.
awk '
	{ line = $0 }
	c { if (line ~ /\*\//) { sub(/.*\*\//, "", line); c = 0 } else next }
	{ while (match(line, /\/\*/)) {
		rest = substr(line, RSTART + 2)
		if (match(rest, /\*\//)) line = substr(line, 1, index(line, "/*") - 1) substr(rest, RSTART + 2)
		else { line = substr(line, 1, index(line, "/*") - 1); c = 1 } } }
	line ~ /^#/ { next }
	{ printf "%s ", line }' "$header" | tr ';' '\n' > "$tmp/decls"

# The page a name's page links to (or the page itself).
target() {
	first=$(head -n 1 "$1")
	case $first in
	".so "*) echo "$root/${first#.so }" ;;
	*) echo "$1" ;;
	esac
}

while read -r name; do
	page=$root/man3/$name.3
	if [ ! -f "$page" ]; then
		bad "$name has no page ($page)"
		continue
	fi
	t=$(target "$page")
	if [ ! -f "$t" ]; then
		bad "$page links to $t, which does not exist"
		continue
	fi
	# NAME: the line after .SH NAME, before "\-".
	sed -n '/^\.SH NAME/{n;p;q}' "$t" | sed 's/ *\\-.*//' | tr ',' '\n' |
		sed 's/^ *//; s/ *$//' > "$tmp/listed"
	grep -qx "$name" "$tmp/listed" || bad "$t: NAME does not list $name"
	want=$(grep -E "(^|[ *])$name\(" "$tmp/decls" | head -n 1 | norm)
	if [ -z "$want" ]; then
		bad "$name is in $map but not declared in $header"
		continue
	fi
	sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$t" | grep -E '^\.BI? ' |
		grep -vE '^\.BI? "?#' |
		sed -e 's/^\.BI* //' -e 's/"//g' | norm | sed 's/;/;\n/g' |
		sed 's/^ //' > "$tmp/synopsis"
	grep -qxF "$want;" "$tmp/synopsis" ||
		bad "$t: SYNOPSIS lacks $header's prototype: $want;"
done < "$tmp/names"

version=$(for part in MAJOR MINOR PATCH; do
	sed -n "s/^#define VKV_VERSION_$part \([0-9][0-9]*\)\$/\1/p" "$header"
done | paste -sd.)
case $version in
*.*.*) ;;
*) echo "$0: no VKV_VERSION_MAJOR/MINOR/PATCH in $header" >&2; exit 2 ;;
esac

for page in "$root"/man*/*; do
	[ -f "$page" ] || continue
	rel=${page#"$root"/}
	first=$(head -n 1 "$page")
	case $first in
	".so "*)
		[ -f "$root/${first#.so }" ] || bad "$page: .so to a missing page"
		continue ;;
	esac
	# .so requests and man's own look-ups resolve from the root.
	out=$(cd "$root" && groff -man -ww -z "$rel" 2>&1) || true
	[ -z "$out" ] || bad "$page: groff: $out"
	if command -v man >/dev/null 2>&1; then
		out=$(cd "$root" && MANWIDTH=80 man --warnings -l "$rel" 2>&1 >/dev/null) || true
		[ -z "$out" ] || bad "$page: man: $out"
	fi
	# Every page speaks of the version the header is.
	grep -q "^\.TH [^ ]* [0-9] [^ ]* \"vkv $version\" " "$page" ||
		bad "$page: .TH does not name vkv $version"
	# A reference to one of our pages names a page that exists.
	sed -n 's/^\.BR \(vkv[a-z0-9_]*\) (\([0-9]\)).*/\1.\2/p' "$page" |
	while read -r ref; do
		[ -f "$root/man${ref##*.}/$ref" ] || echo "$page: SEE ALSO $ref, no such page"
	done > "$tmp/refs"
	[ ! -s "$tmp/refs" ] || bad "$(cat "$tmp/refs")"
	case $rel in
	man3/*)
		for sec in NAME SYNOPSIS DESCRIPTION "RETURN VALUE" ERRORS "SEE ALSO"; do
			grep -q "^\.SH \"*$sec\"*\$" "$page" || bad "$page: no $sec section"
		done
		sed -n '/^\.SH NAME/{n;p;q}' "$page" | sed 's/ *\\-.*//' |
			tr ',' '\n' | sed 's/^ *//; s/ *$//' |
		while read -r fn; do
			case $fn in
			vkv_*) grep -qx "$fn" "$tmp/names" ||
				echo "$page: NAME lists $fn, which libvkv does not export" ;;
			esac
		done > "$tmp/stale"
		[ ! -s "$tmp/stale" ] || bad "$(cat "$tmp/stale")"
		;;
	esac
done

[ "$fail" = 0 ] || exit 1
echo "check-man: $(wc -l < "$tmp/names") functions of $map have true pages under $root"
