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

KMOD_SRCS := Kbuild $(wildcard kmod/*.c kmod/*.h kmod/uapi/*.h)
KMOD_KDIRS = $(if $(KDIR),$(KDIR),$(wildcard /lib/modules/*/build))
KMOD_OUT := $(B)/kmod

VM_TESTS := test_ioctl test_swap test_limits test_shrinker test_client test_vkvctl \
	test_lib bench_kmod vkvctl
VM_BIN := $(KMOD_OUT)/bin
VM_BINS := $(patsubst %,$(VM_BIN)/%,$(VM_TESTS))
VM_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O2 -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -pthread \
	-Ikmod/uapi -Ilib -Itests/vm
VM_LIBS := $(shell pkg-config --static --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm) -pthread
# Suites in the order the guest runs them; ':' adds insmod parameters.
# The benchmark runs in a second boot without the debug options.
VM_SUITES ?= test_ioctl test_swap test_limits test_client test_vkvctl test_lib \
	test_shrinker
VM_BENCH ?= bench_kmod

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
		mkdir -p $$out/kmod/uapi; \
		cp Kbuild $$out/; cp kmod/*.c kmod/*.h $$out/kmod/; \
		cp kmod/uapi/*.h $$out/kmod/uapi/; \
		echo "  KMOD    $$rel"; \
		$(MAKE) -s --no-print-directory -C $$k M=$$(cd $$out && pwd) modules \
			2>&1 | grep -v "Skipping BTF generation" || true; \
		test -f $$out/vkv.ko || { echo "kmod: build for $$rel failed" >&2; exit 1; }; \
	done

$(VM_BIN)/test_%: tests/vm/test_%.c tests/vm/vmtest.h kmod/uapi/vkv.h
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) -static -o $@ $< $(VM_LIBS)

$(VM_BIN)/test_client: tests/vm/test_client.c lib/kmod_client.c lib/kmod_client.h \
		tests/vm/vmtest.h kmod/uapi/vkv.h
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) -static -o $@ tests/vm/test_client.c lib/kmod_client.c $(VM_LIBS)

# libvkv itself over the module: the public header only, so no -Ikmod/uapi.
$(VM_BIN)/test_lib: tests/vm/test_lib.c $(LIB_A) lib/vkv.h
	@mkdir -p $(@D)
	@# glibc warns that dlopen (of libcuda) needs shared libraries at run
	@# time: true, and the guest has none, so the cuda backend says -ENODEV.
	$(CC) -std=c11 -D_GNU_SOURCE -g -O2 -Wall -Wextra -Werror -pthread -Ilib \
		-static -o $@ $< $(LIB_A) -lnuma -luring -ldl $(VM_LIBS) 2> $@.log || \
		{ cat $@.log; exit 1; }

$(VM_BIN)/bench_kmod: tests/vm/bench_kmod.c tests/vm/vmtest.h kmod/uapi/vkv.h
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) -static -o $@ $< $(VM_LIBS)

# vkvctl: admin tool (tools/vkvctl); built with the rest, and statically for
# the guest, where test_vkvctl drives it.
VKVCTL := $(B)/vkvctl
ALL_TARGETS += $(VKVCTL)

$(VKVCTL): tools/vkvctl/vkvctl.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS)

$(VM_BIN)/vkvctl: tools/vkvctl/vkvctl.c
	@mkdir -p $(@D)
	$(CC) $(VM_CFLAGS) -static -o $@ $<

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
