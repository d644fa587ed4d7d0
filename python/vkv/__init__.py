# SPDX-License-Identifier: MIT
"""vkv: virtually contiguous KV-cache memory, from Python.

A Cache reserves a virtually contiguous region per sequence slot and backs
it with physical pages as sequences grow (libvkv). Its K and V are plain
strided tensors: hand cache.k(layer) to torch.utils.dlpack.from_dlpack() or
numpy.asarray() and index [slot, token, head, dim] with no block tables.

    import torch, vkv
    cache = vkv.Cache(layers=2, kv_heads=4, head_dim=64, dtype=torch.float16,
                      max_seqs=8, max_tokens=4096, backend="host")
    slot = cache.open()
    cache.step([slot], [1])
    k0 = torch.utils.dlpack.from_dlpack(cache.k(0))   # no copy

Errors are MemoryError (-ENOMEM), ValueError (-EINVAL) and OSError(errno,
text) for the rest; a call that fails changes nothing.
"""

import contextlib as _contextlib

from . import _vkv
from ._vkv import Tensor, strerror, library_version

__all__ = [
    "Cache", "Tensor", "region", "strerror", "library_version",
    "BACKENDS", "LAYOUTS", "DTYPES", "EVICT", "TIERS", "K", "V",
]

K = 0
V = 1

BACKENDS = {"auto": 0, "host": 1, "cuda": 2}
LAYOUTS = {"per_layer": 0, "token_major": 1, "token_major_kv": 2}
EVICT = {"none": 0, "lru": 1, "priority": 2}
TIERS = {"device": 0, "host": 1, "disk": 2}
# Names as numpy and PyTorch spell them; fp8 as PyTorch's float8 types.
DTYPES = {
    "float16": 1, "half": 1, "bfloat16": 2, "float32": 3, "float": 3,
    "float8_e4m3": 4, "float8_e4m3fn": 4, "float8_e5m2": 5, "int8": 6,
}


def _enum(table, what, value):
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            raise ValueError(f"vkv: unknown {what} {value!r}; "
                             f"one of {sorted(table)}") from None
    return int(value)


def _dtype(value):
    """A vkv dtype from a name, a torch.dtype or a numpy dtype."""
    if isinstance(value, int):
        return value
    name = getattr(value, "name", None)   # numpy.dtype
    if not isinstance(name, str):
        name = str(value)                 # torch.float16 -> "torch.float16"
    name = name.rsplit(".", 1)[-1]
    return _enum(DTYPES, "dtype", name)


class Cache(_vkv.Cache):
    """A vkv cache: one virtually contiguous region per sequence slot.

    Cache(layers, kv_heads, head_dim, dtype, max_seqs, max_tokens,
          layout="per_layer", budget=..., backend=..., **config)

    dtype is a name ("float16", "bfloat16", ...), a torch.dtype or a numpy
    dtype. layout is "per_layer", "token_major" or "token_major_kv".
    config keywords are struct vkv_config's fields (backend, page_size,
    budget, pool_low, pool_high, lookahead_tokens or lookahead, device,
    numa_node, log_level, host_budget, swap_path, swap_qdepth, evict,
    quantize, io_uring), applied over the VKV_* environment variables;
    backend and evict also take names ("host", "cuda", "lru", ...).

    Used as a context manager, it is destroyed on exit; tensors taken from
    it keep its memory until they go.
    """

    def __init__(self, layers, kv_heads, head_dim, dtype, max_seqs,
                 max_tokens, layout="per_layer", **config):
        if "backend" in config:
            config["backend"] = _enum(BACKENDS, "backend", config["backend"])
        if "evict" in config:
            config["evict"] = _enum(EVICT, "evict", config["evict"])
        super().__init__(layers, kv_heads, head_dim, _dtype(dtype),
                         max_seqs, max_tokens,
                         _enum(LAYOUTS, "layout", layout), **config)

    def swap_out(self, slot, tier="host"):
        """swap_out(slot, tier="host")

        Start moving the sequence in slot to the "host" or "disk" tier on
        the swap worker (vkv_seq_swap_out). Its addresses stay reserved:
        swap_in() maps new pages at them, so tensors stay valid. Do not
        touch its rows until swap_wait(slot) returns.
        """
        return super().swap_out(slot, _enum(TIERS, "tier", tier))

    def __enter__(self):
        """The cache itself; it is destroyed when the block ends."""
        return self

    def __exit__(self, *exc):
        """destroy() the cache; exceptions propagate."""
        self.destroy()
        return False

    def __repr__(self):
        """The backend and geometry, or that it was destroyed."""
        if self.destroyed:
            return "<vkv.Cache destroyed>"
        g = self.geometry
        return (f"<vkv.Cache {self.backend} layers={g['layers']} "
                f"kv_heads={g['kv_heads']} head_dim={g['head_dim']} "
                f"max_seqs={g['max_seqs']} max_tokens={g['max_tokens']}>")


@_contextlib.contextmanager
def region(tag="kv_cache"):
    """with vkv.region("kv_cache"): tag this thread's large allocations.

    Under LD_PRELOAD=libvkv-shim.so, allocations of a page or more made in
    the block (by PyTorch's allocator or any other) become vkv regions
    (vkv_shim_region_begin/_end); without the shim it does nothing. Yields
    whether the shim was there.
    """
    active = _vkv.region_begin(tag)
    try:
        yield active
    finally:
        if active:
            _vkv.region_end()
