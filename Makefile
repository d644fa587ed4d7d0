# vkv - top-level build.
#
#   make                  library, shim, tools and test programs into build/
#   make check            every test suite (calls scripts/setup.sh first)
#   make check SANITIZE=address,undefined    the same under ASan+UBSan
#   make check SANITIZE=thread               the same under TSan
#   make install PREFIX=/usr/local
#   make replay           the main job: vkvbench replay on the shipped trace
#
# Parts live in their own fragments (mk/*.mk); each appends its check target
# to CHECK_TARGETS.

VERSION_MAJOR := 0
VERSION_MINOR := 4
VERSION_PATCH := 0
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=

CC ?= cc
comma := ,
B := build
ifneq ($(SANITIZE),)
B := build/san-$(subst $(comma),-,$(SANITIZE))
endif

OPT ?= -O2
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
	-fno-strict-aliasing -pthread
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS_SAN := -fsanitize=$(SANITIZE)
# A UBSan report must fail the test that caused it, not scroll by.
ifneq ($(findstring undefined,$(SANITIZE)),)
CFLAGS_BASE += -fno-sanitize-recover=undefined
endif
endif
CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)
# The compiler writes each target's header dependencies beside it (x.o ->
# x.d, a program compiled in one step -> program.d): fragments compile with
# DEPFLAGS, list the files in DEP_FILES and make each target depend on its
# .d, so that one built before it had a .d is rebuilt once and no header
# change is missed.
DEPFLAGS := -MMD -MP
DEP_FILES :=
ALL_LDFLAGS = $(LDFLAGS_SAN) $(LDFLAGS) -pthread

SETUP := scripts/setup.sh
CHECK_TARGETS :=
ALL_TARGETS :=

.PHONY: all check install uninstall clean setup format
all: build-all

setup:
	@sh $(SETUP)

include tests/suites.mk
include mk/lib.mk
# lib/version.c checks these against include/vkv.h's VKV_VERSION_*.
$(B)/lib/version.o: ALL_CFLAGS += -DVKVI_MAKE_VERSION_MAJOR=$(VERSION_MAJOR) \
	-DVKVI_MAKE_VERSION_MINOR=$(VERSION_MINOR) \
	-DVKVI_MAKE_VERSION_PATCH=$(VERSION_PATCH)
include $(filter-out mk/lib.mk,$(sort $(wildcard mk/*.mk)))

build-all: $(ALL_TARGETS)
.PHONY: build-all

# Named as targets so that a missing one is made (by nothing) rather than
# skipped as an intermediate file, which rebuilds what depends on it.
$(DEP_FILES):
-include $(wildcard $(DEP_FILES))

# Every test suite. Setup first so that a fresh machine gets its packages.
check: setup
	@$(MAKE) --no-print-directory build-all
	@$(MAKE) --no-print-directory -k $(CHECK_TARGETS) && \
		echo "make check: all suites passed"

# vkv.pc is written here, not taken from the build: PREFIX may differ.
install: $(LIB_SO) $(LIB_A)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/linux \
		$(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/vkv.h $(DESTDIR)$(INCLUDEDIR)/vkv.h
	install -m 644 include/uapi/linux/vkv.h $(DESTDIR)$(INCLUDEDIR)/linux/vkv.h
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME_FULL)
	ln -sf $(LIB_SONAME_FULL) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libvkv.so
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libvkv.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    lib/vkv.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/vkv.pc
	@# Every page under man/, each into its section: man/man3/x.3 -> man3.
	@set -e; for f in $(wildcard man/man*/*.*); do \
		d=$$(basename $$(dirname $$f)); \
		echo "install -D -m 644 $$f $(DESTDIR)$(MANDIR)/$$d/$${f##*/}"; \
		install -D -m 644 $$f $(DESTDIR)$(MANDIR)/$$d/$${f##*/}; \
	done
	$(INSTALL_EXTRA)

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/vkv.h $(DESTDIR)$(INCLUDEDIR)/linux/vkv.h \
		$(DESTDIR)$(LIBDIR)/libvkv.* \
		$(DESTDIR)$(LIBDIR)/pkgconfig/vkv.pc
	rm -f $(foreach f,$(wildcard man/man*/*.*),\
		$(DESTDIR)$(MANDIR)/$(notdir $(patsubst %/,%,$(dir $(f))))/$(notdir $(f)))

format:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^kmod/')

clean:
	rm -rf build
