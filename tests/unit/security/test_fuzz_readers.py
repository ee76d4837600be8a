"""Fuzzing the readers of user-written files through the command line (hypothesis).

Each reader gets random bytes, random text, and mutations of a valid example (bytes
flipped, inserted, deleted, the file cut short). Whatever it gets, the command ends
with an exit code and, when it refuses, one `error: ...` line naming the problem: never
a traceback. A refusal of bad input is exit 2; a check that ran and failed is exit 1
(`validate` of a repository whose manifest is bad, `audit verify` of a broken chain).

`TRITONAB_FUZZ_EXAMPLES` raises the number of examples (a sixth of it per reader: 25 by default).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritonab.cli import main
from tritonab.deploy.server import free_port

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = max(10, int(os.environ.get("TRITONAB_FUZZ_EXAMPLES", "150")) // 6)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SEGMENT = (
    b'{"time": 1764000000.0, "experiment": "demo_ab", "variant": "control", "unit_id": "u1", '
    b'"request_id": "", "region": "local", "latency_us": 812.0}\n'
)
PERF_CSV = (
    b"Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    b"Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
    b"p50 latency,p90 latency,p95 latency,p99 latency\n"
    b"1,900.5,30,400,50,10,250,20,4,800,1000,1100,1500\n"
)


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """A valid file with a few bytes flipped, inserted or deleted, or cut short."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and data:
            data[where] = draw(st.integers(0, 255))
        elif action == "insert":
            data[where:where] = draw(
                st.sampled_from([b"\xff\xfe", b"\x00", b":", b"- ", b"{", b",", b"\n", b"1e999"])
            )
        elif action == "delete" and data:
            del data[where : where + draw(st.integers(1, 8))]
        elif action == "truncate":
            del data[where:]
    return bytes(data)


def contents(seed: bytes):
    return st.one_of(mutated(seed), st.binary(max_size=200), st.text(max_size=200).map(str.encode))


def run(argv: list[str]) -> tuple[int, str]:
    """The CLI in this process; an escaping exception fails the test with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        except BaseException:
            pytest.fail(f"`tritonab {' '.join(argv)}` raised:\n{traceback.format_exc()}")
    text = out.getvalue() + err.getvalue()
    assert "Traceback" not in text, text
    return code, err.getvalue()


def check(code: int, err: str, allowed: tuple[int, ...] = (0, 2)) -> None:
    assert code in allowed, (code, err)
    if code == 2:
        assert err.startswith("error: ") or "\nerror: " in err, err


def _file(tmp_path_factory, name: str, data: bytes) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    return path


@FUZZ
@given(data=contents((ROOT / "examples" / "experiment.yaml").read_bytes()))
def test_experiment_spec(tmp_path_factory, data):
    check(*run(["experiment", "show", str(_file(tmp_path_factory, "experiment.yaml", data))]))


@FUZZ
@given(data=contents((ROOT / "examples" / "rollout.yaml").read_bytes()))
def test_rollout_spec(tmp_path_factory, data):
    path = _file(tmp_path_factory, "rollout.yaml", data)
    # A spec that happens to be valid meets a server that is not there: exit 2 too.
    argv = ["rollout", "run", str(path), "--triton", f"127.0.0.1:{free_port()}", "--max-ticks", "1"]
    argv += ["--state", str(path.with_suffix(".state")), "--audit", str(path.with_suffix(".audit"))]
    check(*run(argv))


@FUZZ
@given(data=contents((ROOT / "examples" / "transform.yaml").read_bytes()))
def test_transform_spec(tmp_path_factory, data):
    path = _file(tmp_path_factory, "transform.yaml", data)
    argv = ["transform", "t", "--spec", str(path), "--repository", str(path.parent / "repo")]
    check(*run(argv))


@FUZZ
@given(data=contents((ROOT / "examples" / "stats.csv").read_bytes()))
def test_stats_csv(tmp_path_factory, data):
    check(*run(["stats", "compare", str(_file(tmp_path_factory, "stats.csv", data))]))


@FUZZ
@given(data=contents((ROOT / "examples" / "outcomes.csv").read_bytes()))
def test_outcomes_csv(tmp_path_factory, data):
    path = _file(tmp_path_factory, "outcomes.csv", data)
    check(*run(["outcomes", "add", str(path), "--log-dir", str(path.parent / "logs")]))


@FUZZ
@given(data=contents(PERF_CSV))
def test_perf_analyzer_csv(tmp_path_factory, data):
    path = _file(tmp_path_factory, "perf.csv", data)
    argv = ["perf", "gate", "--baseline-csv", str(path), "--candidate-csv", str(path)]
    # A readable CSV is gated (exit 0 or 1); an unreadable one is refused (2).
    check(*run([*argv, "--min-throughput-ratio", "0.9"]), allowed=(0, 1, 2))


@FUZZ
@given(data=contents(SEGMENT * 3))
def test_log_segments(tmp_path_factory, data):
    logs = tmp_path_factory.mktemp("logs")
    folder = logs / "demo_ab" / "exposures"
    folder.mkdir(parents=True)
    (folder / "seg-000001.jsonl").write_bytes(data)
    check(*run(["logs", "show", str(logs), "demo_ab"]))


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("repo") / "model_repository"
    repo.mkdir()
    shutil.copytree(ROOT / "model_repository" / "demo_gbt", repo / "demo_gbt")
    return repo


@FUZZ
@given(data=contents((ROOT / "model_repository" / "demo_gbt" / "1" / "manifest.json").read_bytes()))
def test_manifest(repository, data):
    (repository / "demo_gbt" / "1" / "manifest.json").write_bytes(data)
    # `validate` reports a bad manifest as a finding (exit 1), naming the file.
    code, err = run(["validate", str(repository)])
    check(code, err, allowed=(0, 1, 2))
