"""The router on a real tritonserver, over real HTTP and gRPC sockets."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from tritonab.client import ExperimentClient
from tritonab.errors import ClientError
from tritonab.monitoring.metrics import router_metrics
from tritonab.splitter import Allocation

pytestmark = pytest.mark.integration
EXPERIMENT = "demo_ab"
INPUT = "input"


@pytest.fixture(scope="module", params=["grpc", "http"])
def client(request, server):
    url = server.urls.grpc if request.param == "grpc" else server.urls.http
    with ExperimentClient(url, request.param) as c:
        yield c


@pytest.fixture(scope="module")
def grpc(server):
    with ExperimentClient(server.urls.grpc, "grpc") as c:
        yield c


def unit_column(units):
    return np.array([u.encode() for u in units], dtype=object).reshape(-1, 1)


def test_shares_are_within_four_sigma_of_the_weights(grpc, features):
    units = [f"share-{i}" for i in range(6000)]
    counts = {"control": 0, "treatment": 0}
    for start in range(0, len(units), 64):
        chunk = units[start : start + 64]
        x = features[np.arange(len(chunk)) % len(features)]
        result = grpc.infer("ab_rows", {INPUT: x, "unit": unit_column(chunk)})
        for v in result.variants:
            counts[v] += 1
    n = len(units)
    sigma = np.sqrt(0.25 * n)
    assert abs(counts["treatment"] - n / 2) <= 4 * sigma, counts


def test_the_same_unit_always_gets_the_same_variant(client, features):
    spec = client.spec(EXPERIMENT)
    allocation = Allocation(tuple(spec.weights), tuple(spec.weights.values()))
    for i in range(25):
        unit = f"sticky-{i}"
        expected = allocation.assign_names(spec.effective_salt, [unit])[0]
        seen = {
            client.infer(EXPERIMENT, {INPUT: features[i : i + 2]}, unit_id=unit).variant for _ in range(3)
        }
        assert seen == {expected}


def test_a_batch_with_per_row_units_routes_each_row_like_a_single_row_request(grpc, features):
    units = [f"row-{i}" for i in range(24)]
    x = features[:24]
    batched = grpc.infer("ab_rows", {INPUT: x, "unit": unit_column(units)})
    singles = [
        grpc.infer("ab_rows", {INPUT: x[i : i + 1], "unit": unit_column(units[i : i + 1])}) for i in range(24)
    ]
    assert batched.variants == [s.variant for s in singles]
    assert len(set(batched.variants)) == 2
    np.testing.assert_array_equal(
        batched.outputs["label"], np.concatenate([s.outputs["label"] for s in singles])
    )
    # onnxruntime's kernels may round differently at another batch size: last-bit tolerance.
    np.testing.assert_allclose(
        batched.outputs["probabilities"],
        np.concatenate([s.outputs["probabilities"] for s in singles]),
        rtol=1e-5,
        atol=1e-6,
    )


def test_outputs_equal_a_direct_call_to_the_chosen_variant(client, features):
    spec = client.spec(EXPERIMENT)
    direct = grpcclient.InferenceServerClient(client.url) if client.protocol == "grpc" else None
    for i in range(6):
        routed = client.infer(EXPERIMENT, {INPUT: features[i : i + 4]}, unit_id=f"eq-{i}")
        variant = spec.variant(routed.variant)
        fast = client.infer(EXPERIMENT, {INPUT: features[i : i + 4]}, unit_id=f"eq-{i}", fast_path=True)
        assert fast.variants == routed.variants
        for name in ("label", "probabilities"):
            np.testing.assert_array_equal(fast.outputs[name], routed.outputs[name])
        if direct is not None:
            tensor = grpcclient.InferInput(INPUT, [4, 30], "FP32")
            tensor.set_data_from_numpy(features[i : i + 4])
            response = direct.infer(variant.model, [tensor], model_version=str(variant.version))
            np.testing.assert_array_equal(response.as_numpy("probabilities"), routed.outputs["probabilities"])


@pytest.mark.parametrize(
    ("inputs", "kwargs", "message"),
    [
        (lambda x: {INPUT: x[:2]}, {}, r"INVALID_ARGUMENT|400.*requires a unit id"),
        (lambda x: {INPUT: x[:2].astype(np.float64)}, {"unit_id": "u"}, "data-type is 'FP64'"),
        (lambda x: {INPUT: x[:2, :7]}, {"unit_id": "u"}, r"unexpected shape.*\[2,7\]"),
        (lambda x: {INPUT: x[:2]}, {"unit_id": "u", "variant": "nope"}, "unknown variant `nope`"),
    ],
)
def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(
    client, features, inputs, kwargs, message
):
    with pytest.raises(ClientError, match=message):
        client.infer(EXPERIMENT, inputs(features), **kwargs)
    assert client.infer(EXPERIMENT, {INPUT: features[:2]}, unit_id="after").outputs["label"].shape == (2, 1)


def test_a_bad_request_fails_alone_inside_a_busy_batch(grpc, features):
    def one(i):
        try:
            if i % 4 == 0:
                grpc.infer(EXPERIMENT, {INPUT: features[:1]})  # no unit id
                return "unexpected success"
            return grpc.infer(EXPERIMENT, {INPUT: features[i : i + 1]}, unit_id=f"busy-{i}").variant
        except ClientError as exc:
            return f"error: {exc}"

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(200)))
    for i, result in enumerate(results):
        if i % 4 == 0:
            assert result.startswith("error:") and "requires a unit id" in result
        else:
            assert result in ("control", "treatment")


def test_the_override_forces_a_variant(grpc, features):
    for name in ("control", "treatment"):
        assert grpc.infer(EXPERIMENT, {INPUT: features[:3]}, variant=name).variants == [name] * 3


def test_a_failing_variant_returns_its_own_message(grpc, features):
    spec = grpc.spec("ab_failing")
    allocation = Allocation(tuple(spec.weights), tuple(spec.weights.values()))
    units = [f"f-{i}" for i in range(40)]
    for unit, variant in zip(units, allocation.assign_names(spec.effective_salt, units)):
        if variant == "treatment":
            with pytest.raises(
                ClientError,
                match=r"variant `treatment` \(model `always_fails`\): "
                r"model exploded",
            ):
                grpc.infer("ab_failing", {INPUT: features[:1]}, unit_id=unit)
        else:
            assert grpc.infer("ab_failing", {INPUT: features[:1]}, unit_id=unit).variant == "control"


def test_shadow_never_changes_a_response(grpc, features, server):
    for i in range(20):
        plain = grpc.infer(EXPERIMENT, {INPUT: features[i : i + 3]}, unit_id=f"sh-{i}")
        shadowed = grpc.infer("ab_shadow", {INPUT: features[i : i + 3]}, unit_id=f"sh-{i}")
        assert shadowed.variants == plain.variants
        np.testing.assert_array_equal(shadowed.outputs["probabilities"], plain.outputs["probabilities"])
    metrics = _settled_metrics(
        server,
        "ab_shadow",
        lambda m: (
            m.get(("ab_shadow", "shadow:always_fails")) is not None
            and m[("ab_shadow", "shadow:always_fails")].errors >= 60
        ),
    )
    assert metrics[("ab_shadow", "shadow:always_fails")].errors >= 60
    assert metrics[("ab_shadow", "shadow:demo_logreg_pipeline")].errors == 0


def _settled_metrics(server, experiment, ready, timeout=10.0):
    """Metric updates leave the request path on a background thread: poll until settled."""
    deadline = time.monotonic() + timeout
    metrics = router_metrics(server.urls.metrics, experiment)
    while not ready(metrics) and time.monotonic() < deadline:
        time.sleep(0.1)
        metrics = router_metrics(server.urls.metrics, experiment)
    return metrics


def test_metrics_appear_per_variant(grpc, features, server):
    for i in range(30):
        try:
            grpc.infer("ab_failing", {INPUT: features[:2]}, unit_id=f"mm-{i}")
        except ClientError:
            pass
    with pytest.raises(ClientError):
        grpc.infer("ab_failing", {INPUT: features[:2]})
    metrics = _settled_metrics(
        server,
        "ab_failing",
        lambda m: ("ab_failing", "_invalid") in m and m[("ab_failing", "_invalid")].rows >= 2,
    )
    control, treatment = metrics[("ab_failing", "control")], metrics[("ab_failing", "treatment")]
    assert control.rows > 0 and control.errors == 0
    assert treatment.rows > 0 and treatment.errors == treatment.rows
    assert metrics[("ab_failing", "_invalid")].errors >= 2
    assert control.latency_count > 0
    assert 0 < control.latency_quantile(0.5) < control.latency_quantile(1.0) + 1


def test_cli_infer_routes_like_the_client(server, features, capsys):
    import json

    from tritonab.cli import main

    rows = json.dumps(features[:2].tolist())
    assert (
        main(
            [
                "experiment",
                "infer",
                EXPERIMENT,
                "--url",
                server.urls.grpc,
                "--input",
                f"{INPUT}={rows}",
                "--unit-id",
                "cli-user",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    with ExperimentClient(server.urls.grpc) as client:
        expected = client.infer(EXPERIMENT, {INPUT: features[:2]}, unit_id="cli-user")
    assert printed["variants"] == expected.variants
    assert printed["outputs"]["label"] == expected.outputs["label"].tolist()
    assert (
        main(["experiment", "infer", EXPERIMENT, "--url", server.urls.grpc, "--input", f"{INPUT}={rows}"])
        == 1
    )
    assert "requires a unit id" in capsys.readouterr().err
    assert (
        main(
            [
                "experiment",
                "infer",
                EXPERIMENT,
                "--url",
                server.urls.grpc,
                "--input",
                f"nope={rows}",
                "--unit-id",
                "u",
            ]
        )
        == 1
    )
    assert "the experiment's inputs are ['input']" in capsys.readouterr().err
