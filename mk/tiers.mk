# Tier building blocks (lib/crc32c.c, lib/tier_host.c, lib/tier_disk.c,
# lib/quant.c): their Check suite and their benchmark.
#
#   make check-tiers   tests/test_tiers.c (CRC, host tier, quantization),
#                      tests/test_disk_tier.c (swap files go to a directory
#                      in the build tree and to /dev/shm (tmpfs) when it
#                      exists), tests/test_tier_store.c (the host tier over
#                      a backing store: vkv.ko's swap, faked)
#   make bench-tiers   host<->disk throughput against fio on the same file,
#                      block size and queue depth, and quantized swap; see
#                      bench/results/runs/tiers.md. Needs fio.
#                      BENCH_TIERS_ARGS passes options (e.g. --dir
#                      /mnt/nvme --size 4G --qd 32).

# The quantizer's loops vectorise only at -O3, and only when FP operations
# may be speculated (we never read the FP exception flags).
$(B)/lib/quant.o: ALL_CFLAGS += -O3 -fno-trapping-math

TIERS_TMP := $(B)/tiers-tmp

# The suites (tests/suites.mk) build like the core ones (mk/tests.mk).
TIERS_TESTS := $(TIERS_SUITES)
ALL_TARGETS += $(TIERS_TESTS:%=$(B)/tests/%) $(B)/bench_tiers
CHECK_TARGETS += check-tiers

$(B)/bench_tiers: tests/bench_tiers.c $(LIB_A) $(B)/bench_tiers.d
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Iinclude -Ilib -o $@ tests/bench_tiers.c $(LIB_A) \
		$(ALL_LDFLAGS) $(LIB_LIBS) -lm

DEP_FILES += $(B)/bench_tiers.d

.PHONY: check-tiers bench-tiers
check-tiers: $(TIERS_TESTS:%=$(B)/tests/%)
	@mkdir -p $(TIERS_TMP)
	@set -e; for t in $(TIERS_TESTS); do \
		echo "== $(B)/tests/$$t"; \
		CK_DEFAULT_TIMEOUT=600 \
		VKV_TEST_SWAPDIRS="$(abspath $(TIERS_TMP))$$(test -d /dev/shm && echo :/dev/shm)" \
		$(B)/tests/$$t; \
	done

bench-tiers: $(B)/bench_tiers
	@mkdir -p $(TIERS_TMP)
	$(B)/bench_tiers --dir $(abspath $(TIERS_TMP)) $(BENCH_TIERS_ARGS)
