# SPDX-License-Identifier: MIT
"""Every error becomes the exception a Python programmer expects, and a
call that fails changes nothing."""

import errno

import numpy as np
import pytest

import vkv
from conftest import PAGE


def oserror(e, code):
    assert type(e.value) is not MemoryError and isinstance(e.value, OSError)
    assert e.value.errno == code
    assert e.value.strerror == vkv.strerror(-code)


def test_enomem_is_memoryerror_and_changes_nothing(make_cache):
    # Two segments per layer, one layer: a sequence's first token takes
    # two pages; the budget has three.
    c = make_cache(layers=1, budget=3 * PAGE)
    a, b = c.open(), c.open()
    c.step([a], [10])
    with pytest.raises(MemoryError):
        c.step([a, b], [11, 1])
    assert c.length(a) == 10 and c.length(b) == 0
    assert c.fits([a, b], [11, 1]) is False
    assert c.fits([a], [11]) is True
    with pytest.raises(MemoryError):
        c.reserve(b, 1)
    assert c.stats()["enomem"] >= 2


def test_einval_is_valueerror(make_cache):
    c = make_cache()
    with pytest.raises(ValueError):
        c.close(8)                   # out of range
    s = c.open()
    with pytest.raises(ValueError):
        c.step([s, s], [1, 2])       # a slot given twice
    assert c.length(s) == 0
    with pytest.raises(ValueError):
        c.step([s], [1, 2])          # lengths differ
    with pytest.raises(ValueError):
        c.step([s], [-1])
    with pytest.raises(ValueError):
        c.wait()                     # no step queued


def test_bad_config_is_valueerror():
    with pytest.raises(ValueError, match="budget"):
        vkv.Cache(1, 1, 16, "float16", 2, 64, backend="host", budget=5)
    with pytest.raises(ValueError):
        vkv.Cache(0, 1, 16, "float16", 2, 64, backend="host")
    with pytest.raises(ValueError):
        vkv.Cache(1, 1, 16, "float99", 2, 64, backend="host")
    with pytest.raises(TypeError):
        vkv.Cache(1, 1, 16, "float16", 2, 64, backend="host", bogus=1)


def test_bad_environment_is_valueerror(monkeypatch):
    monkeypatch.setenv("VKV_BUDGET", "lots")
    with pytest.raises(ValueError, match="VKV_BUDGET"):
        vkv.Cache(1, 1, 16, "float16", 2, 64, backend="host")


def test_others_are_oserror(make_cache):
    c = make_cache(max_seqs=2, max_tokens=64)
    a, b = c.open(), c.open()
    with pytest.raises(OSError) as e:
        c.open()
    oserror(e, errno.ENOSPC)
    c.close(b)
    with pytest.raises(OSError) as e:
        c.close(b)
    oserror(e, errno.EBADF)
    with pytest.raises(OSError) as e:
        c.step([a], [65])
    oserror(e, errno.E2BIG)
    with pytest.raises(OSError) as e:
        c.swap_out(a, "disk")        # no disk tier
    oserror(e, errno.ENODEV)
    with pytest.raises(OSError) as e:
        c.swap_in(a)                 # not swapped out
    oserror(e, errno.EALREADY)
    c.step_async([a], [1])
    with pytest.raises(OSError) as e:
        c.step_async([a], [2])
    oserror(e, errno.EBUSY)
    c.wait()
    assert c.length(a) == 1


def test_swap_path_errors_are_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        vkv.Cache(1, 1, 16, "float16", 2, 64, backend="host",
                  host_budget=PAGE, swap_path=tmp_path / "no" / "file")
    with pytest.raises(IsADirectoryError):
        vkv.Cache(1, 1, 16, "float16", 2, 64, backend="host",
                  host_budget=PAGE, swap_path=tmp_path)


def test_array_argument_errors(make_cache):
    c = make_cache()
    s = c.open()
    with pytest.raises(TypeError):
        c.step(np.array([s], dtype=np.float32), [1])
    with pytest.raises(TypeError):
        c.step(np.zeros((1, 1), dtype=np.uint32), [1])
    with pytest.raises(ValueError):
        c.step(np.array([s], dtype=np.int64), np.array([2**32]))
    with pytest.raises(TypeError):
        c.step(5, [1])
    assert c.length(s) == 0


def test_unknown_names():
    with pytest.raises(ValueError, match="layout"):
        vkv.Cache(1, 1, 16, "float16", 2, 64, layout="paged")
    with pytest.raises(ValueError, match="backend"):
        vkv.Cache(1, 1, 16, "float16", 2, 64, backend="tpu")
