# SPDX-License-Identifier: MIT
"""Tensors over the cache: shapes, the library's strides, sharing, lifetime."""

import ctypes
import gc
import sys

import numpy as np
import pytest
import torch
from torch.utils.dlpack import from_dlpack

import vkv
from conftest import libvkv


def test_per_layer_shape_strides_match_library(make_cache):
    c = make_cache()
    g = c.geometry
    for layer in range(g["layers"]):
        for get in (c.k, c.v):
            t = get(layer)
            assert t.shape == (8, 4096, 4, 16)
            # The strides are the library's: a token's row is heads * dim.
            assert t.strides[3] == 2 and t.strides[2] == 16 * 2
            assert t.strides[1] == 4 * 16 * 2
            a = np.asarray(t)
            assert a.dtype == np.float16 and a.strides == t.strides
            assert a.ctypes.data == t.data_ptr
            x = from_dlpack(get(layer))
            assert x.dtype == torch.float16 and x.shape == (8, 4096, 4, 16)
            assert tuple(s * 2 for s in x.stride()) == t.strides
            assert x.data_ptr() == t.data_ptr
    assert c.k(0).data_ptr != c.v(0).data_ptr != c.k(1).data_ptr


def test_torch_write_seen_by_numpy_and_c(make_cache):
    c = make_cache()
    s = c.open()
    c.step([s], [5])
    k = from_dlpack(c.k(1))
    k[s, :5] = torch.arange(5 * 4 * 16, dtype=torch.float16).view(5, 4, 16)
    a = np.asarray(c.k(1))
    assert np.array_equal(a[s, :5], k[s, :5].numpy())
    # Through the C API: vkv_token_ptr() of the library, not the binding.
    row = c.token_ptr(1, vkv.K, s, 3)
    got = np.frombuffer(ctypes.string_at(row, 4 * 16 * 2), dtype=np.float16)
    assert np.array_equal(got, k[s, 3].flatten().numpy())
    lib = libvkv()
    lib.vkv_strerror.restype = ctypes.c_char_p
    assert lib.vkv_strerror(-12).decode() == vkv.strerror(-12)


def test_token_major_whole_tensor(make_cache):
    c = make_cache(layout="token_major")
    s = c.open()
    c.step([s], [3])
    whole = from_dlpack(c.k())
    assert whole.shape == (8, 4096, 2, 4, 16)
    whole[s, 2, 1] = 7
    assert torch.all(from_dlpack(c.k(1))[s, 2] == 7)
    assert c.token_ptr(1, vkv.K, s, 2) == c.k().data_ptr + sum(
        i * st for i, st in zip((s, 2, 1), c.k().strides))
    with pytest.raises(ValueError):
        c.kv()


def test_token_major_kv_tensor(make_cache):
    c = make_cache(layout="token_major_kv")
    s = c.open()
    c.step([s], [2])
    kv = from_dlpack(c.kv())
    assert kv.shape == (8, 4096, 2, 2, 4, 16)
    kv[s, 1, vkv.V, 0] = 5
    assert torch.all(from_dlpack(c.v(0))[s, 1] == 5)
    assert torch.all(from_dlpack(c.v())[s, 1, 0] == 5)


def test_per_layer_has_no_whole_tensor(make_cache):
    c = make_cache()
    with pytest.raises(ValueError):
        c.k()
    with pytest.raises(ValueError):
        c.k(2)      # no such layer: -EINVAL


@pytest.mark.parametrize("dtype,np_dtype,torch_dtype", [
    ("float32", np.float32, torch.float32),
    (torch.bfloat16, np.uint16, torch.bfloat16),
    (np.dtype(np.int8), np.int8, torch.int8),
    ("float8_e4m3fn", np.uint8, torch.uint8),
])
def test_dtypes(make_cache, dtype, np_dtype, torch_dtype):
    c = make_cache(dtype=dtype)
    assert np.asarray(c.k(0)).dtype == np_dtype
    assert from_dlpack(c.k(0)).dtype == torch_dtype


def test_tensor_outlives_cache(make_cache):
    c = vkv.Cache(2, 4, 16, "float16", 4, 1024, backend="host")
    s = c.open()
    c.step([s], [4])
    x = from_dlpack(c.k(0))
    a = np.asarray(c.v(1))
    x[s, :4] = 9
    ref = sys.getrefcount(c)
    assert ref > 2             # the tensors hold it
    del c
    gc.collect()
    assert torch.all(x[s, :4] == 9)
    a[s, 0] = 1
    assert a[s, 0, 0, 0] == 1


def test_destroy_with_live_tensors_is_safe():
    c = vkv.Cache(2, 4, 16, "float16", 4, 1024, backend="host")
    s = c.open()
    c.step([s], [4])
    x = from_dlpack(c.k(0))
    cap = c.v(0).__dlpack__()    # a capsule nobody imports
    c.destroy()
    assert c.destroyed
    with pytest.raises(ValueError):
        c.open()
    with pytest.raises(ValueError):
        c.k(0)
    x[s, :4] = 3                 # still mapped: freed with the last tensor
    assert torch.all(x[s, :4] == 3)
    del cap
    c.destroy()                  # twice is fine


def mapped(addr):
    """Whether addr is inside a mapping of this process."""
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return True
    return False


def test_destroyed_cache_goes_with_its_last_tensor():
    c = vkv.Cache(2, 4, 16, "float16", 4, 1024, backend="host")
    s = c.open()
    c.step([s], [4])
    x = from_dlpack(c.k(0))
    addr = x.data_ptr()
    c.destroy()
    assert mapped(addr)
    del x
    gc.collect()
    # c itself is still referenced here: the tensor's going released it.
    assert not mapped(addr)
    assert c.destroyed


def test_context_manager_destroys():
    with vkv.Cache(1, 1, 16, "float16", 2, 64, backend="host") as c:
        c.open()
    assert c.destroyed


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8),
                ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice),
                ("ndim", ctypes.c_int32), ("dtype", DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


def read_capsule(cap):
    """The DLTensor in a "dltensor" capsule, read by hand."""
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    t = DLTensor.from_address(get(cap, b"dltensor"))
    return (t.data, (t.device.device_type, t.device.device_id),
            (t.dtype.code, t.dtype.bits, t.dtype.lanes),
            tuple(t.shape[i] for i in range(t.ndim)),
            tuple(t.strides[i] for i in range(t.ndim)))


def test_dlpack_capsule_contents(make_cache):
    c = make_cache(dtype="bfloat16")
    t = c.k(1)
    data, dev, dt, shape, strides = read_capsule(t.__dlpack__())
    assert dev == (1, 0) and t.__dlpack_device__() == (1, 0)
    assert data == t.data_ptr and shape == t.shape
    assert dt == (4, 16, 1)      # kDLBfloat
    assert tuple(s * 2 for s in strides) == t.strides
    assert not hasattr(t, "__cuda_array_interface__")
    ai = t.__array_interface__
    assert ai["version"] == 3 and ai["data"] == (t.data_ptr, False)


def test_swap_keeps_addresses_and_data(make_cache):
    c = make_cache(host_budget=64 << 20)
    s = c.open()
    c.step([s], [100])
    k = from_dlpack(c.k(0))
    k[s, :100] = torch.randn(100, 4, 16).half()
    before = k[s, :100].clone()
    c.swap_out(s, "host")
    c.swap_wait(s)
    assert c.info(s)["tier"] == vkv.TIERS["host"]
    c.swap_in(s)
    c.swap_wait(s)
    assert torch.equal(k[s, :100], before)
