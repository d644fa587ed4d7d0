# SPDX-License-Identifier: MIT
"""Fixtures for the binding's tests.

make check-python sets PYTHONPATH to the built package, VKV_TEST_FAKECUDA to
the directory of the fake libcuda.so.1 and VKV_TEST_LIBDIR to the one of
libvkv.so and libvkv-shim.so. The cuda backend's tests run in subprocesses, since the fake
driver reads its environment when it is loaded.
"""

import os
import subprocess
import sys
import textwrap

import pytest

import vkv

# Every cache is host-backed unless a test says otherwise, whatever VKV_*
# the environment of the run holds.
for _k in list(os.environ):
    if _k.startswith("VKV_") and not _k.startswith("VKV_TEST_"):
        del os.environ[_k]

PAGE = 2 << 20


@pytest.fixture
def make_cache():
    """make_cache(**kw): a small host cache, destroyed after the test."""
    made = []

    def make(**kw):
        args = dict(layers=2, kv_heads=4, head_dim=16, dtype="float16",
                    max_seqs=8, max_tokens=4096, backend="host")
        args.update(kw)
        c = vkv.Cache(**args)
        made.append(c)
        return c

    yield make
    for c in made:
        c.destroy()


def libvkv():
    """libvkv.so through ctypes: the C API beside the binding."""
    import ctypes
    d = os.environ.get("VKV_TEST_LIBDIR", "build")
    return ctypes.CDLL(os.path.join(d, "libvkv.so"))


def built(var, name):
    """The path of a file make check-python built, named by var's dir."""
    d = os.environ.get(var)
    if not d or not os.path.exists(os.path.join(d, name)):
        pytest.fail(f"{var} does not name a directory with {name} "
                    "(run through make check-python)")
    return os.path.join(d, name)


def run_python(code, **env):
    """Run code in a fresh interpreter with env added; its stdout."""
    e = dict(os.environ)
    e.update(env)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                       env=e, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r.stdout


def run_fakecuda(code, **env):
    """Run code in a fresh interpreter on the fake CUDA driver; its stdout."""
    fake = os.path.dirname(built("VKV_TEST_FAKECUDA", "libcuda.so.1"))
    return run_python(code, LD_LIBRARY_PATH=fake, **env)
