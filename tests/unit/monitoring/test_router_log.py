"""RouterLog without Triton: one exposure per routed row, payloads redacted/hashed before disk."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tritonab.backends._routing import RoutedBatch, Router
from tritonab.monitoring.router_log import LOG_DIR_ENV, RouterLog, resolve_log_dir
from tritonab.monitoring.segments import read_records


def _log(spec, tmp_path):
    router = Router(spec, ["x", "secret", "card"] if spec.logging.redact else ["x"], 64)
    return router, RouterLog(spec, tmp_path, "exp_0_0", list(router.names))


def test_one_exposure_per_row_with_variant_unit_and_latency(tmp_path, spec, rows, run_batch):
    router, log = _log(spec, tmp_path)
    per_request = [{"x": rows(1, i)} for i in range(6)] + [{"x": rows(3, 9)}]
    params = [{"unit_id": f"u{i}"} for i in range(6)] + [{"unit_id": "batch-unit"}]
    plan, results, outcome = run_batch(router, per_request, params)
    log.record(RoutedBatch(1000.0, [f"r{i}" for i in range(7)], params, per_request, plan, results, outcome))
    log.close()
    records, _ = read_records(tmp_path / "exp" / "exposures")
    assert len(records) == 9
    by_request = {}
    for r in records:
        by_request.setdefault(r["request_id"], []).append(r)
    assert [r["row"] for r in by_request["r6"]] == [0, 1, 2]
    for i in range(6):
        (r,) = by_request[f"r{i}"]
        variant = router.names[plan.variant_of_row[i]]
        assert (r["variant"], r["unit_id"], r["experiment"]) == (variant, f"u{i}", "exp")
        assert r["region"] == "local"
        assert r["model"] == {"control": "m1", "treatment": "m2"}[variant]
        assert r["latency_us"] == 123.0 + plan.variant_of_row[i] and r["ok"] is True
    assert log.take_counts()["exposures"] == (9, 0)
    assert (tmp_path / "exp" / "spec.json").exists()


def test_a_non_batching_router_logs_one_exposure_per_request(tmp_path, make_spec, rows, run_batch):
    spec = make_spec(logging={"sample_rate": 1.0})
    router = Router(spec, ["x"], 1, batching=False)
    log = RouterLog(spec, tmp_path, "exp_0_0", list(router.names))
    per_request = [{"x": rows(4, i)} for i in range(5)]  # 4 is a data dim here, not rows
    params = [{"unit_id": f"u{i}"} for i in range(5)]
    plan, results, outcome = run_batch(router, per_request, params)
    log.record(RoutedBatch(1000.0, [f"r{i}" for i in range(5)], params, per_request, plan, results, outcome))
    log.close()
    records, _ = read_records(tmp_path / "exp" / "exposures")
    assert sorted((r["request_id"], r["row"]) for r in records) == [(f"r{i}", 0) for i in range(5)]
    for r in records:
        i = int(r["request_id"][1:])
        assert r["variant"] == router.names[plan.variant_of_row[i]] and r["unit_id"] == f"u{i}"
    payloads, _ = read_records(tmp_path / "exp" / "payloads")
    assert sorted(len(p["variants"]) for p in payloads) == [1] * 5
    assert log.take_counts()["exposures"] == (5, 0)


def test_invalid_requests_get_no_exposure(tmp_path, spec, rows, run_batch):
    router, log = _log(spec, tmp_path)
    per_request = [{"x": rows(1)}, {"x": rows(1)}]
    params = [{"unit_id": "u1"}, {}]  # the second has no unit id: refused
    plan, results, outcome = run_batch(router, per_request, params)
    log.record(RoutedBatch(1000.0, ["a", "b"], params, per_request, plan, results, outcome))
    log.close()
    records, _ = read_records(tmp_path / "exp" / "exposures")
    assert [r["request_id"] for r in records] == ["a"]


def test_redacted_and_hashed_values_never_reach_disk(tmp_path, make_spec, rows, run_batch):
    spec = make_spec(
        logging={
            "sample_rate": 1.0,
            "redact": ["secret"],
            "hash": ["card", "unit_id"],
            "hash_salt": "pepper",
            "sink": {"region": "eu-west"},
        },
        allowed_regions=["eu-west"],
    )
    router, log = _log(spec, tmp_path)
    secret = np.array([[b"TOPSECRET-1"], [b"TOPSECRET-2"]], dtype=object)
    card = np.array([[b"4111-1111"], [b"4222-2222"]], dtype=object)
    per_request = [{"x": rows(2), "secret": secret, "card": card}]
    params = [{"unit_id": "alice@example.com"}]
    plan, results, outcome = run_batch(router, per_request, params)
    log.record(RoutedBatch(1000.0, ["req-1"], params, per_request, plan, results, outcome))
    log.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "exp" / "payloads").iterdir())
    for plain in (b"TOPSECRET", b"4111-1111", b"4222-2222", b"alice@example.com"):
        assert plain not in raw
    records, _ = read_records(tmp_path / "exp" / "payloads")
    (payload,) = records
    assert payload["inputs"]["secret"] == "[REDACTED]"
    expected = "sha256:" + hashlib.sha256(b"pepper4111-1111").hexdigest()
    assert payload["inputs"]["card"][0] == [expected]
    assert payload["unit_id"] == "sha256:" + hashlib.sha256(b"pepperalice@example.com").hexdigest()
    assert payload["region"] == "eu-west" and payload["request_id"] == "req-1"
    np.testing.assert_allclose(payload["outputs"]["y"], rows(2) * 2, rtol=1e-6)
    assert payload["variants"] == [router.names[plan.variant_of_row[0]]] * 2


def test_sample_rate_zero_writes_no_payloads(tmp_path, spec):
    _, log = _log(spec, tmp_path)
    assert log.payloads is None and set(log.writers) == {"exposures"}
    log.close()


def test_log_dir_from_spec_path_then_environment(tmp_path, make_spec):
    assert resolve_log_dir(make_spec(), {}) is None
    assert resolve_log_dir(make_spec(), {LOG_DIR_ENV: str(tmp_path)}) == tmp_path
    pinned = make_spec(logging={"sink": {"region": "local", "path": "/data/logs"}})
    assert str(resolve_log_dir(pinned, {LOG_DIR_ENV: str(tmp_path)})) == "/data/logs"
    off = make_spec(logging={"enabled": False})
    assert resolve_log_dir(off, {LOG_DIR_ENV: str(tmp_path)}) is None


@settings(max_examples=300, deadline=None)
@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.one_of(st.none(), st.text(max_size=30)),
)
def test_preserialised_fields_are_what_json_writes(number, text):
    """Exposure lines are written with format strings: each field as `json.dumps` writes it."""
    from tritonab.monitoring.router_log import _json_number, _json_text

    assert _json_number(number) == json.dumps(number)
    assert _json_text(text) == json.dumps(text)
