# SPDX-License-Identifier: MIT
"""Sequences and steps as a scheduler drives them; stats."""

import array

import numpy as np

import vkv


def test_step_from_lists_and_arrays(make_cache):
    c = make_cache()
    slots = [c.open() for _ in range(4)]
    c.step(slots, [1, 2, 3, 4])
    assert [c.length(s) for s in slots] == [1, 2, 3, 4]
    u = np.array(slots, dtype=np.uint32)
    c.step(u, np.array([5, 6, 7, 8], dtype=np.uint32))
    c.step(np.array(slots), np.array([9, 10, 11, 12], dtype=np.int32))
    c.step(array.array("I", slots), array.array("H", [13, 14, 15, 16]))
    c.step(u[::-1].copy(), np.arange(20, 24, dtype=np.uint64))
    assert [c.length(s) for s in slots] == [23, 22, 21, 20]
    # Strided views have no contiguous buffer: converted all the same.
    both = np.array([slots, [30, 31, 32, 33]], dtype=np.uint32)
    c.step(both[0, ::2], both[1, ::2])
    c.step(u[::-1], np.arange(40, 44, dtype=np.uint32)[::-1])
    assert [c.length(s) for s in slots] == [40, 41, 42, 43]
    c.step([], [])


def test_long_batch_converted_on_the_heap(make_cache):
    c = make_cache(max_seqs=512, layers=1, kv_heads=1, max_tokens=64)
    slots = [c.open() for _ in range(300)]
    c.step(slots, [3] * 300)
    assert all(c.length(s) == 3 for s in slots)


def test_fits_then_step_async(make_cache):
    c = make_cache(lookahead=16)
    a, b = c.open(), c.open()
    lens = np.array([0, 0], dtype=np.uint32)
    slots = np.array([a, b], dtype=np.uint32)
    for _ in range(20):
        lens += 1
        assert c.fits(slots, lens)
        c.step_async(slots, lens)
        c.wait()
    assert c.length(a) == 20 and c.stats()["steps"] == 20


def test_trim_close_and_info(make_cache):
    # 2 KiB rows: 1024 tokens to a page.
    c = make_cache(kv_heads=8, head_dim=128)
    s = c.open()
    c.reserve(s, 3000)
    c.reserve(s, 10)              # shorter: keeps the pages
    info = c.info(s)
    assert info["open"] and info["len"] == 10 and info["backed"] >= 3000
    assert c.trim(s) == 2 * info["segments"]
    assert c.info(s)["backed"] == 1024
    c.set_priority(s, 5)
    assert c.info(s)["priority"] == 5
    c.close(s)
    assert not c.info(s)["open"]


def test_stats_dict(make_cache):
    c = make_cache()
    s = c.open()
    c.step([s], [1])
    st = c.stats()
    assert st["steps"] == 1 and st["seqs_open"] == 1
    assert st["page_size"] == c.page_size
    h = st["step_lat"]
    assert h["count"] == 1 and len(h["buckets"]) == 40
    assert h["p50_ns"] >= 1 and h["max_ns"] <= h["sum_ns"]
    assert "map_lat" in st


def test_repr_and_geometry(make_cache):
    c = make_cache(layout="token_major")
    g = c.geometry
    assert g["layout"] == vkv.LAYOUTS["token_major"]
    assert g["elem_size"] == 2 and g["dtype"] == vkv.DTYPES["float16"]
    assert "host" in repr(c) and c.backend == "host"
