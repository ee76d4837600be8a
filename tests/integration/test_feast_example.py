"""The Feast example on the real Triton: `examples/feast/churn.py` trains on point-in-time
features, materialises them, writes its models into the session repository, loads them
on the session server and scores; then a strict lookup keyed by the requests' `unit_id`
(`on_missing: error`) in a running transform fails only the request whose customer the
store does not know."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tritonab.backends import TransformSpec
from tritonab.client import ExperimentClient
from tritonab.ensembles import build_transform
from tritonab.errors import ClientError

pytestmark = pytest.mark.integration
# The optional extra (`make` installs it, so CI runs these): skipped only when it is
# absent, never because an installed Feast fails to import.
if importlib.util.find_spec("feast") is None:
    pytest.skip("the `feast` extra is not installed", allow_module_level=True)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "feast" / "churn.py"


@pytest.fixture(scope="module")
def example(server, repository, tmp_path_factory):
    """The example, run as a user runs it, against the session server."""
    workdir = tmp_path_factory.mktemp("feast-example")
    argv = [sys.executable, str(EXAMPLE), "--customers", "120", "--workdir", str(workdir)]
    argv += ["--repository", str(repository), "--triton", server.urls.grpc]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    return done, workdir


def test_the_example_trains_materialises_serves_and_scores(example):
    done, _ = example
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    out = done.stdout
    assert "served 120 customers through `churn`" in out
    difference = float(out.split("max |difference| ")[1].split()[0])
    assert difference < 1e-5  # served features = historical features at the materialisation time
    auc = float(out.split("AUC on labels drawn after the materialisation: ")[1].split()[0])
    assert auc > 0.7


def test_a_strict_lookup_fails_only_the_unknown_customers_request(example, server, repository, loaded):
    _, workdir = example
    config = workdir / "feature_repo" / "feature_store.yaml"
    spec = TransformSpec.model_validate(
        {
            "input_width": 1,
            "steps": [
                {
                    "op": "feast_lookup",
                    "features": ["customer_stats:tenure_days", "customer_stats:orders_30d"],
                    "entity": "customer_id",
                    "on_missing": "error",
                }
            ],
        }
    )
    build_transform(
        "churn_strict",
        spec,
        repository,
        input_name="cart_value",
        output_name="features",
        files={"feature_store.yaml": config},
    )

    def call(customer: str):
        inputs = {"cart_value": np.ones((1, 1), np.float32)}
        with ExperimentClient(server.urls.grpc) as client:
            try:  # keyed by the request's `unit_id` parameter: no entity input
                return client.infer("churn_strict", inputs, unit_id=customer).outputs["features"]
            except ClientError as exc:
                return exc

    with loaded("churn_strict"):
        with ThreadPoolExecutor(max_workers=4) as pool:  # concurrent, so Triton may batch them
            results = list(pool.map(call, ["c0001", "nobody", "c0002", "c0003"]))
    assert [type(r).__name__ for r in results] == ["ndarray", "ClientError", "ndarray", "ndarray"], results
    assert "no online features for `customer_id` ['nobody']" in str(results[1])
    assert all(r.shape == (1, 3) and r[0, 1] > 0 for r in results if isinstance(r, np.ndarray))
