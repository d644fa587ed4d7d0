# SPDX-License-Identifier: MIT
"""The example engine (python/examples/decode.py): over vkv it computes what
it computes over a preallocated torch cache, with and without swapping."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import decode  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    cfg = decode.Config()
    model = decode.TinyDecoder(cfg)
    reqs = decode.make_requests(6, cfg, seed=3)
    ref = decode.serve(model, decode.TorchKV(cfg, 5), reqs, max_batch=4)
    return cfg, model, reqs, ref


def test_same_logits_as_a_torch_cache(setup):
    cfg, model, reqs, (ref_toks, ref_logits, _) = setup
    kv = decode.VkvKV(cfg, 5, backend="host")
    toks, logits, preempted = decode.serve(model, kv, reqs, max_batch=4)
    assert preempted == 0
    assert toks == ref_toks
    for a, b in zip(logits, ref_logits):
        assert torch.equal(a, b)
    kv.cache.destroy()


def test_swapping_under_a_small_budget_keeps_outputs(setup):
    cfg, model, reqs, (ref_toks, ref_logits, _) = setup
    # Room for about two requests at a time where four would run.
    kv = decode.VkvKV(cfg, 5, backend="host", budget=16 * (2 << 20),
                      host_budget=256 << 20)
    toks, logits, preempted = decode.serve(model, kv, reqs, max_batch=4)
    st = kv.cache.stats()
    assert preempted > 0 and st["swap_outs"] >= preempted
    assert st["swap_ins"] > 0
    assert toks == ref_toks
    # Batches differ from the reference's, and a batched matmul's rows may
    # round differently with the batch: the KV itself came back exactly.
    for a, b in zip(logits, ref_logits):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    kv.cache.destroy()


def test_cat_grown_cache_agrees(setup):
    cfg, model, reqs, (ref_toks, ref_logits, _) = setup
    toks, logits, _ = decode.serve(model, decode.CatKV(cfg, 5), reqs, 4)
    assert toks == ref_toks
    for a, b in zip(logits, ref_logits):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
