# SPDX-License-Identifier: MIT
"""vkv.region() tags allocations for libvkv-shim.so when it is preloaded."""

import vkv
from conftest import built, run_python

UNDER_SHIM = """
import ctypes, vkv
query = ctypes.CDLL(None).vkv_shim_query
query.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
# Below the shim's own threshold: only a region makes it a vkv region.
with vkv.region("kv_cache") as active:
    inside = ctypes.create_string_buffer(64 << 10)
outside = ctypes.create_string_buffer(64 << 10)
print(active, query(ctypes.addressof(inside), None),
      query(ctypes.addressof(outside), None))
"""


def test_region_under_shim_tags_allocations():
    shim = built("VKV_TEST_LIBDIR", "libvkv-shim.so")
    out = run_python(UNDER_SHIM, LD_PRELOAD=shim)
    assert out.split() == ["True", "1", "0"]


def test_region_without_shim_does_nothing():
    with vkv.region("kv_cache") as active:
        assert active is False
        x = bytearray(1 << 20)
    assert len(x) == 1 << 20


def test_region_ends_on_exception():
    shim = built("VKV_TEST_LIBDIR", "libvkv-shim.so")
    out = run_python("""
import ctypes, vkv
query = ctypes.CDLL(None).vkv_shim_query
query.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
try:
    with vkv.region("kv_cache"):
        raise KeyError
except KeyError:
    pass
after = ctypes.create_string_buffer(64 << 10)
print(query(ctypes.addressof(after), None))
""", LD_PRELOAD=shim)
    assert out.split() == ["0"]
