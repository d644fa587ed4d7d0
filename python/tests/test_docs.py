# SPDX-License-Identifier: MIT
"""The README's Python example runs as printed."""

import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_readme_example_runs():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    m = re.search(r"<!-- python-example -->\n```python\n(.*?)```", text,
                  re.S)
    assert m, "README.md has no marked Python example"
    env = {}
    exec(compile(m.group(1), "README.md", "exec"), env)
    cache, slot, k5 = env["cache"], env["slot"], env["k5"]
    assert cache.length(slot) == 1000
    assert k5.dtype.is_floating_point and bool((k5[slot, 999] == 1).all())
    cache.destroy()


def test_every_public_name_has_a_docstring():
    import vkv
    missing = []
    for owner in (vkv, vkv.Cache, vkv.Tensor):
        for name in dir(owner):
            if name.startswith("_") and name not in (
                    "__dlpack__", "__dlpack_device__", "__array_interface__",
                    "__cuda_array_interface__", "__enter__", "__exit__"):
                continue
            obj = getattr(owner, name)
            if isinstance(obj, (int, dict, list, type(vkv))):
                continue
            if not (getattr(obj, "__doc__", None) or "").strip():
                missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
    assert not missing, missing
