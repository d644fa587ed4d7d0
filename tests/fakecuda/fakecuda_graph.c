/* SPDX-License-Identifier: MIT */
/*
 * fakecuda_graph.c - stream capture, graphs and their launch, for the test
 * double of libcuda.so.1 (see fakecuda.c).
 *
 * A capture records what is queued on the stream (copies and kernel
 * launches, with their parameter values) instead of running it; the graph
 * is that list, and an executable graph a copy of it. A launch queues the
 * recorded work on a stream again, at the recorded addresses: whatever is
 * mapped there, with whatever access, when the stream reaches it, which is
 * what a GPU does with a graph whose memory was unmapped and mapped again.
 * Dependencies are the capture's stream order; the fake captures one
 * stream per graph (no event joins across streams).
 */
#include <stdlib.h>
#include <string.h>

#include "fakecuda_int.h"

struct fc_graph {
	struct fc_graph *next;
	struct fc_op *nodes;
	size_t n, cap;
};

struct fc_capture {
	unsigned int mode; /* CUstreamCaptureMode */
	pthread_t thread;
	bool invalid;
	struct fc_graph *g;
};

static struct fc_graph *graphs, *execs;
static __thread unsigned int thread_mode = CUDRV_STREAM_CAPTURE_MODE_GLOBAL;

static void graph_free(struct fc_graph *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		fc_op_release(&g->nodes[i]);
	free(g->nodes);
	free(g);
}

static cudrv_result graph_add(struct fc_graph *g, const struct fc_op *op)
{
	cudrv_result r;

	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 16;
		struct fc_op *p = realloc(g->nodes, cap * sizeof(*p));

		if (!p)
			return CUDRV_ERROR_OUT_OF_MEMORY;
		g->nodes = p;
		g->cap = cap;
	}
	r = fc_op_dup(&g->nodes[g->n], op);
	if (!r)
		g->n++;
	return r;
}

/* An event recorded in a capture is a dependency marker, not a node. */
cudrv_result fc_capture_add(struct fc_stream *s, const struct fc_op *op)
{
	if (s->cap->invalid)
		return fc_bad(CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED);
	if (op->kind == FC_OP_RECORD)
		return CUDRV_SUCCESS;
	return graph_add(s->cap->g, op);
}

void fc_capture_invalidate(struct fc_stream *s)
{
	if (s->cap)
		s->cap->invalid = true;
}

void fc_capture_drop(struct fc_stream *s)
{
	if (!s->cap)
		return;
	graph_free(s->cap->g);
	free(s->cap);
	s->cap = NULL;
}

/*
 * The calling thread's mode decides: global forbids unsafe calls while
 * this thread captures (not relaxed) or another thread captures in global
 * mode; thread-local only the former; relaxed nothing.
 */
cudrv_result fc_capture_unsafe(void)
{
	pthread_t self = pthread_self();
	struct fc_stream *s;
	bool forbid = false;

	if (thread_mode == CUDRV_STREAM_CAPTURE_MODE_RELAXED)
		return CUDRV_SUCCESS;
	for (s = fc.streams; s; s = s->next) {
		struct fc_capture *c = s->cap;
		bool mine;

		if (!c || c->invalid)
			continue;
		mine = pthread_equal(c->thread, self);
		if ((mine && c->mode != CUDRV_STREAM_CAPTURE_MODE_RELAXED) ||
		    (!mine && c->mode == CUDRV_STREAM_CAPTURE_MODE_GLOBAL &&
		     thread_mode == CUDRV_STREAM_CAPTURE_MODE_GLOBAL)) {
			c->invalid = true;
			forbid = true;
		}
	}
	return forbid ? fc_bad(CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED)
		      : CUDRV_SUCCESS;
}

cudrv_result fc_capture_implicit(struct fc_ctx *c)
{
	struct fc_stream *s;
	bool hit = false;

	for (s = fc.streams; s; s = s->next) {
		if (s->ctx != c || !s->cap ||
		    (s->flags & CUDRV_STREAM_NON_BLOCKING))
			continue;
		s->cap->invalid = true;
		hit = true;
	}
	return hit ? fc_bad(CUDRV_ERROR_STREAM_CAPTURE_IMPLICIT)
		   : CUDRV_SUCCESS;
}

static cudrv_result begin(cudrv_stream stream, unsigned int mode)
{
	struct fc_stream *s;
	struct fc_capture *c;
	cudrv_result r;

	if (mode > CUDRV_STREAM_CAPTURE_MODE_RELAXED)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	s = fc_stream_of(stream);
	/* The legacy stream cannot be captured. */
	if (!r && !stream)
		r = fc_bad(CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED);
	else if (!r && !s)
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	else if (!r && s->cap)
		r = fc_bad(CUDRV_ERROR_ILLEGAL_STATE);
	if (!r) {
		c = calloc(1, sizeof(*c));
		if (c)
			c->g = calloc(1, sizeof(*c->g));
		if (!c || !c->g) {
			free(c);
			r = CUDRV_ERROR_OUT_OF_MEMORY;
		}
	}
	if (!r) {
		c->mode = mode;
		c->thread = pthread_self();
		s->cap = c;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuStreamBeginCapture_v2(cudrv_stream stream,
					       unsigned int mode)
{
	cudrv_result r = fc_enter_init(FN_cuStreamBeginCapture);

	return r ? r : begin(stream, mode);
}

/* The CUDA 10.0 entry point, without a mode: global. */
FC_EXPORT cudrv_result cuStreamBeginCapture(cudrv_stream stream)
{
	cudrv_result r = fc_enter_init(FN_cuStreamBeginCapture);

	return r ? r : begin(stream, CUDRV_STREAM_CAPTURE_MODE_GLOBAL);
}

/*
 * Outside relaxed mode only the thread that began a capture may end it.
 * An invalidated capture ends with no graph.
 */
FC_EXPORT cudrv_result cuStreamEndCapture(cudrv_stream stream,
					  cudrv_graph *graph)
{
	cudrv_result r = fc_enter_init(FN_cuStreamEndCapture);
	struct fc_stream *s;
	struct fc_capture *c;

	if (r)
		return r;
	if (!graph)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	s = fc_stream_of(stream);
	if (!r && !s)
		r = fc_bad(stream ? CUDRV_ERROR_INVALID_HANDLE
				  : CUDRV_ERROR_ILLEGAL_STATE);
	else if (!r && !s->cap)
		r = fc_bad(CUDRV_ERROR_ILLEGAL_STATE);
	else if (!r && s->cap->mode != CUDRV_STREAM_CAPTURE_MODE_RELAXED &&
		 !pthread_equal(s->cap->thread, pthread_self()))
		r = fc_bad(CUDRV_ERROR_STREAM_CAPTURE_WRONG_THREAD);
	if (!r) {
		c = s->cap;
		if (c->invalid) {
			fc_capture_drop(s);
			*graph = NULL;
			r = fc_bad(CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED);
		} else {
			c->g->next = graphs;
			graphs = c->g;
			fc.st.graphs++;
			*graph = (cudrv_graph)c->g;
			free(c);
			s->cap = NULL;
		}
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuStreamIsCapturing(cudrv_stream stream,
					   unsigned int *status)
{
	cudrv_result r = fc_enter_init(FN_cuStreamIsCapturing);
	struct fc_stream *s;

	if (r)
		return r;
	if (!status)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	s = fc_stream_of(stream);
	if (!r && stream && !s)
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	if (!r && s)
		*status = !s->cap ? CUDRV_STREAM_CAPTURE_STATUS_NONE
			  : s->cap->invalid
				  ? CUDRV_STREAM_CAPTURE_STATUS_INVALIDATED
				  : CUDRV_STREAM_CAPTURE_STATUS_ACTIVE;
	/* The legacy stream is never captured, but asking it while a
	 * blocking stream captures is an implicit dependency. */
	if (!r && !s) {
		struct fc_stream *p;

		*status = CUDRV_STREAM_CAPTURE_STATUS_NONE;
		for (p = fc.streams; p; p = p->next)
			if (p->ctx == fc_current() && p->cap &&
			    !(p->flags & CUDRV_STREAM_NON_BLOCKING))
				r = fc_bad(CUDRV_ERROR_STREAM_CAPTURE_IMPLICIT);
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuThreadExchangeStreamCaptureMode(unsigned int *mode)
{
	cudrv_result r = fc_enter_init(FN_cuThreadExchangeStreamCaptureMode);
	unsigned int old = thread_mode;

	if (r)
		return r;
	if (!mode || *mode > CUDRV_STREAM_CAPTURE_MODE_RELAXED)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	thread_mode = *mode;
	*mode = old;
	return CUDRV_SUCCESS;
}

static struct fc_graph *find(struct fc_graph *list, const void *h)
{
	for (; list; list = list->next)
		if (list == h)
			return list;
	return NULL;
}

/*
 * Flags: auto-free on launch (1), upload (2), device launch (4), node
 * priority (8); device launch "cannot be used in conjunction with" auto-free.
 */
static cudrv_result instantiate(cudrv_graph_exec *out, cudrv_graph graph,
				unsigned long long flags)
{
	struct fc_graph *g, *x = NULL;
	cudrv_result r;
	size_t i;

	if (!out || flags > 0xf || (flags & 5) == 5)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	g = find(graphs, graph);
	if (!r && !g)
		r = fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (!r && !(x = calloc(1, sizeof(*x))))
		r = CUDRV_ERROR_OUT_OF_MEMORY;
	for (i = 0; !r && i < g->n; i++)
		r = graph_add(x, &g->nodes[i]);
	if (r && x)
		graph_free(x);
	if (!r) {
		x->next = execs;
		execs = x;
		fc.st.graph_execs++;
		*out = (cudrv_graph_exec)x;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuGraphInstantiateWithFlags(cudrv_graph_exec *exec,
						   cudrv_graph graph,
						   unsigned long long flags)
{
	cudrv_result r = fc_enter_init(FN_cuGraphInstantiateWithFlags);

	return r ? r : instantiate(exec, graph, flags);
}

/* The CUDA 11 signature; no node can fail to instantiate here. */
FC_EXPORT cudrv_result cuGraphInstantiate_v2(cudrv_graph_exec *exec,
					     cudrv_graph graph,
					     cudrv_graph_node *err_node,
					     char *log, size_t log_size)
{
	cudrv_result r = fc_enter_init(FN_cuGraphInstantiate);

	if (r)
		return r;
	if (err_node)
		*err_node = NULL;
	if (log && log_size)
		*log = '\0';
	return instantiate(exec, graph, 0);
}

/* The recorded work, queued in its order: a replay in stream order. */
FC_EXPORT cudrv_result cuGraphLaunch(cudrv_graph_exec exec, cudrv_stream stream)
{
	cudrv_result r = fc_enter_init(FN_cuGraphLaunch);
	struct fc_graph *x;
	size_t i;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = fc_need_ctx();
	x = find(execs, exec);
	if (!r && !x)
		r = fc_bad(CUDRV_ERROR_INVALID_VALUE);
	else if (!r && !fc_stream_valid(stream))
		r = fc_bad(CUDRV_ERROR_INVALID_HANDLE);
	for (i = 0; !r && i < x->n; i++)
		r = fc_stream_push(stream, &x->nodes[i]);
	pthread_mutex_unlock(&fc.lock);
	return r;
}

static cudrv_result destroy(struct fc_graph **list, const void *h,
			    uint64_t *count)
{
	struct fc_graph **pp, *g;

	pthread_mutex_lock(&fc.lock);
	for (pp = list; *pp && *pp != h; pp = &(*pp)->next)
		;
	g = *pp;
	if (g) {
		*pp = g->next;
		graph_free(g);
		(*count)--;
	}
	pthread_mutex_unlock(&fc.lock);
	return g ? CUDRV_SUCCESS : fc_bad(CUDRV_ERROR_INVALID_VALUE);
}

FC_EXPORT cudrv_result cuGraphExecDestroy(cudrv_graph_exec exec)
{
	cudrv_result r = fc_enter_init(FN_cuGraphExecDestroy);

	return r ? r : destroy(&execs, exec, &fc.st.graph_execs);
}

/* An executable graph is a copy: it outlives the graph. */
FC_EXPORT cudrv_result cuGraphDestroy(cudrv_graph graph)
{
	cudrv_result r = fc_enter_init(FN_cuGraphDestroy);

	return r ? r : destroy(&graphs, graph, &fc.st.graphs);
}
