"""Test runs only (tests/conftest.py puts this folder on PYTHONPATH): every Python process the suite
starts — the app's worker, CLI children, forks and spawns — derives vault keys with the suite's few
KDF iterations, as the test process does, so a vault made in one opens in the other.

The iteration count is set on ``agreements._vault`` right after that module loads (an import hook):
importing it here would change what a child has loaded, which some tests check.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

_ITERATIONS = os.environ.get("PATHSHARE_SUITE_KDF_ITER")


class _SuiteKdf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name != "agreements._vault":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module, run=run):  # type: ignore[no-untyped-def]
                    run(module)
                    module._TEST_KDF_ITER = int(_ITERATIONS or 0) or None

                spec.loader.exec_module = exec_module  # type: ignore[method-assign]
                return spec
        return None


if _ITERATIONS:
    sys.meta_path.insert(0, _SuiteKdf())
