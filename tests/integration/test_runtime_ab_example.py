"""`examples/runtime_ab.py` on the session server, as a user runs it against a running
one: it derives a runtime-config variant of `demo_gbt` (same artifact, two instances,
a batching queue delay), routes users 50/50 between the two, finds both arms answering
identically, and has `perf compare` name the configuration difference. Latency figures
are printed, never asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tritonab.converters import read_manifest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "runtime_ab.py"
VARIANT = "demo_gbt_x2_example"  # not test_runtime_variants' name: both share the repository


def test_the_runtime_config_ab_example(server, repository):
    argv = [sys.executable, str(EXAMPLE), "--requests", "60", "--workers", "4", "--window-ms", "200"]
    argv += ["--variant", VARIANT, "--repository", str(repository), "--triton", server.urls.grpc]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    out = done.stdout
    source = read_manifest(repository / "demo_gbt" / "1")["artifact"]["sha256"]
    assert read_manifest(repository / VARIANT / "1")["artifact"]["sha256"] == source
    assert f"sha256 {source}" in out
    assert "arm one_instance" in out and "arm two_instances" in out
    assert "same predictions on the" in out and ": yes" in out
    assert "  instance_group[0].count: 1 -> 2" in out
    assert "  dynamic_batching.max_queue_delay_microseconds: (unset) -> 200" in out
    assert "candidate / baseline: throughput" in out
