#!/bin/sh
# Install what building vkv.ko and running its tests in qemu need, on Debian 12:
#
#   - qemu-system-x86, busybox-static, e2fsprogs, cpio, xz-utils (the guest,
#     its disk, and the xz-compressed modules of newer kernels)
#   - linux-image-amd64 + linux-headers-amd64 (Debian's 6.1 LTS kernel)
#   - the 6.12 kernel image + headers from bookworm-backports
#   - dkms (make check-dkms builds the module through it)
#
# The backports suite is added as a file under /etc/apt/sources.list.d/,
# reusing the URI of the machine's own configured Debian source (deb822
# *.sources files or one-line sources.list entries). Idempotent: a machine
# that has everything is left untouched and no package index is fetched.
# Must run as root when anything is missing.
set -eu

say() { echo "setup-kmod: $*"; }
die() { echo "setup-kmod: $*" >&2; exit 1; }

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

# Is any package matching the dpkg glob installed?
any_installed() {
	dpkg-query -W -f='${Package} ${Status}\n' "$1" 2>/dev/null |
		grep -q " ok installed"
}

. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}
bpo="$codename-backports"
bpo_major=6.12

base_pkgs="build-essential make qemu-system-x86 busybox-static e2fsprogs cpio xz-utils \
kmod check libsubunit-dev linux-image-amd64 linux-headers-amd64 dkms"

# The debug kernel (scripts/build-debug-kernel.sh) is built from Debian's
# linux-source-6.1 package; libelf-dev is for objtool.
base_pkgs="$base_pkgs linux-source-6.1 bc bison flex libelf-dev libssl-dev"

missing=""
for p in $base_pkgs; do
	installed "$p" || missing="$missing $p"
done
need_bpo=0
if ! any_installed "linux-image-$bpo_major.*-amd64" ||
	! any_installed "linux-headers-$bpo_major.*-amd64"; then
	need_bpo=1
fi

if [ -z "$missing" ] && [ "$need_bpo" = 0 ]; then
	exit 0
fi
[ "$(id -u)" = 0 ] || die "missing packages:$missing (or the $bpo_major kernel); run as root: $0"

export DEBIAN_FRONTEND=noninteractive
updated=0

if [ -n "$missing" ]; then
	say "installing$missing"
	apt-get update -qq
	updated=1
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

[ "$need_bpo" = 1 ] || exit 0

# Print "URI<TAB>signed-by" of the first configured source that carries the
# release's main suite, from deb822 files and one-line lists.
find_debian_uri() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$codename" '
		function flush() {
			if (types ~ /(^|[ \t])deb($|[ \t])/ && enabled != "no") {
				n = split(suites, s, /[ \t]+/)
				for (i = 1; i <= n; i++)
					if (s[i] == suite) {
						split(uris, u, /[ \t]+/)
						printf "%s\t%s\n", u[1], signed
						found = 1
						exit
					}
			}
			types = suites = uris = signed = enabled = ""
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		{
			key = tolower($1); sub(/:$/, "", key)
			val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
			if (key == "types") types = val
			else if (key == "suites") suites = val
			else if (key == "uris") uris = val
			else if (key == "signed-by") signed = val
			else if (key == "enabled") enabled = tolower(val)
		}
		END { if (!found) flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v suite="$codename" '
		$1 != "deb" { next }
		{
			signed = ""
			i = 2
			if ($2 ~ /^\[/) {
				opts = ""
				for (; i <= NF; i++) {
					opts = opts " " $i
					if ($i ~ /\]$/) { i++; break }
				}
				if (match(opts, /signed-by=[^] \t]+/))
					signed = substr(opts, RSTART + 10, RLENGTH - 10)
			}
			if ($(i + 1) == suite) {
				printf "%s\t%s\n", $i, signed
				exit
			}
		}
		' "$f"
	done
}

# Is the backports suite configured already (by the admin or by us)?
have_bpo_suite() {
	grep -rqsE "^[^#]*[[:space:]]$bpo([[:space:]]|$)" \
		/etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

if ! have_bpo_suite; then
	line=$(find_debian_uri | head -n 1)
	[ -n "$line" ] || die "no Debian '$codename' source found in the apt configuration"
	uri=$(printf '%s' "$line" | cut -f1)
	signed=$(printf '%s' "$line" | cut -f2)
	out=/etc/apt/sources.list.d/vkv-$bpo.sources
	say "adding $bpo from $uri in $out"
	{
		echo "# Added by vkv scripts/setup-kmod.sh for the $bpo_major kernel."
		echo "Types: deb"
		echo "URIs: $uri"
		echo "Suites: $bpo"
		echo "Components: main"
		[ -z "$signed" ] || echo "Signed-By: $signed"
	} >"$out"
	updated=0
fi
[ "$updated" = 1 ] || apt-get update -qq

# The backports metapackage names the versioned image; take its dependency.
ver=$(apt-cache madison linux-image-amd64 | awk -F'|' -v s="$bpo" \
	'$3 ~ s"/" { gsub(/ /, "", $2); print $2; exit }')
[ -n "$ver" ] || die "linux-image-amd64 not found in $bpo"
img=$(apt-cache show "linux-image-amd64=$ver" |
	sed -n 's/^Depends:.*\(linux-image-[^ ,]*-amd64\).*/\1/p' | head -n 1)
case "$img" in
linux-image-$bpo_major.*) ;;
*) die "$bpo offers '$img', not a $bpo_major kernel" ;;
esac
hdr=$(echo "$img" | sed 's/^linux-image-/linux-headers-/')
say "installing $img $hdr from $bpo"
apt-get install -y -qq --no-install-recommends -t "$bpo" "$img" "$hdr" >/dev/null
exit 0
