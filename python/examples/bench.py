# SPDX-License-Identifier: MIT
"""make bench-python: what the binding costs, as ratios measured in one run.

1. Per-step overhead: cache.step() from Python against vkv_step() from C
   (build/python/step_c), on the same schedule, at batch 1 and 256. Each
   sequence grows by a token per step within its first page (1 KiB rows,
   2048 to a page), so the step itself does no per-page work and the
   difference is the binding's.
2. The example engine (decode.py): tokens/s with its KV in vkv, in a
   preallocated torch cache and in a torch.cat-grown cache.

    PYTHONPATH=build/python /usr/bin/python3 python/examples/bench.py
"""

import argparse
import os
import subprocess
import time

import numpy as np
import torch

import vkv
import decode

HERE = os.path.dirname(os.path.abspath(__file__))


def step_python(batch, steps, repeats):
    """Best mean ns per cache.step(), its arguments numpy arrays or lists.

    The lengths of every step are made before the clock starts: what is
    timed is the call, as in C, not the engine's bookkeeping.
    """
    best = {"numpy": float("inf"), "list": float("inf")}
    for _ in range(repeats):
        for kind in best:
            c = vkv.Cache(1, 2, 128, "float16", batch, 4096,
                          layout="token_major_kv", backend="host")
            slots = np.array([c.open() for _ in range(batch)],
                             dtype=np.uint32)
            c.step(slots, np.ones(batch, dtype=np.uint32))
            sched = [np.full(batch, n, dtype=np.uint32)
                     for n in range(2, steps + 2)]
            if kind == "list":
                slots = slots.tolist()
                sched = [x.tolist() for x in sched]
            step = c.step
            t0 = time.perf_counter_ns()
            for lens in sched:
                step(slots, lens)
            ns = (time.perf_counter_ns() - t0) / steps
            best[kind] = min(best[kind], ns)
            c.destroy()
    return best


def step_c(exe, batch, steps, repeats):
    out = subprocess.run([exe, str(batch), str(steps), str(repeats)],
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def engine(requests, batch):
    cfg = decode.Config()
    model = decode.TinyDecoder(cfg)
    reqs = decode.make_requests(requests, cfg, seed=7)
    rows = []
    for name, make in (
            ("vkv", lambda: decode.VkvKV(cfg, batch + 1, backend="host")),
            ("torch preallocated", lambda: decode.TorchKV(cfg, batch + 1)),
            ("torch.cat grown", lambda: decode.CatKV(cfg, batch + 1))):
        kv = make()
        decode.serve(model, kv, reqs[:2], batch)          # warm up
        t0 = time.perf_counter()
        toks, _, _ = decode.serve(model, kv, reqs, batch)
        dt = time.perf_counter() - t0
        rows.append((name, sum(len(t) for t in toks) / dt))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step-c", default=os.path.join("build", "python",
                                                     "step_c"))
    ap.add_argument("--steps", type=int, default=2000,
                    help="below 2047: every step within the first page")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--requests", type=int, default=12)
    ap.add_argument("--batch", type=int, default=6)
    args = ap.parse_args()

    print("cache.step() from Python against vkv_step() from C "
          f"(best of {args.repeats} runs of {args.steps} steps)")
    print(f"{'batch':>6} {'C ns':>10} {'numpy ns':>10} {'ratio':>6} "
          f"{'list ns':>10} {'ratio':>6}")
    for batch in (1, 256):
        c_ns = step_c(args.step_c, batch, args.steps, args.repeats)
        py = step_python(batch, args.steps, args.repeats)
        print(f"{batch:>6} {c_ns:>10.0f} {py['numpy']:>10.0f} "
              f"{py['numpy'] / c_ns:>6.2f} {py['list']:>10.0f} "
              f"{py['list'] / c_ns:>6.2f}")
    print()
    print(f"decode.py: {args.requests} requests, batch {args.batch}, "
          f"CPU, {torch.get_num_threads()} torch threads")
    rows = engine(args.requests, args.batch)
    base = rows[0][1]
    print(f"{'KV cache':<20} {'tokens/s':>9} {'vkv / this':>11}")
    for name, tps in rows:
        print(f"{name:<20} {tps:>9.1f} {base / tps:>11.2f}")


if __name__ == "__main__":
    main()
