# libvkv-shim.so: the LD_PRELOAD interposer (shim/), its suites and its
# benchmark.
#
#   make check-shim   the shim suites (tests/suites.mk: SHIM_SUITES); skipped,
#                     saying why, under SANITIZE builds: a sanitizer's
#                     allocator and the shim's interposers cannot both own
#                     malloc
#   make bench-shim   pass-through cost (malloc/free, cuLaunchKernel) with
#                     and without the shim, and suspend/resume against
#                     memcpy, each in one run; bench/results/runs/shim.md

SHIM_SO := $(B)/libvkv-shim.so
SHIM_SRCS := $(sort $(wildcard shim/*.c))
SHIM_OBJS := $(patsubst shim/%.c,$(B)/shim/%.o,$(SHIM_SRCS))
SHIM_ENGINE := $(B)/tests/shim_engine
SHIM_CUDA_ENGINE := $(B)/tests/shim_cuda_engine
SHIM_TEST_BINS := $(patsubst %,$(B)/tests/%,$(SHIM_SUITES))
SHIM_BENCH := $(B)/tests/bench_shim
SHIM_EARLY := $(B)/tests/shim_early.so

ifeq ($(SANITIZE),)
ALL_TARGETS += $(SHIM_SO) $(SHIM_ENGINE) $(SHIM_CUDA_ENGINE) $(SHIM_EARLY) \
	$(SHIM_TEST_BINS) $(SHIM_BENCH)
endif
CHECK_TARGETS += check-shim

# -fno-builtin: the compiler must not turn the interposers' own calls into
# calls of the functions being defined.
$(B)/shim/%.o: shim/%.c $(B)/shim/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -fPIC -fvisibility=hidden -fno-builtin \
		-ftls-model=initial-exec -Iinclude/uapi -Ilib -Ishim -c $< -o $@

$(SHIM_SO): $(SHIM_OBJS) shim/libvkv-shim.map
	$(CC) -shared -Wl,-soname,libvkv-shim.so \
		-Wl,--version-script=shim/libvkv-shim.map -Wl,-z,defs \
		-o $@ $(SHIM_OBJS) $(ALL_LDFLAGS) -ldl

$(SHIM_ENGINE): tests/shim_engine.c shim/vkv-shim.h $(B)/tests/shim_engine.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Ishim -o $@ $< $(ALL_LDFLAGS) -ldl

# Linked against the fake libcuda.so.1, for its kernels and queries; the
# shim, preloaded, comes first.
$(SHIM_CUDA_ENGINE): tests/shim_cuda_engine.c $(FAKECUDA_LIB) \
		$(B)/tests/shim_cuda_engine.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Ilib -Itests/fakecuda -o $@ $< \
		-L$(FAKECUDA_DIR) -l:libcuda.so.1 $(ALL_LDFLAGS) -ldl

$(SHIM_EARLY): tests/shim_early.c tests/shim_early.map $(B)/tests/shim_early.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -fPIC -shared -fno-builtin -o $@ $< \
		-Wl,--version-script=tests/shim_early.map $(ALL_LDFLAGS) -ldl

$(SHIM_TEST_BINS): $(B)/tests/%: tests/%.c $(B)/tests/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $(CHECK_CFLAGS) -Itests -o $@ $< \
		$(ALL_LDFLAGS) $(CHECK_LIBS) -lm

# test_shim_gate: the run gate (shim/gate.c) linked in, no preload.
SHIM_GATE_TEST := $(B)/tests/test_shim_gate
ALL_TARGETS += $(SHIM_GATE_TEST)
$(SHIM_GATE_TEST): tests/test_shim_gate.c shim/gate.c shim/shim.h \
		tests/common/check_util.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -Ishim -o $@ \
		tests/test_shim_gate.c shim/gate.c $(ALL_LDFLAGS) $(CHECK_LIBS)

# Not linked against the fake driver: the launch and suspend children
# dlopen() it, as a runtime does, and the malloc child never loads it.
$(SHIM_BENCH): tests/bench_shim.c $(B)/tests/bench_shim.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Ilib -Itests/fakecuda -o $@ $< \
		$(ALL_LDFLAGS) -ldl

DEP_FILES += $(SHIM_OBJS:.o=.d) $(SHIM_TEST_BINS:=.d) $(SHIM_ENGINE).d \
	$(SHIM_CUDA_ENGINE).d \
	$(SHIM_BENCH).d $(B)/tests/shim_early.d

.PHONY: check-shim bench-shim install-shim uninstall-shim
ifeq ($(SANITIZE),)
check-shim: $(SHIM_SO) $(SHIM_ENGINE) $(SHIM_CUDA_ENGINE) $(SHIM_EARLY) \
		$(SHIM_TEST_BINS) $(SHIM_GATE_TEST) $(VKVCTL) $(FAKECUDA_LIB)
	@set -e; for t in $(SHIM_TEST_BINS) $(SHIM_GATE_TEST); do \
		echo "== $$t"; SHIM_SO=$(SHIM_SO) SHIM_ENGINE=$(SHIM_ENGINE) \
		SHIM_EARLY=$(SHIM_EARLY) SHIM_CUDA_ENGINE=$(SHIM_CUDA_ENGINE) \
		FAKECUDA_DIR=$(FAKECUDA_DIR) \
		VKVCTL=$(VKVCTL) $$t; \
	done
else
check-shim:
	@echo "check-shim: skipped under SANITIZE=$(SANITIZE): the sanitizer's" \
		"allocator and the shim's malloc interposers cannot coexist"
endif

# The bare interposer: malloc and free that only jump to glibc's, the
# floor bench-shim measures the shim against.
SHIM_BENCH_BARE := $(B)/tests/bench_shim_bare.so
ALL_TARGETS += $(SHIM_BENCH_BARE)
$(SHIM_BENCH_BARE): tests/bench_shim_bare.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -fno-builtin -o $@ $< $(ALL_LDFLAGS)

bench-shim: $(SHIM_SO) $(SHIM_BENCH) $(SHIM_BENCH_BARE) $(FAKECUDA_LIB)
	FAKECUDA_DIR=$(FAKECUDA_DIR) $(SHIM_BENCH) $(SHIM_SO) \
		--bare $(SHIM_BENCH_BARE) --update bench/results/runs/shim.md

install: install-shim
uninstall: uninstall-shim
install-shim: $(SHIM_SO)
	install -D -m 755 $(SHIM_SO) $(DESTDIR)$(LIBDIR)/libvkv-shim.so
	install -D -m 644 shim/vkv-shim.h $(DESTDIR)$(INCLUDEDIR)/vkv-shim.h

uninstall-shim:
	rm -f $(DESTDIR)$(LIBDIR)/libvkv-shim.so $(DESTDIR)$(INCLUDEDIR)/vkv-shim.h

# The guest's test_shim_kmod runs the engine, dynamically linked, under the
# shim: tests/vm/run.sh copies $(VM_BIN)/shim/ and the C library it needs.
kmod-tests: $(VM_BIN)/shim/libvkv-shim.so $(VM_BIN)/shim/shim_engine
$(VM_BIN)/shim/%: $(B)/%
	@mkdir -p $(@D)
	cp $< $@
$(VM_BIN)/shim/shim_engine: $(SHIM_ENGINE)
	@mkdir -p $(@D)
	cp $< $@
