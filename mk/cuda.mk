# The cuda backend's own tests, and tests/fakecuda: a test double of
# libcuda.so.1 for machines with no GPU. Nothing outside tests/ links or
# loads it; test programs find it through LD_LIBRARY_PATH=$(FAKECUDA_DIR).
#
# FAKECUDA_DIR and FAKECUDA_LIB are what other fragments (mk/tests.mk) use to
# run their suites on the cuda backend.

FAKECUDA_DIR := $(B)/fakecuda
FAKECUDA_LIB := $(FAKECUDA_DIR)/libcuda.so.1
FAKECUDA_SRCS := $(sort $(wildcard tests/fakecuda/*.c))
FAKECUDA_OBJS := $(patsubst tests/fakecuda/%.c,$(FAKECUDA_DIR)/%.o,$(FAKECUDA_SRCS))

# The suites are tests/suites.mk's CUDA_SUITES, plus CUDA_ABI_SUITE.
CUDA_TEST_DIR := $(B)/cuda-tests
CUDA_TESTS := $(CUDA_SUITES:%=$(CUDA_TEST_DIR)/%)

# The ABI check needs NVIDIA's header; where there is none it is skipped.
CUDA_HOME ?= /usr/local/cuda
CUDA_H := $(wildcard $(CUDA_HOME)/include/cuda.h)
ifneq ($(CUDA_H),)
CUDA_TESTS += $(CUDA_TEST_DIR)/$(CUDA_ABI_SUITE)
endif

CUDA_CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CUDA_CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

ALL_TARGETS += $(FAKECUDA_LIB) $(CUDA_TESTS)

$(FAKECUDA_DIR)/%.o: tests/fakecuda/%.c $(FAKECUDA_DIR)/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -fPIC -fvisibility=hidden -Iinclude -Ilib -Itests/fakecuda -c $< -o $@

$(FAKECUDA_LIB): $(FAKECUDA_OBJS)
	$(CC) -shared -Wl,-soname,libcuda.so.1 -o $@ $(FAKECUDA_OBJS) $(ALL_LDFLAGS)

# Linked against the fake: they test the fake itself.
FAKECUDA_SUITES := $(filter test_fakecuda%,$(CUDA_SUITES))

$(FAKECUDA_SUITES:%=$(CUDA_TEST_DIR)/%): $(CUDA_TEST_DIR)/%: tests/%.c \
		$(FAKECUDA_LIB) $(CUDA_TEST_DIR)/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $(CUDA_CHECK_CFLAGS) -Iinclude -Ilib -Itests/fakecuda -o $@ $< \
		-L$(FAKECUDA_DIR) -l:libcuda.so.1 $(ALL_LDFLAGS) $(CUDA_CHECK_LIBS)

# Not linked against it: the backend must dlopen whatever libcuda.so.1 the
# loader finds, or none; the test reaches the fake's controls with dlsym.
# Compiled one object per source, so that each has its own header list.
BACKEND_CUDA_TEST_OBJS := $(patsubst tests/%.c,$(CUDA_TEST_DIR)/obj/%.o,$(test_backend_cuda_SRCS))

$(CUDA_TEST_DIR)/obj/%.o: tests/%.c $(CUDA_TEST_DIR)/obj/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $(CUDA_CHECK_CFLAGS) -Iinclude -Ilib -Itests -Itests/fakecuda \
		-c $< -o $@

$(CUDA_TEST_DIR)/test_backend_cuda: $(BACKEND_CUDA_TEST_OBJS) $(LIB_A)
	$(CC) -o $@ $(BACKEND_CUDA_TEST_OBJS) $(LIB_A) $(ALL_LDFLAGS) $(CUDA_CHECK_LIBS) $(LIB_LIBS)

$(CUDA_TEST_DIR)/test_cuda_abi: tests/test_cuda_abi.c $(CUDA_TEST_DIR)/test_cuda_abi.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Iinclude -Ilib -I$(CUDA_HOME)/include -o $@ $< $(ALL_LDFLAGS)

DEP_FILES += $(FAKECUDA_OBJS:.o=.d) $(BACKEND_CUDA_TEST_OBJS:.o=.d) \
	$(FAKECUDA_SUITES:%=$(CUDA_TEST_DIR)/%.d) $(CUDA_TEST_DIR)/test_cuda_abi.d
.SECONDARY: $(BACKEND_CUDA_TEST_OBJS)

.PHONY: check-cuda
CHECK_TARGETS += check-cuda

# Latency injection off: these are unit tests, not benchmarks.
check-cuda: $(CUDA_TESTS) $(FAKECUDA_LIB)
	@set -e; \
	if [ -n "$(CUDA_H)" ]; then \
		echo "== $(CUDA_ABI_SUITE) (against $(CUDA_H))"; \
		$(CUDA_TEST_DIR)/$(CUDA_ABI_SUITE); \
	else \
		echo "== $(CUDA_ABI_SUITE): no cuda.h under $(CUDA_HOME), skipped"; \
	fi; \
	for t in $(CUDA_SUITES); do \
		echo "== $$t"; \
		FAKECUDA_LATENCY=0 LD_LIBRARY_PATH=$(FAKECUDA_DIR) \
			$(CUDA_TEST_DIR)/$$t; \
	done
