/* SPDX-License-Identifier: MIT */
/*
 * fakecuda_peer.c - peer access between devices, as the driver documents
 * it: cuCtxEnablePeerAccess lets the current context's kernels reach the
 * memory a peer context allocated with cuMemAlloc; memory from the VMM
 * calls stays out of reach until cuMemSetAccess names the device
 * (fakecuda_vmm.c checks both). The fake has primary contexts only, one per
 * device, so what is enabled is kept per pair of devices.
 */
#include "fakecuda_int.h"

/* Every device of the fake reaches every other; none is its own peer. */
FC_EXPORT cudrv_result cuDeviceCanAccessPeer(int *can, cudrv_device dev,
					     cudrv_device peer)
{
	cudrv_result r = fc_enter_init(FN_cuDeviceCanAccessPeer);

	if (r)
		return r;
	if (!can)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	if (dev < 0 || dev >= fc.ndev || peer < 0 || peer >= fc.ndev)
		return fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	*can = dev != peer;
	return CUDRV_SUCCESS;
}

/*
 * The current context and the peer, both active: 0, or the error. Under
 * fc.lock.
 */
static cudrv_result pair(cudrv_context peer, struct fc_ctx **cur,
			 struct fc_ctx **p)
{
	cudrv_result r = fc_need_ctx();

	if (r)
		return r;
	*cur = fc_current();
	*p = fc_ctx_of(peer);
	if (!*p || !(*p)->refs)
		return fc_bad(CUDRV_ERROR_INVALID_CONTEXT);
	return CUDRV_SUCCESS;
}

FC_EXPORT cudrv_result cuCtxEnablePeerAccess(cudrv_context peer,
					     unsigned int flags)
{
	cudrv_result r = fc_enter_init(FN_cuCtxEnablePeerAccess);
	struct fc_ctx *c, *p;

	if (r)
		return r;
	if (flags)
		return fc_bad(CUDRV_ERROR_INVALID_VALUE);
	pthread_mutex_lock(&fc.lock);
	r = pair(peer, &c, &p);
	if (!r && c->dev == p->dev)
		r = fc_bad(CUDRV_ERROR_INVALID_DEVICE);
	if (!r && fc.peer[c->dev][p->dev])
		r = fc_bad(FC_ERROR_PEER_ACCESS_ALREADY_ENABLED);
	if (!r)
		fc.peer[c->dev][p->dev] = true;
	pthread_mutex_unlock(&fc.lock);
	return r;
}

FC_EXPORT cudrv_result cuCtxDisablePeerAccess(cudrv_context peer)
{
	cudrv_result r = fc_enter_init(FN_cuCtxDisablePeerAccess);
	struct fc_ctx *c, *p;

	if (r)
		return r;
	pthread_mutex_lock(&fc.lock);
	r = pair(peer, &c, &p);
	if (!r && !fc.peer[c->dev][p->dev])
		r = fc_bad(FC_ERROR_PEER_ACCESS_NOT_ENABLED);
	if (!r)
		fc.peer[c->dev][p->dev] = false;
	pthread_mutex_unlock(&fc.lock);
	return r;
}
