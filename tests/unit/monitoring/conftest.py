"""Shared helpers for the monitoring tests: a small spec and a Triton-free router plan."""

from __future__ import annotations

import numpy as np
import pytest

from tritonab.backends._routing import CallResult, Router
from tritonab.splitter import load_spec_dict


def _make_spec(**overrides):
    data = {
        "name": "exp",
        "salt": "s",
        "variants": [
            {"name": "control", "model": "m1", "version": 1, "weight": 0.5},
            {"name": "treatment", "model": "m2", "weight": 0.5},
        ],
    }
    data.update(overrides)
    return load_spec_dict(data)


def _run_batch(router: Router, per_request, params):
    """Plan and 'execute' a batch without Triton: each call returns 2 * input."""
    plan = router.plan(per_request, params)
    results = [CallResult({"y": call.inputs["x"] * 2}, 123.0 + call.variant) for call in plan.calls]
    outcome = router.scatter(plan, [r.outputs for r in results])
    return plan, results, outcome


@pytest.fixture
def make_spec():
    """Factory: the test spec with top-level overrides."""
    return _make_spec


@pytest.fixture
def run_batch():
    """Plan, call (y = 2x) and scatter a batch without Triton."""
    return _run_batch


@pytest.fixture
def rows():
    """Factory: n rows of 3 float32 features."""
    return _rows


@pytest.fixture
def spec():
    return _make_spec()


@pytest.fixture
def router(spec):
    return Router(spec, ["x"], 64)


def _rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)


def _same(a, b, path="analysis"):
    """Equal, floats to 1e-9 relative (DuckDB sums run in another order over another
    format, and in parallel)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12, nan_ok=True), path
    else:
        assert a == b, path


@pytest.fixture
def same():
    """`same(a, b)`: nested dicts and lists equal, floats to 1e-9 relative."""
    return _same
