# vkvbench: trace replay and micro benchmarks, linked statically against
# libvkv.a so that the binary runs from the build tree alone.
#
#   make replay       the main job: every layout on the shipped trace window
#   make bench-core   micro benchmarks; records the ratios in
#                     bench/results/runs/core.md
#   make bench-async  driver time vkv_step_async() hides, on the
#                     cuda backend over fakecuda; bench/results/runs/async.md
#   make bench        the performance report, bench/results/ (needs
#                     gnuplot: Debian's gnuplot-nox)
#   make check-tools  smoke replay + micro run; fails on any stamp mismatch

VKVBENCH := $(B)/vkvbench
VKVBENCH_SRCS := $(sort $(wildcard tools/vkvbench/*.c))
VKVBENCH_OBJS := $(patsubst tools/vkvbench/%.c,$(B)/tools/vkvbench/%.o,$(VKVBENCH_SRCS))

ALL_TARGETS += $(VKVBENCH)
CHECK_TARGETS += check-tools

$(B)/tools/vkvbench/%.o: tools/vkvbench/%.c $(B)/tools/vkvbench/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Iinclude -c $< -o $@

DEP_FILES += $(VKVBENCH_OBJS:.o=.d)

# The attention loops are yardsticks: `micro`'s always -O2, whatever OPT;
# `attn`'s two kernels share attn_cmp.c, so the same flags, at -O3, which
# unrolls the 128-wide vector loops that -O2 leaves rolled (2x here).
$(B)/tools/vkvbench/attn.o: ALL_CFLAGS += -O2
$(B)/tools/vkvbench/attn_cmp.o: ALL_CFLAGS += -O3

$(VKVBENCH): $(VKVBENCH_OBJS) $(LIB_A)
	$(CC) -o $@ $(VKVBENCH_OBJS) $(LIB_A) $(ALL_LDFLAGS) $(LIB_LIBS) -lm

.PHONY: replay bench-core bench-async bench check-tools
replay: setup
	@$(MAKE) --no-print-directory $(VKVBENCH)
	$(VKVBENCH) replay

bench-core: $(VKVBENCH)
	$(VKVBENCH) micro --update bench/results/runs/core.md

# The cuda backend over the test double with its latency injection on, once
# per latency scale: per 2 MiB (the fake's default, the honest one) and per
# call (the optimistic bound). BENCH_ASYNC_OPTS widens or narrows the window.
BENCH_ASYNC_ENV := VKV_BACKEND=cuda LD_LIBRARY_PATH=$(FAKECUDA_DIR) \
	FAKECUDA_LATENCY=1
BENCH_ASYNC_OPTS ?=
bench-async: $(VKVBENCH) $(FAKECUDA_LIB)
	$(BENCH_ASYNC_ENV) FAKECUDA_LATENCY_SCALE=size $(VKVBENCH) async \
		$(BENCH_ASYNC_OPTS) --update bench/results/runs/async.md
	$(BENCH_ASYNC_ENV) FAKECUDA_LATENCY_SCALE=call $(VKVBENCH) async \
		$(BENCH_ASYNC_OPTS) --update bench/results/runs/async.md

# Every allocator on three workloads, the attention comparison and the step
# overhead: tables, CSVs and plots in bench/results (bench/run.sh says how).
bench: $(VKVBENCH) $(FAKECUDA_LIB)
	@sh $(SETUP) bench
	sh bench/run.sh $(VKVBENCH) $(FAKECUDA_DIR) bench/results

# Small budgets force reclamation and preemption, so their paths are checked
# too; a row damaged on purpose must be caught (exit 1); bad input must give
# exit status 2 with the line named.
VKVBENCH_SMOKE := --requests 30 --budget 512M --step-ms 100
# The shipped trace's one request longer than 8192 tokens (14050 + 39),
# alone: a static 8192-token reservation cannot serve it, and must not be
# credited with a waste figure as if it had.
VKVBENCH_LONGCTX := --first 5442 --requests 1 --budget 2G --step-ms 100 \
	--layout token-major
check-tools: $(VKVBENCH) $(FAKECUDA_LIB)
	@echo "check-tools: smoke replay"
	$(VKVBENCH) replay $(VKVBENCH_SMOKE)
	$(VKVBENCH) replay $(VKVBENCH_SMOKE) --first 5000 --layout token-major-kv --csv
	$(VKVBENCH) replay --requests 10 --budget 512M --async --csv
	$(VKVBENCH) replay --requests 10 --budget 512M --page-size 4M --csv
	@echo "check-tools: long context"
	@$(VKVBENCH) replay $(VKVBENCH_LONGCTX) --format report-csv \
		> $(B)/tools/vkvbench/longctx.csv || exit 1; \
		if ! grep -q '^trace,static-8192,model,0,,,[0-9]*,,,,,1$$' $(B)/tools/vkvbench/longctx.csv || \
		! grep -q '^trace,static-fit-16384,model,0,0\.[0-9]*,' $(B)/tools/vkvbench/longctx.csv; then \
		echo "check-tools: long context: want the 8192-token static row to refuse 1 request" \
			"and a 16384-token row sized to the longest"; \
		cat $(B)/tools/vkvbench/longctx.csv; exit 1; fi
	@echo "check-tools: micro run"
	$(VKVBENCH) micro --quick
	$(VKVBENCH) attn --quick
	@echo "check-tools: async over fakecuda"
	$(BENCH_ASYNC_ENV) $(VKVBENCH) async --requests 5 --forward-us 1000 \
		--budget 512M > /dev/null
	@echo "check-tools: bad input"
	@printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.00,x,1\n' \
		> $(B)/tools/vkvbench/bad.csv
	@$(VKVBENCH) replay $(B)/tools/vkvbench/bad.csv 2> $(B)/tools/vkvbench/bad.err; \
		rc=$$?; if [ $$rc -ne 2 ] || ! grep -q 'bad.csv:3:' $(B)/tools/vkvbench/bad.err; then \
		echo "check-tools: bad row: exit $$rc, want 2 and line 3 named"; \
		cat $(B)/tools/vkvbench/bad.err; exit 1; fi
	@$(VKVBENCH) replay --requests 10 --budget 512M --layout token-major --inject-fault 5 \
		> /dev/null 2> $(B)/tools/vkvbench/fault.err; rc=$$?; \
		if [ $$rc -ne 1 ] || ! grep -q 'STAMP MISMATCH' $(B)/tools/vkvbench/fault.err; then \
		echo "check-tools: injected fault: exit $$rc, want 1 and a stamp mismatch"; exit 1; fi
	@$(VKVBENCH) replay --budget banana >/dev/null 2>&1; rc=$$?; \
		if [ $$rc -ne 2 ]; then echo "check-tools: bad option: exit $$rc, want 2"; exit 1; fi
	@$(VKVBENCH) frobnicate >/dev/null 2>&1; rc=$$?; \
		if [ $$rc -ne 2 ]; then echo "check-tools: bad command: exit $$rc, want 2"; exit 1; fi
	@echo "check-tools: passed"
