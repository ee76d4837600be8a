"""A bandit on the real Triton: `tritonab rollout run` with `strategy: bandit` moves the live
router's weights (model-control reloads) from the exposure log the router writes and
the outcomes the client reports, one allocation period per tick, and promotes the arm
that converts better once its period-stratified comparison is significant."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.deploy.control import ModelControl
from tritonab.monitoring import audit
from tritonab.rollout import BanditState, load_state

pytestmark = pytest.mark.integration
EXPERIMENT = "ab_bandit"
RATES = {"control": 0.1, "treatment": 0.25}


@pytest.fixture(scope="module")
def bandit_router(server, router, loaded):
    """The demo router (control: the logistic pipeline, treatment: the GBT) at 50/50."""
    router(name=EXPERIMENT)
    with loaded(EXPERIMENT):
        yield server


def _exposure_lines(folder: Path) -> int:
    return sum(p.read_text().count("\n") for p in folder.glob("*.jsonl*")) if folder.is_dir() else 0


def _settle(folder: Path, expected: int, timeout: float = 20.0) -> None:
    """Wait until the router's writers have put `expected` exposure records on disk."""
    deadline = time.monotonic() + timeout
    while _exposure_lines(folder) < expected and time.monotonic() < deadline:
        time.sleep(0.2)


def _serve_period(url: str, log_dir: Path, period: int, rng: np.random.Generator, units: int = 200) -> None:
    """`units` users (half of them back from the last period) each send one request; each
    converts at its variant's rate, reported through the client as the router saw it."""
    x = np.zeros((1, 30), dtype=np.float32)
    ids = [f"p{period}-{i}" for i in range(units // 2)] + [
        f"p{max(period - 1, 0)}-{i}" for i in range(units // 2)
    ]
    with ExperimentClient(url) as client:
        for unit in ids:
            variant = client.infer(EXPERIMENT, {"input": x}, unit_id=unit).variant
            converted = int(rng.random() < RATES[variant])
            client.report_outcome(
                "converted", converted, unit_id=unit, experiment=EXPERIMENT, log_dir=log_dir
            )


def test_a_bandit_moves_the_live_weights_and_promotes_the_better_arm(bandit_router, log_dir, tmp_path):
    spec = {
        "strategy": "bandit",
        "experiment": EXPERIMENT,
        "reward": {"metric": "converted", "kind": "conversion"},
        "stats": {"log_dir": str(log_dir)},
        "floor": 0.05,
        "max_change": 0.2,
        "min_units": 40,
        "stop_probability": 0.995,
        "seed": 1,
        "interval_s": 0.1,
    }
    (tmp_path / "bandit.yaml").write_text(yaml.safe_dump(spec))
    argv = ["rollout", "run", str(tmp_path / "bandit.yaml"), "--triton", bandit_router.urls.grpc]
    argv += [
        "--state",
        str(tmp_path / "state.json"),
        "--audit",
        str(tmp_path / "audit.jsonl"),
        "--max-ticks",
        "1",
    ]
    rng = np.random.default_rng(5)
    folder = log_dir / EXPERIMENT / "exposures"
    served = _exposure_lines(folder)
    codes = []
    for period in range(8):
        codes.append(main(argv))
        if codes[-1] != 2:  # ended (0 promoted, 1 rolled back)
            break
        _serve_period(bandit_router.urls.grpc, log_dir, period, rng)
        served += 200
        _settle(folder, served)
    state = load_state(tmp_path / "state.json")
    assert isinstance(state, BanditState)
    assert codes[-1] == 0 and state.status == "promoted" and state.winner == "treatment", state.last_reason
    assert len(state.periods) >= 2  # the burn-in, and at least one adaptive period before the end
    with ModelControl(bandit_router.urls.grpc) as control:
        assert control.experiment(EXPERIMENT)[0].weights == {"control": 0.0, "treatment": 1.0}
    records = audit.read(tmp_path / "audit.jsonl")
    moves = [r for r in records if r["event"] == "bandit.weights"]
    adaptive = moves[:-1]  # the last one is the promotion
    assert adaptive and all(
        r["after"]["control"] >= 0.05 - 1e-9 and r["after"]["treatment"] <= 0.95 + 1e-9 for r in adaptive
    )
    assert all(abs(r["after"]["treatment"] - r["before"]["treatment"]) <= 0.2 + 1e-9 for r in adaptive)
    promote = [r for r in records if r["event"] == "bandit.promote"][0]
    assert promote["analysis"]["mismatched_periods"] == []
    assert promote["analysis"]["comparisons"]["treatment"]["p_value"] < 0.05
    assert audit.verify(tmp_path / "audit.jsonl").ok
