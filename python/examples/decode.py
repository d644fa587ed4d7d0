# SPDX-License-Identifier: MIT
"""An engine-shaped example: a small decoder-only transformer (random
weights, CPU) serving a batch of requests with continuous batching, its KV
in a vkv cache.

Each iteration, the scheduler asks the cache whether the next step fits
(cache.fits), preempts by swapping a request out to the host tier when it
does not, queues the step (cache.step_async), computes what needs no KV,
and collects the step (cache.wait) before writing the new K/V rows. The
attention reads k[slot, :len] of a plain strided tensor: no block tables,
no gathers.

The same model runs over a preallocated contiguous torch cache
(TorchKV) and a torch.cat-grown one (CatKV), for the equivalence test and
the benchmark:

    PYTHONPATH=build/python /usr/bin/python3 python/examples/decode.py
"""

import argparse
import time

import torch
from torch.utils.dlpack import from_dlpack

import vkv


class Config:
    """The model's shape. Wide heads make a K or V row 32 KiB, so that a
    2 MiB page holds 64 tokens and requests cross pages as they grow; the
    rest is small, for a CPU."""
    vocab = 256
    d_model = 32
    heads = 8
    head_dim = 1024
    layers = 2
    max_tokens = 256


class TinyDecoder(torch.nn.Module):
    """Pre-norm decoder blocks with multi-head attention over a KV store."""

    def __init__(self, cfg, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        d = cfg.d_model

        def w(*shape):
            return torch.nn.Parameter(
                torch.randn(*shape, generator=g) / shape[-1] ** 0.5,
                requires_grad=False)

        self.cfg = cfg
        self.embed = w(cfg.vocab, d)
        self.pos = w(cfg.max_tokens, d)
        a = cfg.heads * cfg.head_dim
        self.qkv = torch.nn.ParameterList(
            [w(d, 3 * a) for _ in range(cfg.layers)])
        self.out = torch.nn.ParameterList(
            [w(a, d) for _ in range(cfg.layers)])
        self.mlp_in = torch.nn.ParameterList(
            [w(d, 4 * d) for _ in range(cfg.layers)])
        self.mlp_out = torch.nn.ParameterList(
            [w(4 * d, d) for _ in range(cfg.layers)])
        self.head = w(d, cfg.vocab)

    def block(self, layer, x, attend):
        """One decoder block; attend(q, k, v) returns the attention."""
        cfg = self.cfg
        y = torch.nn.functional.layer_norm(x, (cfg.d_model,))
        q, k, v = (y @ self.qkv[layer]).split(cfg.heads * cfg.head_dim, 1)
        shape = (-1, cfg.heads, cfg.head_dim)
        x = x + attend(q.view(shape), k.view(shape), v.view(shape)) @ \
            self.out[layer]
        y = torch.nn.functional.layer_norm(x, (cfg.d_model,))
        return x + torch.relu(y @ self.mlp_in[layer]) @ self.mlp_out[layer]

    def logits(self, x):
        return torch.nn.functional.layer_norm(x, (self.cfg.d_model,)) @ \
            self.head

    @torch.no_grad()
    def prefill(self, kv, slot, prompt):
        """A whole prompt at once (its KV already backed): the logits of
        the token after it."""
        n = len(prompt)
        x = self.embed[prompt] + self.pos[:n]
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        scale = self.cfg.head_dim ** -0.5

        def attend(layer):
            def f(q, k, v):
                kv.write(layer, torch.tensor([slot] * n), torch.arange(n),
                         k, v)
                K, V = kv.view(layer, slot, n)
                s = torch.bmm(q.transpose(0, 1), K.permute(1, 2, 0)) * scale
                p = torch.softmax(s.masked_fill(~causal, -torch.inf), -1)
                o = torch.bmm(p, V.transpose(0, 1))      # [heads, n, dim]
                return o.transpose(0, 1).reshape(n, -1)
            return f

        for layer in range(self.cfg.layers):
            x = self.block(layer, x, attend(layer))
        return self.logits(x[-1:])[0]

    @torch.no_grad()
    def step(self, kv, slots, positions, tokens):
        """One token for each running sequence: its logits [batch, vocab].

        kv.wait() is called once the work that needs no KV is done, so
        that an asynchronous step's mapping overlaps it.
        """
        x = self.embed[tokens] + self.pos[positions]
        scale = self.cfg.head_dim ** -0.5
        kv.wait()

        def attend(layer):
            def f(q, k, v):
                kv.write(layer, slots, positions, k, v)
                out = []
                for i, slot in enumerate(slots.tolist()):
                    # k[slot, :len]: a plain slice of a strided tensor.
                    K, V = kv.view(layer, slot, int(positions[i]) + 1)
                    s = torch.bmm(q[i].unsqueeze(1), K.permute(1, 2, 0))
                    p = torch.softmax(s * scale, -1)     # [heads, 1, n]
                    out.append(torch.bmm(p, V.transpose(0, 1)).reshape(-1))
                return torch.stack(out)
            return f

        for layer in range(self.cfg.layers):
            x = self.block(layer, x, attend(layer))
        return self.logits(x)


class VkvKV:
    """KV in a vkv cache: tensors through DLPack, steps through the cache."""

    def __init__(self, cfg, max_seqs, **config):
        self.cache = vkv.Cache(cfg.layers, cfg.heads, cfg.head_dim,
                               torch.float32, max_seqs, cfg.max_tokens,
                               **config)
        self.k = [from_dlpack(self.cache.k(i)) for i in range(cfg.layers)]
        self.v = [from_dlpack(self.cache.v(i)) for i in range(cfg.layers)]
        self.queued = False

    def open(self):
        return self.cache.open()

    def close(self, slot):
        self.cache.close(slot)

    def fits(self, slots, lens):
        return self.cache.fits(slots, lens)

    def step(self, slots, lens):
        self.cache.step(slots, lens)

    def step_async(self, slots, lens):
        self.cache.step_async(slots, lens)
        self.queued = True

    def wait(self):
        if self.queued:
            self.queued = False
            self.cache.wait()

    def swap_out(self, slot):
        self.cache.swap_out(slot, "host")
        self.cache.swap_wait(slot)

    def write(self, layer, slots, positions, k, v):
        self.k[layer][slots, positions] = k
        self.v[layer][slots, positions] = v

    def view(self, layer, slot, n):
        return self.k[layer][slot, :n], self.v[layer][slot, :n]


class TorchKV:
    """The usual engine: a contiguous torch cache of max_tokens per slot."""

    def __init__(self, cfg, max_seqs):
        shape = (max_seqs, cfg.max_tokens, cfg.heads, cfg.head_dim)
        self.k = [torch.zeros(shape) for _ in range(cfg.layers)]
        self.v = [torch.zeros(shape) for _ in range(cfg.layers)]
        self.free = list(range(max_seqs - 1, -1, -1))

    def open(self):
        return self.free.pop()

    def close(self, slot):
        self.free.append(slot)

    def fits(self, slots, lens):
        return True

    def step(self, slots, lens):
        pass

    def step_async(self, slots, lens):
        pass

    def wait(self):
        pass

    def swap_out(self, slot):
        raise AssertionError("a preallocated cache never preempts")

    write = VkvKV.write
    view = VkvKV.view


class CatKV(TorchKV):
    """A cache grown by torch.cat, one tensor per sequence and layer."""

    def __init__(self, cfg, max_seqs):
        self.cfg = cfg
        self.free = list(range(max_seqs - 1, -1, -1))
        self.seqs = {}

    def open(self):
        slot = self.free.pop()
        empty = torch.empty(0, self.cfg.heads, self.cfg.head_dim)
        self.seqs[slot] = [[empty, empty] for _ in range(self.cfg.layers)]
        return slot

    def close(self, slot):
        del self.seqs[slot]
        self.free.append(slot)

    def write(self, layer, slots, positions, k, v):
        # Rows come in order of position: each one grows its sequence.
        for i, slot in enumerate(slots.tolist()):
            kv = self.seqs[slot][layer]
            kv[0] = torch.cat([kv[0], k[i:i + 1]])
            kv[1] = torch.cat([kv[1], v[i:i + 1]])

    def view(self, layer, slot, n):
        kv = self.seqs[slot][layer]
        return kv[0][:n], kv[1][:n]


def make_requests(n, cfg, seed=1):
    """n requests: (prompt token ids, tokens to generate)."""
    g = torch.Generator().manual_seed(seed)
    reqs = []
    for _ in range(n):
        plen = int(torch.randint(16, 96, (1,), generator=g))
        gen = int(torch.randint(8, 40, (1,), generator=g))
        reqs.append((torch.randint(0, cfg.vocab, (plen,), generator=g), gen))
    return reqs


class Request:
    def __init__(self, rid, prompt, gen):
        self.rid, self.prompt, self.gen = rid, prompt, gen
        self.out = []            # generated tokens
        self.logits = []         # the logits each came from
        self.cached = 0          # tokens whose K/V the cache holds
        self.slot = None

    def emit(self, logits):
        self.logits.append(logits)
        self.out.append(int(logits.argmax()))
        return len(self.out) == self.gen


def serve(model, kv, requests, max_batch):
    """Continuous batching: admit requests while the cache says their
    pages fit (prefilling each prompt at once), then one decode step for
    every running request per iteration, preempting by swap-out when the
    step would not fit. Returns each request's generated tokens, their
    logits, and how many preemptions it took."""
    waiting = [Request(i, p, g) for i, (p, g) in enumerate(requests)]
    running, swapped, done = [], [], []

    def admit(queue):
        while queue and len(running) < max_batch:
            r = queue[0]
            new = r.slot is None
            if new:
                r.slot = kv.open()
            need = len(r.prompt) if new else r.cached
            if not kv.fits([c.slot for c in running] + [r.slot],
                           [c.cached for c in running] + [need]):
                if new:
                    kv.close(r.slot)
                    r.slot = None
                return
            queue.pop(0)
            if not new:              # the next step swaps it back in
                running.append(r)
                continue
            kv.step([r.slot], [need])
            r.cached = need
            if r.emit(model.prefill(kv, r.slot, r.prompt)):
                kv.close(r.slot)
                done.append(r)
            else:
                running.append(r)

    preempted = 0
    while waiting or running or swapped:
        admit(swapped)
        if not swapped:
            admit(waiting)
        while running and not kv.fits([r.slot for r in running],
                                      [r.cached + 1 for r in running]):
            # Preempt the request admitted last, as vLLM does, by swap.
            victim = running.pop()
            kv.swap_out(victim.slot)
            swapped.insert(0, victim)
            preempted += 1
        if not running:
            if swapped and not waiting:
                raise MemoryError("the budget holds no single request")
            continue
        kv.step_async([r.slot for r in running],
                      [r.cached + 1 for r in running])
        logits = model.step(kv, torch.tensor([r.slot for r in running]),
                            torch.tensor([r.cached for r in running]),
                            torch.tensor([r.out[-1] for r in running]))
        still = []
        for i, r in enumerate(running):
            r.cached += 1
            if r.emit(logits[i]):
                kv.close(r.slot)
                done.append(r)
            else:
                still.append(r)
        running = still
    done.sort(key=lambda r: r.rid)
    return ([r.out for r in done], [torch.stack(r.logits) for r in done],
            preempted)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--budget-pages", type=int, default=0,
                    help="the cache's budget in 2 MiB pages (0: none); a "
                         "request takes 4 per 64 tokens")
    args = ap.parse_args()
    cfg = Config()
    model = TinyDecoder(cfg)
    reqs = make_requests(args.requests, cfg)
    config = dict(backend="host", host_budget=256 << 20)
    if args.budget_pages:
        config["budget"] = args.budget_pages * (2 << 20)
    kv = VkvKV(cfg, args.batch + 1, **config)
    t0 = time.perf_counter()
    toks, _, preempted = serve(model, kv, reqs, args.batch)
    dt = time.perf_counter() - t0
    ref, _, _ = serve(model, TorchKV(cfg, args.batch + 1), reqs, args.batch)
    n = sum(len(t) for t in toks)
    print(f"{len(reqs)} requests, {n} tokens in {dt:.2f} s "
          f"({n / dt:.0f} tokens/s), {preempted} preemptions, "
          f"{kv.cache.stats()['swap_outs']} swap-outs; "
          f"same tokens as a torch cache: {toks == ref}")


if __name__ == "__main__":
    main()
