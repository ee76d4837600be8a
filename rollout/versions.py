"""Version-level helpers for blue-green switches: version policies, the router's pinned
version, single inferences on a version, and the smoke set run on two versions.

Model configs are `model_config_pb2.ModelConfig` messages (typed `Any`: protobuf
classes carry no annotations here).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tritonab._transport import Connection, Endpoint
from tritonab.errors import RolloutError, TritonABError
from tritonab.rollout.spec import SmokeSpec
from tritonab.splitter.spec import Experiment, load_spec_dict

Inputs = Mapping[str, npt.NDArray[Any]]
Infer = Callable[[str, int, Inputs], None]
"""`(model, version, inputs)`: one inference; raises on failure."""


class VersionControl(Protocol):
    """Model control as version switches use it (`tritonab.deploy.control.ModelControl`)."""

    def config(self, model: str) -> Any: ...

    def load(self, model: str, config: Any = None) -> None: ...

    def is_ready(self, model: str, version: int = -1) -> bool: ...

    def experiment(self, name: str) -> tuple[Experiment, Any]: ...


def set_versions(control: VersionControl, model: str, versions: Sequence[int]) -> None:
    """Reload `model` serving exactly `versions` (`version_policy { specific {...} }`).

    Args:
        control: model control.
        model: the model.
        versions: the versions it serves after the reload.

    Raises:
        ClientError: Triton refused the reload.
    """
    config = control.config(model)
    del config.version_policy.specific.versions[:]
    config.version_policy.specific.versions.extend(sorted(versions))
    control.load(model, config)


def pin_version(control: VersionControl, experiment: str, variant: str, version: int) -> None:
    """Reload the router with `variant` pinned to `version` (one config override).

    Args:
        control: model control.
        experiment: the router.
        variant: its variant.
        version: the model version the variant calls after the reload.

    Raises:
        SpecError: the router's spec does not take the change.
        ClientError: Triton refused the reload.
    """
    from tritonab.ensembles.config import set_parameter
    from tritonab.ensembles.repository import ROUTER_PARAMETER

    spec, config = control.experiment(experiment)
    data = spec.model_dump()
    for v in data["variants"]:
        if v["name"] == variant:
            v["version"] = version
    updated = load_spec_dict(data, source=f"experiment `{experiment}`")
    set_parameter(config, ROUTER_PARAMETER, updated.to_json())
    control.load(experiment, config)


def server_infer(endpoint: Endpoint | str) -> Infer:
    """An `Infer` over one connection to the server (errors raise `RolloutError`).

    Args:
        endpoint: the server (`host:port` for plaintext gRPC, or an `Endpoint`).

    Returns:
        The inference function (one connection, reused).
    """
    connection = Connection(endpoint, error=RolloutError)

    def infer(model: str, version: int, inputs: Inputs) -> None:
        """One request to one version; the outputs are not kept."""
        try:
            connection.infer(model, inputs, version=version)
        except RolloutError as exc:
            raise RolloutError(f"`{model}` version {version}: {exc}") from exc

    return infer


def smoke_inputs(
    config: Any, input_data: str, count: int, seed: int = 0
) -> list[dict[str, npt.NDArray[Any]]]:
    """Single-sample requests for a model config: random, zero, or from an `.npz` file.

    Args:
        config: the model's config (inputs, dims, data types, max batch size).
        input_data: `random`, `zero`, or an `.npz` file (one array per input, samples on
            the first axis, reused in turn when there are fewer than `count`).
        count: how many requests.
        seed: for `random`.

    Returns:
        `count` requests, each an input name -> array mapping.

    Raises:
        RolloutError: the `.npz` file cannot be read.
    """
    from tritonab.ensembles.config import to_numpy_dtype

    if input_data not in ("random", "zero"):
        try:
            with np.load(Path(input_data)) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise RolloutError(f"smoke input data `{input_data}`: cannot read: {exc}") from None
        n = min(len(a) for a in arrays.values())
        return [{k: a[i % n][None, ...] for k, a in arrays.items()} for i in range(count)]
    rng = np.random.default_rng(seed)
    batched = config.max_batch_size > 0
    samples = []
    for _ in range(count):
        sample = {}
        for tensor in config.input:
            dims = [max(int(d), 1) for d in tensor.dims]
            shape = [1, *dims] if batched else dims
            dtype = to_numpy_dtype(tensor.data_type)
            if dtype == np.object_:
                sample[tensor.name] = np.full(shape, b"smoke", dtype=object)
            elif input_data == "zero":
                sample[tensor.name] = np.zeros(shape, dtype=dtype)
            else:
                sample[tensor.name] = rng.standard_normal(shape).astype(dtype)
        samples.append(sample)
    return samples


def timed_infer(infer: Infer, model: str, version: int, inputs: Inputs) -> float | None:
    """Seconds one inference took, None when it failed (a `TritonABError`)."""
    started = time.perf_counter()
    try:
        infer(model, version, inputs)
    except TritonABError:
        return None
    return time.perf_counter() - started


def run_smoke(
    infer: Infer, model: str, old: int, new: int, samples: Sequence[Inputs], spec: SmokeSpec
) -> tuple[bool, dict[str, Any]]:
    """The smoke set on both versions, interleaved, so both see the same load.

    Args:
        infer: one inference.
        model: the model.
        old, new: its two versions.
        samples: the requests, each sent to both.
        spec: the error-rate and latency-ratio limits.

    Returns:
        Whether the new version passed, and the figures it rests on (error rates and
        median latencies per side, their ratio, the thresholds).
    """
    times: dict[str, list[float | None]] = {"old": [], "new": []}
    for sample in samples:
        times["old"].append(timed_infer(infer, model, old, sample))
        times["new"].append(timed_infer(infer, model, new, sample))
    figures: dict[str, Any] = {}
    for side, values in times.items():
        ok = [v for v in values if v is not None]
        figures[f"{side}_error_rate"] = 1 - len(ok) / len(values)
        figures[f"{side}_median_ms"] = statistics.median(ok) * 1e3 if ok else None
    passed = figures["new_error_rate"] <= spec.max_error_rate
    if spec.max_latency_ratio is not None and figures["old_median_ms"] and figures["new_median_ms"]:
        figures["latency_ratio"] = figures["new_median_ms"] / figures["old_median_ms"]
        passed = passed and figures["latency_ratio"] <= spec.max_latency_ratio
    figures["thresholds"] = spec.model_dump()
    return passed, figures
