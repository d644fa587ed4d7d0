# SPDX-License-Identifier: MIT
"""The GIL is released while a call blocks, and a cache stays one
scheduler's even when two threads drive it."""

import threading

import vkv
from conftest import run_fakecuda

# A swap that takes a while: the fake driver's device-to-host copies cost
# 150 ms per 2 MiB, two of them.
BLOCKING_SWAP = """
import threading, time, vkv
c = vkv.Cache(1, 8, 128, "float16", 4, 100000, backend="cuda",
              host_budget=64 << 20)
s = c.open()
c.reserve(s, 1000)
c.swap_out(s, "host")
span = {}

def swap():
    span["start"] = time.monotonic()
    c.swap_wait(s)
    span["end"] = time.monotonic()

t = threading.Thread(target=swap)
t.start()
ticks = []
while "end" not in span:
    # Runs while swap_wait() lets go of the GIL; holding it, the call
    # would leave no tick inside the swap.
    ticks.append(time.monotonic())
t.join()
start, end = span["start"], span["end"]
inside = [x for x in ticks if start <= x <= end]
gap = max((b - a for a, b in zip([start] + inside, inside + [end])))
print(end - start, len(inside), gap)
"""


def test_second_thread_runs_while_a_swap_blocks():
    out = run_fakecuda(BLOCKING_SWAP,
                       FAKECUDA_LATENCY_US="cuMemcpyDtoHAsync:150000")
    took, inside, gap = out.split()
    took, inside, gap = float(took), int(inside), float(gap)
    assert took > 0.2, "the swap did not block: no test"
    # This thread ran all along the swap, with no pause near its length.
    assert inside > 100 and gap < took / 2, (took, inside, gap)


def test_two_threads_share_one_cache(make_cache):
    c = make_cache(max_seqs=8, layers=1)
    errors = []

    def drive(slot):
        try:
            for n in range(1, 200):
                c.step([slot], [n])
                assert c.length(slot) == n
        except Exception as e:            # reported below
            errors.append(e)

    a, b = c.open(), c.open()
    threads = [threading.Thread(target=drive, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert c.stats()["steps"] == 2 * 199


DESTROY_DURING_CALL = """
import threading, time, vkv
c = vkv.Cache(1, 8, 128, "float16", 4, 100000, backend="cuda",
              host_budget=64 << 20)
s = c.open()
c.reserve(s, 1000)
c.swap_out(s, "host")
result = {}

def swap():
    result["started"] = True
    c.swap_wait(s)
    result["done"] = True

t = threading.Thread(target=swap)
t.start()
while "started" not in result:
    pass
time.sleep(0.05)            # inside swap_wait, the GIL released
c.destroy()                 # must not free the cache under it
assert c.destroyed and "done" not in result
t.join()
assert result["done"]
try:
    c.open()
except ValueError:
    print("ok")
"""


def test_destroy_while_another_thread_is_in_a_call():
    out = run_fakecuda(DESTROY_DURING_CALL,
                       FAKECUDA_LATENCY_US="cuMemcpyDtoHAsync:150000")
    assert out.strip() == "ok"
