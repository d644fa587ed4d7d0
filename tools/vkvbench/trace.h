/* SPDX-License-Identifier: MIT */
/*
 * trace.h - reader for serving traces: TIMESTAMP,ContextTokens,GeneratedTokens.
 */
#ifndef VKVBENCH_TRACE_H
#define VKVBENCH_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct trace_req {
	double arrival; /* seconds after the trace's first request */
	uint32_t prompt; /* ContextTokens */
	uint32_t generate; /* GeneratedTokens */
	uint32_t line; /* line in the file, for messages */
};

struct trace {
	struct trace_req *req;
	size_t n;
	uint32_t max_total; /* longest prompt + generate */
};

/*
 * trace_load - read @path. On failure returns -errno and writes a message
 * naming the file and line into @err.
 */
#define DEFAULT_TRACE "bench/traces/azure-llm-2023-conv.csv"

/*
 * trace_find - @rel (a path relative to the top of the tree) from the
 * current directory, else relative to the executable (build/, or an
 * installed share/vkv). Writes the path into @buf; 0, or -1 if not found.
 */
int trace_find(const char *rel, char *buf, size_t len);

int trace_load(const char *path, struct trace *t, char *err, size_t errlen);
void trace_free(struct trace *t);

#endif /* VKVBENCH_TRACE_H */
