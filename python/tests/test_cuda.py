# SPDX-License-Identifier: MIT
"""The cuda backend, over the fake driver: device pointers described as
CUDA memory through DLPack and __cuda_array_interface__ (torch's CUDA is
not needed: the capsule is read by hand)."""

from conftest import run_fakecuda

CHECK = """
import ctypes, vkv
from test_tensors import read_capsule
c = vkv.Cache(2, 4, 16, "float16", 8, 1024, backend="cuda", device=0)
assert c.backend == "cuda", c.backend
s = c.open()
c.step([s], [4])
t = c.k(1)
assert t.__dlpack_device__() == (2, 0)
data, dev, dt, shape, strides = read_capsule(t.__dlpack__(stream=None))
assert dev == (2, 0) and data == t.data_ptr, (dev, data)
assert dt == (2, 16, 1) and shape == (8, 1024, 4, 16)
assert tuple(x * 2 for x in strides) == t.strides
cai = t.__cuda_array_interface__
assert cai["version"] == 3 and cai["typestr"] == "<f2"
assert cai["shape"] == t.shape and cai["strides"] == t.strides
assert cai["data"] == (t.data_ptr, False) and cai["stream"] is None
assert not hasattr(t, "__array_interface__")
# The pointer is the library's: vkv_token_ptr() of the same row.
assert c.token_ptr(1, vkv.K, s, 2) == t.data_ptr + s * t.strides[0] + 2 * t.strides[1]
kv = c.k(0)
del c
assert kv.cache.backend == "cuda"    # the tensor keeps the cache
print("ok")
"""


def test_cuda_backend_tensors():
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    out = run_fakecuda(CHECK, PYTHONPATH=os.pathsep.join(
        [os.environ.get("PYTHONPATH", ""), here]), FAKECUDA_LATENCY="0")
    assert out.strip() == "ok"


def test_cuda_backend_unavailable_is_oserror():
    out = run_fakecuda("""
import errno, vkv
try:
    vkv.Cache(1, 1, 16, "float16", 2, 64, backend="cuda")
except OSError as e:
    assert e.errno == errno.ENODEV, e
    print("ENODEV")
""", FAKECUDA_DEVICES="0")
    assert out.strip() == "ENODEV"
