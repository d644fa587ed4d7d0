# Man pages: man/man3/vkv_*.3 for every function libvkv exports (a page per
# family, ".so" link pages for the other names), and the pages of the other
# sections under man/. `make install` installs every file under man/.
#
#   make check-man   every name in lib/libvkv.map has a page whose SYNOPSIS
#                    is include/vkv.h's prototype; every page lints clean
#                    (groff -ww, man --warnings). check-install runs the
#                    same check on the installed pages.

.PHONY: check-man
CHECK_TARGETS += check-man

check-man:
	@sh scripts/check-man.sh lib/libvkv.map include/vkv.h man
