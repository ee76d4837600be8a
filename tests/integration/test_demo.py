"""`make demo`'s own steps on the session server: its table must equal the requests it
sent and the exposure log the router wrote.

The demo's functions run against `demo_fresh`, a copy of the demo router loaded for this
module only, so no other test's traffic is in its counts or its log folder.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

from tritonab.monitoring.segments import read_records
from tritonab.splitter import load_spec, load_spec_dict

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "demo_fresh"
REQUESTS = 200


def _demo_module():
    sys.path.insert(0, str(ROOT / "examples"))  # demo.py imports train_demo beside it
    spec = importlib.util.spec_from_file_location("tritonab_examples_demo", ROOT / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_table_equals_its_requests_and_its_exposure_log(
    server, router, loaded, log_dir, tmp_path, capsys
):
    demo = _demo_module()
    router(name=EXPERIMENT)
    data = load_spec(ROOT / "examples" / "experiment.yaml").model_dump()
    spec = load_spec_dict({**data, "name": EXPERIMENT})
    _, x, _, y = demo.demo_data()
    args = Namespace(users=60, requests=REQUESTS, workers=4, log_dir=str(tmp_path), experiment=EXPERIMENT)
    with loaded(EXPERIMENT):
        traffic = demo.send_traffic(server, args, x, y)
        read = demo.print_split(server, spec, traffic)
        assert read.settled, read.mismatch()
        assert sum(read.rows.values()) == REQUESTS
        folder = log_dir / EXPERIMENT / "exposures"
        deadline = time.monotonic() + 30  # exposures reach disk on the writer's schedule
        while len(read_records(folder)[0]) < REQUESTS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert demo.check_exposures(read, spec, str(log_dir))
    assert "table rows equal the exposure log" in capsys.readouterr().out
    # A table that disagrees with the log is said loudly.
    skewed = type(read)(read.experiment, {}, read.expected, read.settled, read.reads)
    assert not demo.check_exposures(skewed, spec, str(log_dir))
    assert "MISMATCH: the table shows" in capsys.readouterr().out
