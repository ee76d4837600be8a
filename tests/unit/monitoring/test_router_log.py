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


def test_record_whole_writes_what_the_general_path_writes(tmp_path, make_spec, rows, run_batch):
    """The common batch's hand-over (`record_whole`: one item for both streams, tensors
    copied per call) gives the records `record` gives, a failed call included."""
    from tritonab.backends._routing import CallResult, RequestError

    spec = make_spec(logging={"sample_rate": 1.0, "hash": ["unit_id"], "hash_salt": "pepper"})
    router = Router(spec, ["x"], 64)
    per_request = [{"x": rows(1 + i % 3, i)} for i in range(9)]
    params = [{"unit_id": f"u{i}"} for i in range(9)]
    plan, results, outcome = run_batch(router, per_request, params)
    failed = plan.calls[-1].variant
    results[-1] = CallResult(RequestError("variant down"), 99.0)
    outcome = router.scatter(plan, [r.outputs for r in results])
    ids = [f"r{i}" for i in range(9)]
    general, whole = tmp_path / "general", tmp_path / "whole"
    log = RouterLog(spec, general, "exp_0_0", list(router.names))
    log.record(RoutedBatch(1000.0, ids, params, per_request, plan, results, outcome))
    log.close()
    log = RouterLog(spec, whole, "exp_0_0", list(router.names))
    groups = [(c.variant, [r for r, _, _ in c.parts], c.inputs, res) for c, res in zip(plan.calls, results)]
    log.record_whole(1000.0, ids, [p["unit_id"] for p in params], list(plan.rows), groups)
    counts = log.take_counts()
    log.close()
    for stream in ("exposures", "payloads"):
        expected, _ = read_records(general / "exp" / stream)
        got, _ = read_records(whole / "exp" / stream)
        key = (lambda r: (r["request_id"], r.get("row", 0))) if stream == "exposures" else None
        assert sorted(got, key=key or (lambda r: r["request_id"])) == sorted(
            expected, key=key or (lambda r: r["request_id"])
        ), stream
    exposures, _ = read_records(whole / "exp" / "exposures")
    assert len(exposures) == sum(plan.rows)
    assert {r["ok"] for r in exposures if r["variant"] == router.names[failed]} == {False}
    payloads, _ = read_records(whole / "exp" / "payloads")
    assert counts == {"exposures": (sum(plan.rows), 0), "payloads": (len(payloads), 0)}
    assert 0 < len(payloads) < 9 and all(p["unit_id"].startswith("sha256:") for p in payloads)


def test_record_whole_samples_payloads_at_the_rate(tmp_path, make_spec, rows, run_batch):
    spec = make_spec(logging={"sample_rate": 0.3})
    router = Router(spec, ["x"], 64)
    log = RouterLog(spec, tmp_path, "exp_0_0", list(router.names))
    for b in range(40):
        per_request = [{"x": rows(1, 10 * b + i)} for i in range(10)]
        params = [{"unit_id": f"u{b}-{i}"} for i in range(10)]
        plan, results, _ = run_batch(router, per_request, params)
        groups = [
            (c.variant, [r for r, _, _ in c.parts], c.inputs, res) for c, res in zip(plan.calls, results)
        ]
        log.record_whole(
            1000.0, [f"r{b}-{i}" for i in range(10)], [p["unit_id"] for p in params], [1] * 10, groups
        )
    log.close()
    exposures, _ = read_records(tmp_path / "exp" / "exposures")
    payloads, _ = read_records(tmp_path / "exp" / "payloads")
    assert len(exposures) == 400 and 80 <= len(payloads) <= 160  # 120 expected; 4+ sigma
    by_request = {e["request_id"]: e for e in exposures}
    for p in payloads:
        e = by_request[p["request_id"]]
        assert p["variants"] == [e["variant"]] and p["unit_id"] == e["unit_id"]
        np.testing.assert_allclose(p["outputs"]["y"], 2 * np.asarray(p["inputs"]["x"]), rtol=1e-6)
