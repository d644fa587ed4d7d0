# Check suites of the core library (tests/suites.mk lists them). Each runs
# once per backend: on the host backend always, and on the cuda backend over
# tests/fakecuda when a fragment defines FAKECUDA_DIR (the fake
# libcuda.so.1) and FAKECUDA_LIB (its path).

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

CORE_TEST_BINS := $(patsubst %,$(B)/tests/%,$(CORE_SUITES))
ALL_TARGETS += $(CORE_TEST_BINS)

$(B)/tests/%.o: tests/%.c $(B)/tests/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $(CHECK_CFLAGS) -Iinclude -Ilib -Itests -c $< -o $@

$(B)/tests/test_%: $(B)/tests/test_%.o $(LIB_A)
	$(CC) -o $@ $< $(LIB_A) $(ALL_LDFLAGS) $(CHECK_LIBS) $(LIB_LIBS) -lm

# The model test: its driver plus the model in tests/model/.
MODEL_BIN := $(B)/tests/$(MODEL_SUITE)
MODEL_OBJS := $(patsubst tests/%.c,$(B)/tests/%.o,$($(MODEL_SUITE)_SRCS))

$(MODEL_BIN): $(MODEL_OBJS) $(LIB_A)
	$(CC) -o $@ $(MODEL_OBJS) $(LIB_A) $(ALL_LDFLAGS) \
		$(CHECK_LIBS) $(LIB_LIBS) -lm

ALL_TARGETS += $(MODEL_BIN)

# Every object compiled from tests/ by this fragment and mk/tiers.mk.
TEST_OBJS := $(patsubst %,$(B)/tests/%.o,$(CORE_SUITES) $(TIERS_SUITES)) $(MODEL_OBJS)
DEP_FILES += $(TEST_OBJS:.o=.d)
.SECONDARY: $(TEST_OBJS)

# The model test (tests/README.md), on the host backend and on the cuda
# backend over fakecuda, with the same seeds. Sizes are seeds x operations
# per seed: CI by default, smaller under sanitizers, `make fuzz` for before
# releases (new seeds each run unless MODEL_FIRST is given).
MODEL_OPS ?= 20000
ifeq ($(SANITIZE),)
MODEL_SEEDS ?= 75
else
MODEL_SEEDS ?= 20
endif
MODEL_FIRST ?= 1
FUZZ_SEEDS ?= 500

define run_model
	echo "== test_model (host backend): $(1) seeds from $(2), $(MODEL_OPS) operations each"; \
	rc=0; VKV_BACKEND=host VKV_MODEL_SEEDS=$(1) VKV_MODEL_FIRST=$(2) \
		VKV_MODEL_OPS=$(MODEL_OPS) $(MODEL_BIN) || rc=1; \
	if [ -z "$(FAKECUDA_DIR)" ]; then \
		echo "== test_model: tests/fakecuda not built here, cuda skipped"; \
	else \
		echo "== test_model (cuda backend over fakecuda)"; \
		VKV_BACKEND=cuda FAKECUDA_LATENCY=0 FAKECUDA_GRANULARITY=4096 \
		LD_LIBRARY_PATH=$(FAKECUDA_DIR) VKV_MODEL_SEEDS=$(1) \
		VKV_MODEL_FIRST=$(2) VKV_MODEL_OPS=$(MODEL_OPS) \
			$(MODEL_BIN) || rc=1; \
	fi; exit $$rc
endef

.PHONY: check-model fuzz

check-model: $(MODEL_BIN) $(FAKECUDA_LIB)
	@$(call run_model,$(MODEL_SEEDS),$(MODEL_FIRST))

fuzz: $(MODEL_BIN) $(FAKECUDA_LIB)
	@first=$${FUZZ_FIRST:-$$(date +%s)}; \
	$(call run_model,$(FUZZ_SEEDS),$$first)

# README's example, compiled and run as it stands in README.md.
$(B)/tests/readme_example.c: README.md tests/extract-example.sh
	@mkdir -p $(@D)
	sh tests/extract-example.sh README.md > $@

$(B)/tests/readme_example: $(B)/tests/readme_example.c $(LIB_A) $(B)/tests/readme_example.d
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Iinclude -Ilib -o $@ $< $(LIB_A) $(ALL_LDFLAGS) $(LIB_LIBS)

ALL_TARGETS += $(B)/tests/readme_example
DEP_FILES += $(B)/tests/readme_example.d

.PHONY: check-core check-core-host check-core-cuda
CHECK_TARGETS += check-core

check-core-host: $(CORE_TEST_BINS) $(B)/tests/readme_example
	@set -e; for t in $(CORE_TEST_BINS); do \
		echo "== $$t (host backend)"; \
		CK_DEFAULT_TIMEOUT=600 VKV_BACKEND=host $$t; \
	done; \
	echo "== README example (host backend)"; \
	VKV_BACKEND=host $(B)/tests/readme_example

check-core-cuda: $(CORE_TEST_BINS) $(FAKECUDA_LIB)
	@set -e; if [ -z "$(FAKECUDA_DIR)" ]; then \
		echo "== cuda backend: tests/fakecuda not built here, skipped"; \
		exit 0; fi; \
	for t in $(CORE_TEST_BINS); do \
		echo "== $$t (cuda backend over fakecuda)"; \
		CK_DEFAULT_TIMEOUT=600 VKV_BACKEND=cuda FAKECUDA_LATENCY=0 \
		LD_LIBRARY_PATH=$(FAKECUDA_DIR) $$t; \
	done

# The model test is a core suite too (CI runs check-core under sanitizers).
check-core: check-core-host check-core-cuda check-model

# make install into a scratch root, then build README's example the way a
# user would: pkg-config, the installed header, the shared library.
.PHONY: check-install
CHECK_TARGETS += check-install
INSTALL_ROOT := $(B)/install-root

check-install: $(B)/tests/readme_example.c
	@rm -rf $(INSTALL_ROOT)
	@$(MAKE) --no-print-directory install DESTDIR=$(abspath $(INSTALL_ROOT)) \
		PREFIX=/usr/local >/dev/null
	@echo "== installed: $$(cd $(INSTALL_ROOT) && find . -type f -o -type l | sort | tr '\n' ' ')"
	@PKG_CONFIG_SYSROOT_DIR=$(abspath $(INSTALL_ROOT)) \
	 PKG_CONFIG_LIBDIR=$(abspath $(INSTALL_ROOT))/usr/local/lib/pkgconfig \
	 $(CC) -std=c11 -Wall -Wextra -Werror -o $(B)/tests/installed_example \
		$(B)/tests/readme_example.c \
		$$(PKG_CONFIG_SYSROOT_DIR=$(abspath $(INSTALL_ROOT)) \
		   PKG_CONFIG_LIBDIR=$(abspath $(INSTALL_ROOT))/usr/local/lib/pkgconfig \
		   pkg-config --cflags --libs vkv) $(LDFLAGS_SAN)
	@LD_LIBRARY_PATH=$(abspath $(INSTALL_ROOT))/usr/local/lib VKV_BACKEND=host \
		$(B)/tests/installed_example
	@readelf -d $(INSTALL_ROOT)/usr/local/lib/libvkv.so.$(VERSION) | grep -q 'SONAME.*libvkv.so.$(VERSION_MAJOR)'
	@# Programs built against the 0.1/0.2 and the 0.3 header, on today's library.
	@set -e; for v in v01 v03; do \
		$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -o $(B)/tests/installed_abi_$$v \
			tests/abi_$$v.c -I$(abspath $(INSTALL_ROOT))/usr/local/include \
			-L$(abspath $(INSTALL_ROOT))/usr/local/lib -lvkv $(LDFLAGS_SAN); \
		LD_LIBRARY_PATH=$(abspath $(INSTALL_ROOT))/usr/local/lib VKV_BACKEND=host \
			$(B)/tests/installed_abi_$$v; \
	done
	@sh scripts/check-symbols.sh lib/libvkv.map $(INSTALL_ROOT)/usr/local/lib/libvkv.a \
		$(INSTALL_ROOT)/usr/local/lib/libvkv.so.$(VERSION)
	@sh scripts/check-man.sh lib/libvkv.map $(INSTALL_ROOT)/usr/local/include/vkv.h \
		$(INSTALL_ROOT)/usr/local/share/man
	@echo "check-install: passed"

# Whole-sequence swap throughput: host backend, then the cuda
# backend over fakecuda with its A100 latencies; see bench/results/runs/swap.md.
$(B)/tests/bench_swap: tests/bench_swap.c $(LIB_A) $(B)/tests/bench_swap.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Iinclude -Ilib -Itests/fakecuda -o $@ $< $(LIB_A) $(ALL_LDFLAGS) $(LIB_LIBS) -lm

ALL_TARGETS += $(B)/tests/bench_swap
DEP_FILES += $(B)/tests/bench_swap.d

.PHONY: bench-swap
bench-swap: $(B)/tests/bench_swap $(FAKECUDA_LIB)
	@echo "== host backend"; VKV_BACKEND=host $(B)/tests/bench_swap $(BENCH_SWAP_MIB)
	@echo "== cuda backend over fakecuda (latency on)"; \
	VKV_BACKEND=cuda LD_LIBRARY_PATH=$(FAKECUDA_DIR) FAKECUDA_LATENCY=1 \
		$(B)/tests/bench_swap $(BENCH_SWAP_MIB)
