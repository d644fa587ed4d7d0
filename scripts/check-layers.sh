#!/bin/sh
# check-layers.sh - check that libvkv's files call only downward.
#
#   scripts/check-layers.sh [-t lib/LAYERS] [OBJDIR]      (default build/lib)
#
# The call graph between files is read from the compiled objects: a file
# calls another when one of its undefined symbols (nm -u) is a global the
# other defines (nm --defined-only). Calls through function pointers (the
# backend and tier operation tables) are not seen, and need not be: they go
# down to what the caller was handed. Fails, naming file and symbol, on
#   - an object whose file is not in the layer table,
#   - a call from a file to a file of a higher layer,
#   - any cycle of calls between files, whatever their layers.
set -eu

table=lib/LAYERS
if [ "${1:-}" = "-t" ]; then
	table=$2
	shift 2
fi
objdir=${1:-build/lib}
NM=${NM:-nm}

[ -r "$table" ] || { echo "check-layers: no layer table $table" >&2; exit 2; }
set -- "$objdir"/*.o
[ -e "$1" ] || { echo "check-layers: no objects in $objdir" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

for o in "$@"; do
	f=$(basename "$o" .o)
	# Globals only (upper-case types); a versioned name counts as its base.
	"$NM" --defined-only "$o" |
		awk -v f="$f" 'NF >= 3 && $2 ~ /^[A-Zi]$/ {
			s = $3; sub(/@.*/, "", s); print "D", f, s }'
	"$NM" -u "$o" | awk -v f="$f" '{ s = $NF; sub(/@.*/, "", s);
		print "U", f, s }'
done >"$tmp/syms"

awk -v table="$table" '
BEGIN {
	nl = 0
	while ((getline line < table) > 0) {
		sub(/#.*/, "", line)
		n = split(line, w, /[ \t]+/)
		first = 1
		for (i = 1; i <= n; i++) {
			if (w[i] == "")
				continue
			if (first) {
				lname[++nl] = w[i]
				first = 0
				continue
			}
			layer[w[i]] = nl
		}
	}
}
$1 == "D" { def[$3] = $2; files[$2] = 1; next }
$1 == "U" { files[$2] = 1; nu++; uf[nu] = $2; us[nu] = $3; next }
END {
	bad = 0
	for (f in files)
		if (!(f in layer)) {
			printf "check-layers: lib/%s.c is in no layer of %s\n", \
				f, table
			bad = 1
		}
	for (i = 1; i <= nu; i++) {
		s = us[i]; from = uf[i]
		if (!(s in def) || def[s] == from)
			continue
		to = def[s]
		key = from SUBSEP to
		if (!(key in edge)) {
			edge[key] = s
			nadj[from]++
			adj[from, nadj[from]] = to
		} else if (index(" " edge[key] " ", " " s " ") == 0) {
			edge[key] = edge[key] " " s
		}
	}
	for (key in edge) {
		split(key, p, SUBSEP)
		if ((p[1] in layer) && (p[2] in layer) && layer[p[1]] < layer[p[2]]) {
			printf "check-layers: upward call %s.c (%s) -> %s.c (%s): %s\n", \
				p[1], lname[layer[p[1]]], p[2], lname[layer[p[2]]], edge[key]
			bad = 1
		}
	}
	# Depth-first search; a back edge closes a cycle, printed edge by edge.
	for (f in files)
		color[f] = 0
	ncyc = 0
	for (f in files)
		if (color[f] == 0)
			dfs(f, 0)
	if (ncyc)
		bad = 1
	if (bad)
		exit 1
	nf = 0; ne = 0
	for (f in files) nf++
	for (key in edge) ne++
	printf "check-layers: %d files, %d file-level call edges, all downward, no cycle\n", nf, ne
}
function dfs(f, depth,    i, t, j, k) {
	color[f] = 1
	stack[depth] = f
	for (i = 1; i <= nadj[f]; i++) {
		t = adj[f, i]
		if (color[t] == 1) {
			ncyc++
			printf "check-layers: call cycle:\n"
			for (j = 0; j <= depth; j++)
				if (stack[j] == t)
					break
			for (k = j; k <= depth; k++) {
				nxt = (k < depth) ? stack[k + 1] : t
				printf "    %s.c -> %s.c: %s\n", stack[k], nxt, \
					edge[stack[k] SUBSEP nxt]
			}
		} else if (color[t] == 0) {
			dfs(t, depth + 1)
		}
	}
	color[f] = 2
}
' "$tmp/syms"
