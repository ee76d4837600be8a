"""The router's logic without Triton: assignment per request/row, calls, scatter."""

from __future__ import annotations

import numpy as np
import pytest

from tritonab.backends._routing import (
    INVALID_PARAMETERS,
    VARIANT_OUTPUT,
    RequestError,
    Router,
    parse_parameters,
    read_text,
)
from tritonab.splitter import Allocation, load_spec_dict


def make_router(max_rows=8, **overrides) -> Router:
    data = {
        "name": "exp",
        "variants": [
            {"name": "control", "model": "m1", "weight": 0.5},
            {"name": "treatment", "model": "m2", "weight": 0.5},
        ],
        "unit_input": "unit",
        "allow_override": True,
    }
    data.update(overrides)
    return Router(load_spec_dict(data), ["x"], max_rows)


def fake_variant(call):
    """A stand-in variant: y = 10 * x + variant index, so rows are traceable."""
    x = call.inputs["x"]
    return {"y": x * 10 + call.variant}


def run(router, requests, params):
    plan = router.plan(requests, params)
    return plan, router.scatter(plan, [fake_variant(c) for c in plan.calls])


def rows(n, start=0):
    return np.arange(start, start + n, dtype=np.float32).reshape(n, 1)


def test_request_parameter_assigns_every_row_to_the_units_variant():
    router = make_router()
    expected = Allocation(("control", "treatment"), (0.5, 0.5)).assign_names("exp", ["alice"])[0]
    plan, out = run(router, [{"x": rows(3)}], [{"unit_id": "alice"}])
    assert [v.decode() for v in out[0][VARIANT_OUTPUT].ravel()] == [expected] * 3
    assert len(plan.calls) == 1
    index = router.names.index(expected)
    np.testing.assert_array_equal(out[0]["y"], rows(3) * 10 + index)


def test_per_row_units_route_each_row_like_a_single_row_request():
    router = make_router()
    units = np.array([f"user-{i}".encode() for i in range(40)], dtype=object).reshape(-1, 1)
    x = rows(40)
    _, batched = run(router, [{"x": x, "unit": units}], [{}])
    singles = [run(router, [{"x": x[i : i + 1], "unit": units[i : i + 1]}], [{}])[1][0] for i in range(40)]
    for name in ("y", VARIANT_OUTPUT):
        np.testing.assert_array_equal(batched[0][name], np.concatenate([s[name] for s in singles]))
    assert {v for v in batched[0][VARIANT_OUTPUT].ravel()} == {b"control", b"treatment"}


def test_rows_of_many_requests_share_one_call_per_variant():
    router = make_router(max_rows=64)
    requests = [{"x": rows(2, 10 * i)} for i in range(6)]
    params = [{"variant": "control" if i % 2 else "treatment"} for i in range(6)]
    plan, out = run(router, requests, params)
    assert sorted(c.variant for c in plan.calls) == [0, 1]
    for i, result in enumerate(out):
        index = 0 if i % 2 else 1
        np.testing.assert_array_equal(result["y"], rows(2, 10 * i) * 10 + index)


def test_calls_never_exceed_the_max_rows():
    router = make_router(max_rows=4)
    requests = [{"x": rows(3, 10 * i)} for i in range(5)]
    plan, out = run(router, requests, [{"variant": "control"}] * 5)
    assert all(sum(p.stop - p.start for _, _, p in c.parts) <= 4 for c in plan.calls)
    for i, result in enumerate(out):
        np.testing.assert_array_equal(result["y"], rows(3, 10 * i) * 10)


@pytest.mark.parametrize(
    ("params", "inputs", "overrides", "message"),
    [
        ({}, {}, {}, r"requires a unit id: set the request parameter `unit_id` or the input `unit`"),
        ({"variant": "nope"}, {}, {}, r"unknown variant `nope`.*\['control', 'treatment'\]"),
        ({"variant": "control"}, {}, {"allow_override": False}, "does not allow the `variant` override"),
        ({}, {"unit": np.array([[b"a"]], dtype=object)}, {}, "must hold one unit id per row"),
        ({}, {"unit": np.array([[b"a"], [b""]], dtype=object)}, {}, "has an empty unit id"),
        (parse_parameters(lambda: b'{"unit_id": "x\xed\xbf\xbf"}'.decode()), {}, {}, "not valid UTF-8"),
        (parse_parameters(lambda: "[1]"), {}, {}, "not an object"),
        ({"unit_id": "u"}, {"x": None}, {}, r"the request lacks input\(s\) \['x'\]; expected \['x'\]"),
    ],
)
def test_a_refused_request_fails_alone(params, inputs, overrides, message):
    router = make_router(**overrides)
    good = {"x": rows(2)}
    bad = {k: v for k, v in {"x": rows(2), **inputs}.items() if v is not None}
    plan, out = run(router, [good, bad, good], [{"unit_id": "u1"}, params, {"unit_id": "u2"}])
    assert isinstance(out[1], RequestError)
    assert out[1].invalid_argument
    assert __import__("re").search(message, out[1].message)
    assert not isinstance(out[0], RequestError) and not isinstance(out[2], RequestError)


def test_a_failing_variant_fails_only_its_requests():
    router = make_router()
    requests = [{"x": rows(1)}, {"x": rows(1)}]
    plan = router.plan(requests, [{"variant": "control"}, {"variant": "treatment"}])
    results = [RequestError("boom") if c.variant == 1 else fake_variant(c) for c in plan.calls]
    out = router.scatter(plan, results)
    assert out[1] == RequestError("boom")
    assert out[0][VARIANT_OUTPUT].ravel().tolist() == [b"control"]


def test_without_require_unit_rows_are_spread_at_random():
    router = make_router(require_unit=False)
    plan, out = run(router, [{"x": rows(2000)}], [{}])
    share = np.mean(out[0][VARIANT_OUTPUT].ravel() == b"treatment")
    assert 0.4 < share < 0.6


def test_shadow_sampling_follows_the_rate():
    router = make_router(
        shadow=[{"model": "s1", "sample_rate": 1.0}, {"model": "s2", "sample_rate": 0.000001}]
    )
    picks = [router.shadow_sample() for _ in range(200)]
    assert all(0 in p for p in picks)
    assert sum(1 in p for p in picks) <= 2


# -- variants that do not batch (max_batch_size 0) ---------------------------------------


def whole_router(**overrides) -> Router:
    router = make_router(**overrides)
    return Router(router.spec, ["x"], 1, batching=False)


def test_a_non_batching_request_goes_whole_to_its_units_variant():
    router = whole_router()
    allocation = Allocation(("control", "treatment"), (0.5, 0.5))
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)  # no batch dimension: 3 is a data dim
    requests = [{"x": matrix + i} for i in range(6)]
    units = [f"whole-{i}" for i in range(6)]
    plan, out = run(router, requests, [{"unit_id": u} for u in units])
    assert len(plan.calls) == 6 and plan.rows == [1] * 6
    expected = allocation.assign_names("exp", units)
    assert len(set(expected)) == 2
    for i, (result, name) in enumerate(zip(out, expected)):
        assert result[VARIANT_OUTPUT].shape == (1,)
        assert result[VARIANT_OUTPUT][0] == name.encode()
        np.testing.assert_array_equal(result["y"], (matrix + i) * 10 + router.names.index(name))


def test_a_non_batching_unit_input_holds_the_requests_one_unit():
    router = whole_router()
    unit = np.array([b"carol"], dtype=object)
    _, out = run(router, [{"x": rows(5), "unit": unit}], [{}])
    expected = Allocation(("control", "treatment"), (0.5, 0.5)).assign_names("exp", ["carol"])[0]
    assert out[0][VARIANT_OUTPUT].tolist() == [expected.encode()]
    assert out[0]["y"].shape == (5, 1)  # the request's own shape, whatever its first dim


def test_a_non_batching_request_without_a_unit_is_refused_and_others_answered():
    router = whole_router()
    plan, out = run(router, [{"x": rows(2)}, {"x": rows(2)}], [{}, {"unit_id": "dave"}])
    assert isinstance(out[0], RequestError) and "requires a unit id" in out[0].message
    assert isinstance(out[1], dict) and len(plan.calls) == 1


def test_a_non_batching_variant_error_fails_only_its_request():
    router = whole_router()
    requests = [{"x": rows(2)} for _ in range(2)]
    plan = router.plan(requests, [{"variant": "control"}, {"variant": "treatment"}])
    results = [RequestError("boom") if c.variant == 0 else fake_variant(c) for c in plan.calls]
    out = router.scatter(plan, results)
    assert isinstance(out[0], RequestError) and isinstance(out[1], dict)


def test_non_batching_without_require_unit_picks_one_variant_per_request():
    router = whole_router(require_unit=False, unit_input=None)
    plan, out = run(router, [{"x": rows(7)} for _ in range(40)], [{}] * 40)
    assert all(isinstance(v, int) for v in plan.variant_of_row)
    labels = {o[VARIANT_OUTPUT][0] for o in out}
    assert labels == {b"control", b"treatment"}


def _undecodable() -> str:
    """What pb_utils does with parameters that are not UTF-8 (a JSON `\\udfff` escape)."""
    return b'{"unit_id": "x\xed\xbf\xbfy"}'.decode("utf-8")


def test_parameters_that_are_not_utf8_are_refused_not_raised():
    params = parse_parameters(_undecodable)
    assert list(params) == ["__tritonab_invalid_parameters__"]
    assert "not valid UTF-8 (byte 14)" in next(iter(params.values()))
    assert parse_parameters(lambda: "") == {}
    assert parse_parameters(lambda: '{"unit_id": "u"}') == {"unit_id": "u"}
    assert parse_parameters(lambda: "{broken") == {
        "__tritonab_invalid_parameters__": "request parameters are not valid JSON"
    }
    assert read_text(_undecodable) == "" and read_text(lambda: "id-1") == "id-1"


def test_labels_of_a_whole_request_are_built_once_and_read_only():
    router = make_router()
    first = router.labels(1, 3)
    assert first is router.labels(1, 3) and first is not router.labels(1, 2)
    assert first.tolist() == [[b"treatment"]] * 3 and not first.flags.writeable


def test_parameters_orjson_refuses_are_read_like_the_standard_module():
    assert parse_parameters(lambda: '{"unit_id": "u", "w": NaN}')["unit_id"] == "u"
    assert parse_parameters(lambda: '{"big": 123456789012345678901234567890}')["big"] > 2**64


def test_the_unit_cache_gives_each_id_the_variant_its_hash_gives(monkeypatch):
    import tritonab.backends._routing as routing
    from tritonab.splitter.assign import bucket

    monkeypatch.setattr(routing, "UNIT_CACHE", 50)  # overflow: the cache empties and refills
    router = make_router()
    allocation = router.allocation
    ids = [f"user-{i}" for i in range(120)] + [7, 7.0, True, b"raw"]
    for _ in range(2):
        for unit in ids:
            want = int(allocation.index_of(np.array([bucket(router.salt, unit)]))[0])
            assert router.assign({"x": rows(1)}, {"unit_id": unit}, 1) == want, unit
    assert len(router._by_unit) <= 50
    assert all(type(k) is str for k in router._by_unit)  # 7, 7.0 and True are not one key


def test_whole_request_batches_get_the_variants_plan_gives_them():
    router = make_router()
    units = [f"user-{i}" for i in range(50)]
    requests = [{"x": rows(1 + i % 3)} for i in range(50)]
    params = [{"unit_id": u, "other": 1} for u in units]
    variants = router.whole_variants(requests, params)
    plan = router.plan(requests, params)
    assert variants == plan.variant_of_row
    assert set(variants) == {0, 1}  # both variants occur, so the comparison means something


@pytest.mark.parametrize(
    ("params", "inputs"),
    [
        ({"unit_id": "alice", "variant": "control"}, {"x": rows(1)}),  # an override
        ({"unit_id": ""}, {"x": rows(1), "unit": np.array([[b"a"]], dtype=object)}),  # unit column
        ({"unit_id": 7}, {"x": rows(1)}),  # not a string: hashed by `assign`
        ({"unit_id": "alice"}, {}),  # a missing input: refused by `assign`
        ({INVALID_PARAMETERS: "bad"}, {"x": rows(1)}),
        ({}, {"x": rows(1)}),
    ],
)
def test_whole_request_path_leaves_every_other_batch_to_plan(params, inputs):
    router = make_router()
    ok = ({"x": rows(1)}, {"unit_id": "bob"})
    assert router.whole_variants([ok[0]], [ok[1]]) is not None
    assert router.whole_variants([ok[0], inputs], [ok[1], params]) is None


def test_non_batching_routers_never_take_the_whole_request_path():
    spec = make_router().spec
    router = Router(spec, ["x"], 1, batching=False)
    assert router.whole_variants([{"x": rows(1)}], [{"unit_id": "alice"}]) is None
