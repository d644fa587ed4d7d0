# vkv.ko and its tests in qemu.
#
#   make kmod           build vkv.ko against every kernel whose headers are
#                       installed (/lib/modules/*/build); KDIR=<dir> picks one
#   make check-kmod     setup (scripts/setup.sh kmod), build, then boot every
#                       kernel that has headers and /boot/vmlinuz-<release> in
#                       qemu and run the in-guest suites (tests/vm/)
#                       and then the debug kernel too (VM_DEBUG_KERNEL=0
#                       skips it)
#   make kdebug         build the debug kernel (lockdep, KASAN, kmemleak,
#                       DEBUG_VM, ...) once, cached in build/kdebug/
#   VKV_VM_KVM=1        use KVM instead of TCG emulation
#   VKV_VM_TIMEOUT=900  seconds per guest boot (debug kernel: 2400 unless set)
#
# Modules are built out of tree in $(B)/kmod/<release>/ (a copy of Kbuild
# and kmod/), so the source tree stays clean and kernels do not collide.
# The in-guest test programs are linked statically and without sanitizers.

KMOD_SRCS := Kbuild $(wildcard kmod/*.c kmod/*.h include/uapi/linux/*.h)
KMOD_KDIRS = $(if $(KDIR),$(KDIR),$(wildcard /lib/modules/*/build))
KMOD_OUT := $(B)/kmod

# The guest suites and the benchmark are tests/suites.mk's.
VM_TESTS := $(GUEST_SUITES) $(GUEST_BENCH) vkvctl
VM_BIN := $(KMOD_OUT)/bin
VM_OBJ := $(KMOD_OUT)/obj
VM_BINS := $(patsubst %,$(VM_BIN)/%,$(VM_TESTS))
VM_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O2 -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -pthread \
	-Iinclude/uapi -Ilib -Itests/vm
VM_LIBS := $(shell pkg-config --static --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm) -pthread
# Suites in the order the guest runs them; ':' adds insmod parameters.
# The benchmark runs in a second boot without the debug options.
VM_SUITES ?= $(GUEST_SUITES)
VM_BENCH ?= $(GUEST_BENCH)

# The debug kernel (scripts/build-debug-kernel.sh, tests/vm/debug.config) is
# kept under build/ whatever the sanitizer build directory, and rebuilt only
# when the source package or the config fragment changes.
KDEBUG_OUT ?= build/kdebug
KDEBUG_TREE := $(abspath $(KDEBUG_OUT))/current
VM_DEBUG_KERNEL ?= 1
# Under KASAN and lockdep the guest runs the same suites several times slower.
VM_DEBUG_TIMEOUT ?= 2400

.PHONY: kmod kmod-tests check-kmod kdebug kmod-debug

kdebug:
	@sh scripts/build-debug-kernel.sh $(KDEBUG_OUT)

# vkv.ko for the debug kernel, in $(KMOD_OUT)/<its release>/ like the others.
kmod-debug: kdebug
	@$(MAKE) --no-print-directory kmod KDIR=$(KDEBUG_TREE)

kmod: $(KMOD_SRCS)
	@set -e; kdirs="$(KMOD_KDIRS)"; \
	if [ -z "$$kdirs" ]; then \
		echo "kmod: no kernel headers in /lib/modules/*/build (sh scripts/setup.sh kmod)" >&2; \
		exit 1; fi; \
	for k in $$kdirs; do \
		case $$k in \
		/lib/modules/*/build) rel=$$(basename $$(dirname $$k)) ;; \
		*) rel=$$($(MAKE) -s --no-print-directory -C $$k kernelrelease) ;; \
		esac; \
		out=$(KMOD_OUT)/$$rel; \
		mkdir -p $$out/kmod $$out/include/uapi/linux; \
		cp Kbuild $$out/; cp kmod/*.c kmod/*.h $$out/kmod/; \
		cp include/uapi/linux/*.h $$out/include/uapi/linux/; \
		echo "  KMOD    $$rel"; \
		$(MAKE) -s --no-print-directory -C $$k M=$$(cd $$out && pwd) modules \
			2>&1 | grep -v "Skipping BTF generation" || true; \
		test -f $$out/vkv.ko || { echo "kmod: build for $$rel failed" >&2; exit 1; }; \
	done

# Guest objects mirror their source's path under $(VM_OBJ).
$(VM_OBJ)/%.o: %.c $(VM_OBJ)/%.d
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(VM_BIN)/test_%: $(VM_OBJ)/tests/vm/test_%.o
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) -static -o $@ $< $(VM_LIBS)

VM_KMOD_CLIENT_OBJS := $(VM_OBJ)/tests/vm/test_kmod_client.o $(VM_OBJ)/lib/kmod_client.o
$(VM_BIN)/test_kmod_client: $(VM_KMOD_CLIENT_OBJS)
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) -static -o $@ $(VM_KMOD_CLIENT_OBJS) $(VM_LIBS)

# libvkv itself over the module: the public header only, so no -Iinclude/uapi.
$(VM_BIN)/test_lib: tests/vm/test_lib.c $(LIB_A) $(VM_BIN)/test_lib.d
	@mkdir -p $(@D)
	@# glibc warns that dlopen (of libcuda) needs shared libraries at run
	@# time: true, and the guest has none, so the cuda backend says -ENODEV.
	$(CC) -std=c11 -D_GNU_SOURCE -g -O2 -Wall -Wextra -Werror -pthread -Iinclude \
		$(DEPFLAGS) -static -o $@ $< $(LIB_A) -lnuma -luring -ldl $(VM_LIBS) 2> $@.log || \
		{ cat $@.log; exit 1; }

$(VM_BIN)/bench_kmod: $(VM_OBJ)/tests/vm/bench_kmod.o
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) -static -o $@ $< $(VM_LIBS)

# vkvctl: admin tool (tools/vkvctl); built with the rest, and statically for
# the guest, where test_vkvctl drives it.
VKVCTL := $(B)/vkvctl
VKVCTL_SRCS := $(sort $(wildcard tools/vkvctl/*.c))
VKVCTL_OBJS := $(patsubst tools/vkvctl/%.c,$(B)/tools/vkvctl/%.o,$(VKVCTL_SRCS))
VM_VKVCTL_OBJS := $(patsubst %.c,$(VM_OBJ)/%.o,$(VKVCTL_SRCS))
ALL_TARGETS += $(VKVCTL)

$(B)/tools/vkvctl/%.o: tools/vkvctl/%.c $(B)/tools/vkvctl/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(VKVCTL): $(VKVCTL_OBJS)
	$(CC) -o $@ $(VKVCTL_OBJS) $(ALL_LDFLAGS)

$(VM_BIN)/vkvctl: $(VM_VKVCTL_OBJS)
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) -static -o $@ $(VM_VKVCTL_OBJS)

VM_OBJS := $(patsubst %,$(VM_OBJ)/tests/vm/%.o,$(filter-out test_lib,$(GUEST_SUITES)) \
	$(GUEST_BENCH)) $(VM_OBJ)/lib/kmod_client.o $(VM_VKVCTL_OBJS)
DEP_FILES += $(VM_OBJS:.o=.d) $(VKVCTL_OBJS:.o=.d) $(VM_BIN)/test_lib.d
.SECONDARY: $(VM_OBJS) $(VKVCTL_OBJS)

kmod-tests: $(VM_BINS)

# Every kernel with both headers and an image is booted; fails if none is.
check-kmod:
	@sh $(SETUP) kmod
	@$(MAKE) --no-print-directory kmod kmod-tests
	@set -e; n=0; fail=0; \
	for d in $(KMOD_OUT)/*/; do \
		rel=$$(basename $$d); \
		[ -f $$d/vkv.ko ] && [ -r /boot/vmlinuz-$$rel ] || continue; \
		n=$$((n + 1)); \
		sh tests/vm/run.sh $$rel $$d/vkv.ko $(VM_BIN) $(KMOD_OUT)/vm/$$rel $(VM_SUITES) || fail=1; \
		if [ -n "$(VM_BENCH)" ]; then VKV_VM_DEBUG=0 sh tests/vm/run.sh $$rel $$d/vkv.ko \
			$(VM_BIN) $(KMOD_OUT)/vm/$$rel-bench $(VM_BENCH) || fail=1; fi; \
	done; \
	if [ $$n = 0 ]; then echo "check-kmod: no kernel to boot" >&2; exit 1; fi; \
	if [ "$(VM_DEBUG_KERNEL)" = 1 ]; then \
		$(MAKE) --no-print-directory kmod-debug || exit 1; \
		t=$(KDEBUG_TREE); \
		rel=$$($(MAKE) -s --no-print-directory -C $$t kernelrelease); \
		n=$$((n + 1)); \
		VKV_VM_KERNEL=$$t/arch/x86/boot/bzImage VKV_VM_KCONFIG=$$t/.config \
		VKV_VM_TIMEOUT=$${VKV_VM_TIMEOUT:-$(VM_DEBUG_TIMEOUT)} \
			sh tests/vm/run.sh $$rel $(KMOD_OUT)/$$rel/vkv.ko $(VM_BIN) \
			$(KMOD_OUT)/vm/$$rel $(VM_SUITES) || fail=1; \
	fi; \
	if [ $$fail = 1 ]; then echo "check-kmod: FAILED" >&2; exit 1; fi; \
	echo "check-kmod: passed on $$n kernel(s)"

CHECK_TARGETS += check-kmod

# vkvctl on the host, without the module: metrics and status against a fake
# sysfs tree (VKV_SYSFS_ROOT), checked by a strict parser of Prometheus'
# text format (tests/vm/promparse.h, shared with the guest's test_vkvctl).
VKVCTL_HOST_TEST := $(VKVCTL_SUITES:%=$(B)/tests/%)
ALL_TARGETS += $(VKVCTL_HOST_TEST)
CHECK_TARGETS += check-vkvctl
.PHONY: check-vkvctl

$(VKVCTL_HOST_TEST): $(B)/tests/%: tests/%.c $(B)/tests/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $(CHECK_CFLAGS) -Itests -o $@ $< $(ALL_LDFLAGS) \
		$(CHECK_LIBS) -lm

DEP_FILES += $(VKVCTL_HOST_TEST:=.d)

check-vkvctl: $(VKVCTL_HOST_TEST) $(VKVCTL)
	@set -e; for t in $(VKVCTL_HOST_TEST); do \
		echo "== $$t"; VKVCTL=$(VKVCTL) $$t; \
	done

# Installing the module like any other: `make install-kmod` puts the module
# source under /usr/src/vkv-<version>/ with dist/dkms.conf.in as its
# dkms.conf, has DKMS build and install it for every kernel with headers,
# creates the vkv group, installs dist/60-vkv.rules (udev: /dev/vkv
# root:vkv 0660), dist/vkv.conf as /etc/modprobe.d/vkv.conf unless one
# exists, and vkvctl. With DESTDIR set, only the files are installed.
# `make check-dkms` runs `make install-kmod` and `make uninstall-kmod` for
# real, DKMS builds for every kernel with headers included, in a private
# mount namespace whose system directories are overlays on a tmpfs, so the
# machine itself is not changed (dist/check-install.sh).
UDEVRULESDIR ?= /lib/udev/rules.d
MODPROBEDIR ?= /etc/modprobe.d
SBINDIR ?= $(PREFIX)/sbin
UDEV_RELOAD ?= 1
DKMS_SRC = $(DESTDIR)/usr/src/vkv-$(VERSION)
.PHONY: install-kmod install-kmod-files uninstall-kmod check-dkms

install-kmod-files: $(VKVCTL)
	install -d $(DKMS_SRC)/kmod $(DKMS_SRC)/include/uapi/linux
	install -m 644 Kbuild $(DKMS_SRC)/Kbuild
	install -m 644 kmod/*.c kmod/*.h $(DKMS_SRC)/kmod/
	install -m 644 include/uapi/linux/*.h $(DKMS_SRC)/include/uapi/linux/
	sed 's/@VERSION@/$(VERSION)/' dist/dkms.conf.in > $(DKMS_SRC)/dkms.conf
	install -D -m 644 dist/60-vkv.rules $(DESTDIR)$(UDEVRULESDIR)/60-vkv.rules
	@if [ -e $(DESTDIR)$(MODPROBEDIR)/vkv.conf ]; then \
		echo "install-kmod: keeping $(DESTDIR)$(MODPROBEDIR)/vkv.conf"; \
	else install -D -m 644 dist/vkv.conf $(DESTDIR)$(MODPROBEDIR)/vkv.conf; fi
	install -D -m 755 $(VKVCTL) $(DESTDIR)$(SBINDIR)/vkvctl

install-kmod: install-kmod-files
	@set -e; if [ -n "$(DESTDIR)" ]; then exit 0; fi; \
	command -v dkms >/dev/null || { echo "install-kmod: dkms missing (apt-get install dkms)" >&2; exit 1; }; \
	getent group vkv >/dev/null || groupadd --system vkv; \
	dkms status -m vkv -v $(VERSION) | grep -q . || dkms add -m vkv -v $(VERSION); \
	for k in /lib/modules/*/build; do \
		[ -e $$k/include ] || continue; \
		rel=$$(basename $$(dirname $$k)); \
		dkms install -m vkv -v $(VERSION) -k $$rel; \
	done; \
	if [ "$(UDEV_RELOAD)" = 1 ] && command -v udevadm >/dev/null; then \
		udevadm control --reload-rules 2>/dev/null || true; \
		udevadm trigger --subsystem-match=misc --sysname-match=vkv 2>/dev/null || true; \
	fi; \
	echo "install-kmod: done; load it with: modprobe vkv"

uninstall-kmod:
	-dkms remove -m vkv -v $(VERSION) --all
	rm -rf $(DKMS_SRC)
	rm -f $(DESTDIR)$(UDEVRULESDIR)/60-vkv.rules $(DESTDIR)$(SBINDIR)/vkvctl

CHECK_TARGETS += check-dkms
check-dkms: $(VKVCTL)
	@sh $(SETUP) kmod
	unshare -m sh dist/check-install.sh $(VERSION)
