#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/run.sh - the performance report: `make bench` runs it.
#
#   sh bench/run.sh VKVBENCH FAKECUDA_DIR [OUT]
#
# Replays three workloads and a long-context window through every allocator, runs the decode-attention
# comparison and the step-overhead ratio, and writes OUT (default
# bench/results): report.md (the tables), one CSV per measurement, and PNG
# plots drawn by gnuplot (bench/plots.gp). Every figure is a ratio or a
# comparison measured in the same run on the same trace.
#
# Environment: BENCH_REQUESTS (Azure windows, default 200), CODE_TRACE (the
# Azure code trace, default ../shared/traces/azure-llm-2023-code.csv),
# SYNTH_REQUESTS (default 60), LONG_FIRST (first request of the long-context
# window, default 5342), ATTN_OPTS (e.g. --quick) for a quick look.
set -eu

VKVBENCH=$1
FAKECUDA_DIR=$2
OUT=${3:-bench/results}
REQ=${BENCH_REQUESTS:-200}
CONV=bench/traces/azure-llm-2023-conv.csv
CODE=${CODE_TRACE:-../shared/traces/azure-llm-2023-code.csv}
TMP=$OUT/.tmp

command -v gnuplot >/dev/null 2>&1 || {
	echo "bench: gnuplot not found; install gnuplot-nox (Debian)" >&2
	exit 1
}
mkdir -p "$OUT" "$TMP"
started=$(date +%s)

# The synthetic long-context trace: seeded, so the same on every machine.
"$VKVBENCH" gen-trace --seed 1 --requests "${SYNTH_REQUESTS:-60}" --rate 0.1 \
	> "$OUT/synthetic-trace.csv"

# report ROWS_FILE LABEL TRACE BASELINES [replay options...]: allocator rows
# appended; the modelled baselines too if BASELINES is 1.
report() {
	f=$1 label=$2 trace=$3 base=$4
	shift 4
	echo "bench: $label: $*" >&2
	"$VKVBENCH" replay "$trace" --format report-csv --no-header \
		--label "$label" "$@" > "$TMP/rows.csv"
	if [ "$base" = 1 ]; then
		cat "$TMP/rows.csv" >> "$f"
	else
		grep -v ',model,' "$TMP/rows.csv" >> "$f" || true
	fi
}

HEADER=workload,allocator,backend,page_kib,waste_avg,waste_peak,max_seqs,mean_batch,reqs_per_s,step_p50_ns,step_p99_ns,unserved
rows=$OUT/allocators.csv
echo "$HEADER" > "$rows"
for w in conv code synthetic; do
	case $w in
	conv) t=$CONV win="--requests $REQ --static-tokens 8192" ;;
	code)
		t=$CODE win="--requests $REQ --static-tokens 8192"
		if [ ! -r "$t" ]; then
			echo "bench: code trace $t not found: skipped (set CODE_TRACE)" >&2
			continue
		fi
		;;
	# Its requests reach 14336 tokens: the static reservation must too.
	synthetic) t=$OUT/synthetic-trace.csv win="--all --static-tokens 16384" ;;
	esac
	# shellcheck disable=SC2086
	report "$rows" "$w" "$t" 1 $win
	# Small pages on the host backend, where they help: per-layer.
	# shellcheck disable=SC2086
	report "$rows" "$w" "$t" 0 $win --layout per-layer --page-size 64K
done

# Long context: the conversation trace's one request over 8192 tokens
# (request 5442, 14050 + 39 tokens) in the middle of its window, so the
# fixed 8192-token reservation cannot serve the window and a reservation
# sized to the longest request (16384) is the static allocator's price.
LONG_FIRST=${LONG_FIRST:-5342}
long=$OUT/longctx.csv
echo "$HEADER" > "$long"
report "$long" conv-long "$CONV" 1 --first "$LONG_FIRST" --requests "$REQ" \
	--static-tokens 8192

# Step latency on the cuda backend over fakecuda, latency injection on
# (per 2 MiB, the fake's default), the same conv window.
cuda=$OUT/cuda.csv
echo "$HEADER" > "$cuda"
VKV_BACKEND=cuda LD_LIBRARY_PATH=$FAKECUDA_DIR FAKECUDA_LATENCY=1 \
	FAKECUDA_LATENCY_SCALE=size report "$cuda" conv "$CONV" 0 --requests "$REQ"

echo "bench: decode attention, contiguous vs block table" >&2
# shellcheck disable=SC2086
"$VKVBENCH" attn ${ATTN_OPTS:-} --csv "$OUT/attn.csv" > "$TMP/attn.md"
echo "bench: step overhead vs decode attention (host)" >&2
"$VKVBENCH" micro --only b --markdown > "$TMP/micro.md"

# Tables for gnuplot: allocators x workloads.
awk -F, 'NR > 1 {
	a = $2 ($4 != 2048 && $4 != 0 ? " " $4 "K" : "")
	# A fixed reservation that cannot serve the window has no waste.
	if (a ~ /^static/ && $12 > 0) next
	if (a ~ /^static-fit/) a = "static (longest request)"
	else if (a ~ /^static/) a = "static (fixed)"
	if (!(a in seen)) { seen[a] = 1; order[n++] = a }
	if (!($1 in ws)) { ws[$1] = 1; word[m++] = $1 }
	waste[a, $1] = $5 * 100; seqs[a, $1] = $7
} END {
	printf "allocator"; for (j = 0; j < m; j++) printf "\t%s", word[j]; print ""
	for (i = 0; i < n; i++) {
		printf "\"%s\"", order[i]
		for (j = 0; j < m; j++) printf "\t%s", ((order[i], word[j]) in waste) ? waste[order[i], word[j]] : "NaN"
		print ""
	}
}' "$rows" > "$TMP/waste.dat"
# Step latency, conv, 2 MiB pages: host and cuda side by side per layout.
awk -F, 'FNR == 1 { f++; next } $1 == "conv" && $3 != "model" && $4 == 2048 {
	if (f == 1) host[$2] = $10 / 1000 "\t" $11 / 1000
	else if ($2 in host) printf "\"%s\"\t%s\t%s\t%s\n", $2, host[$2], $10 / 1000, $11 / 1000
}' "$rows" "$cuda" > "$TMP/lat.dat"
nw=$(head -1 "$TMP/waste.dat" | awk -F'\t' '{ print NF }')
batches=$(awk -F, 'NR > 1 { print $1 }' "$OUT/attn.csv" | sort -un | tr '\n' ' ')
gnuplot -e "tmp='$TMP'; out='$OUT'; ncol=$nw; batches='$batches'" bench/plots.gp

# rows_md CSV...: the report's allocator rows as a markdown table body.
rows_md() {
	awk -F, 'FNR > 1 {
		n = split($2, m, "-")
		if ($3 == "model" && m[1] == "static" && m[2] == "fit")
			name = "static " m[3] "-token reservation, the longest request (modelled)"
		else if ($3 == "model" && m[1] == "static")
			name = "static " m[2] "-token reservation (modelled)"
		else if ($3 == "model")
			name = "paged, " m[2] "-token blocks (modelled)"
		else
			name = "vkv " $2 ($4 != 2048 ? ", " $4 " KiB pages" : "")
		if ($3 == "model" && $12 > 0)
			printf "| %s | %s | - | cannot serve %d request%s | - | %s | - | - | - | - |\n", $1, name, $12, $12 == 1 ? "" : "s", $7
		else if ($3 == "model")
			printf "| %s | %s | - | %.2f%% | %.2f%% | %s | - | - | - | - |\n", $1, name, $5 * 100, $6 * 100, $7 == "" ? "-" : $7
		else
			printf "| %s | %s | %s | %.2f%% | %.2f%% | %s | %.1f | %.0f | %.2f us | %.2f us |\n", $1, name, $3, $5 * 100, $6 * 100, $7, $8, $9, $10 / 1000, $11 / 1000
	}' "$@"
}

{
	echo "# vkv performance report"
	echo
	echo "Generated by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $(( $(date +%s) - started )) s."
	echo "Llama-3-8B geometry (32 layers, 8 KV heads, head dim 128, 2-byte elements: 128 KiB per token),"
	echo "4 GiB budget, 256 slots, 30 ms per decode step, host backend unless said. Workloads:"
	echo "the first $REQ requests of the Azure conversation and code traces, and a seeded synthetic"
	echo "long-context trace (\`vkvbench gen-trace --seed 1 --requests 60 --rate 0.1\`: Poisson"
	echo "arrivals, prompts log-uniform in 2048..12288 tokens, outputs in 256..2048)."
	echo
	echo "## Allocators"
	echo
	echo "Waste is the layout's: 1 - live KV bytes / bytes of the pages (blocks, reservations) the open"
	echo "sequences need, averaged over decode steps and at the step of peak live KV. Static and paged"
	echo "rows are modelled on the same batches; static's concurrency is the budget over its reservation"
	echo "(8192 tokens, Llama-3-8B's context; 16384 on the synthetic trace, whose requests reach 14336);"
	echo "a second static row reserves each window's longest request rounded up to a power of two."
	echo "Requests/s is requests served per second of library time (open, reserve, steps, close)."
	echo
	"$VKVBENCH" replay --format report-md --requests 1 --label x 2>/dev/null | head -2
	rows_md "$rows" "$cuda"
	echo
	echo "![waste](waste.png)"
	echo
	echo "## Long context"
	echo
	echo "$REQ requests of the Azure conversation trace from request $LONG_FIRST, a window holding its"
	echo "one request longer than 8192 tokens (14050 + 39). A static allocator must reserve at least"
	echo "the longest request it serves: the fixed 8192-token reservation cannot serve this window,"
	echo "and the row says how many requests it refuses; the next row reserves the longest request"
	echo "rounded up to a power of two, as engines size their context, for every sequence."
	echo
	"$VKVBENCH" replay --format report-md --requests 1 --label x 2>/dev/null | head -2
	rows_md "$long"
	echo
	echo "## Decode attention on CPU: contiguous vkv cache vs block table"
	echo
	cat "$TMP/attn.md"
	echo
	echo "![attention](attn.png)"
	echo
	echo "## Step overhead on the host backend vs decode attention"
	echo
	cat "$TMP/micro.md"
	echo
	echo "![step latency](latency.png)"
} > "$OUT/report.md"
rm -rf "$TMP"
echo "bench: wrote $OUT/report.md" >&2
