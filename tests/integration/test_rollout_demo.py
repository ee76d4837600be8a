"""`tritonab rollout demo`: the local canary promotes a healthy candidate and draws it."""

from __future__ import annotations

import json
from pathlib import Path

from tritonab.rollout import TickOutcome
from tritonab.rollout.demo import demo_spec, run_demo

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_promotes_and_leaves_its_picture(tmp_path):
    seen = []
    result = run_demo(
        tmp_path / "out",
        repository=ROOT / "model_repository",
        spec=demo_spec(steps=(50, 100), interval_s=1.0, window="3s"),
        rate=60.0,
        on_event=seen.append,
    )
    assert result.state.status == "promoted"
    assert [e.outcome for e in seen][-1] is TickOutcome.PROMOTE
    assert result.served > 100 and result.failures == 0
    # Every judged step waited out its window first: holds name it, none judged early.
    judged = [e for e in seen if e.checks]
    assert judged and all(e.checks[0].value is not None for e in judged)
    assert any("of the 3 s window" in e.reason for e in seen)
    assert result.picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(result.state_path.read_text())["status"] == "promoted"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "audit.jsonl",
        "audit.jsonl.head",
        "rollout.png",
        "state.json",
        "state.json.lock",
    ]
