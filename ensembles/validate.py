"""`tritonab validate`: every problem of a model repository, each with its path."""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tritonab.ensembles.config import get_parameter, type_name
from tritonab.ensembles.repository import (
    BACKEND_FILES,
    ROUTER_PARAMETER,
    ModelEntry,
    load_model,
    model_dirs,
)
from tritonab.errors import RepositoryError, SpecError
from tritonab.security import Key
from tritonab.splitter.spec import spec_from_json


@dataclass(frozen=True)
class Problem:
    """One thing wrong, at a path."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# What each kind of server can load (backend or platform names in `config.pbtxt`). The
# embedded server is the `nvidia-pytriton` wheel's tritonserver: the Python backend and
# ensembles only. NVIDIA's Triton container (tritonserver:24.10-py3) has the rest.
TARGET_BACKENDS: dict[str, frozenset[str]] = {
    "embedded": frozenset({"python", "ensemble"}),
    "container": frozenset(
        {
            "python",
            "ensemble",
            "onnxruntime",
            "onnxruntime_onnx",
            "tensorrt",
            "tensorrt_plan",
            "pytorch",
            "pytorch_libtorch",
            "tensorflow",
            "tensorflow_savedmodel",
            "tensorflow_graphdef",
            "openvino",
            "fil",
            "dali",
        }
    ),
}
Target = Literal["embedded", "container"]


def validate_repository(
    repository: str | os.PathLike[str], *, target: Target | None = None, key: Key | None = None
) -> list[Problem]:
    """Every problem of a repository (an empty list when it is valid).

    Checks: each config parses and names its folder; version folders exist and hold
    the backend's model file; Python shims import; manifests match their artifacts;
    ensemble steps reference existing models with matching tensor names and dtypes;
    routers' variants exist and share one signature; with `target`, every model's
    backend exists on that kind of server (`embedded`: the wheel's tritonserver, Python
    backend only; `container`: NVIDIA's Triton container); with `key` (a data key),
    encrypted artifacts under it are decrypted in memory and their AES-GCM tags checked.
    """
    root = Path(repository)
    try:
        dirs = model_dirs(root)
    except RepositoryError as exc:
        return [Problem(root, str(exc))]
    problems: list[Problem] = []
    models: dict[str, ModelEntry] = {}
    for model_dir in dirs:
        try:
            models[model_dir.name] = load_model(model_dir)
        except RepositoryError as exc:
            problems.append(Problem(model_dir / "config.pbtxt", str(exc)))
    for entry in models.values():
        problems += _check_model(entry, key)
        if target is not None:
            problems += _check_target(entry, target)
    for entry in models.values():
        if entry.kind == "ensemble":
            problems += _check_ensemble(entry, models)
        elif entry.kind == "router":
            problems += _check_router(entry, models)
    return problems


def _check_target(entry: ModelEntry, target: Target) -> list[Problem]:
    backend = entry.config.backend or entry.config.platform
    if backend in TARGET_BACKENDS[target]:
        return []
    hint = " (convert with `--runtime python` for the embedded server)" if target == "embedded" else ""
    return [
        Problem(
            entry.path / "config.pbtxt",
            f"backend `{backend}` is not available on the {target} server{hint}",
        )
    ]


def _check_model(entry: ModelEntry, key: Key | None = None) -> list[Problem]:
    config_path = entry.path / "config.pbtxt"
    problems = []
    if entry.config.name and entry.config.name != entry.name:
        problems.append(
            Problem(config_path, f"name `{entry.config.name}` differs from its folder `{entry.name}`")
        )
    if not entry.config.backend and not entry.config.platform:
        problems.append(Problem(config_path, "sets neither `backend` nor `platform`"))
    if not entry.versions:
        problems.append(Problem(entry.path, "has no version folder (1/, 2/, ...)"))
    filename = entry.model_file
    for version in entry.versions:
        vdir = entry.version_dir(version)
        if filename and not (vdir / filename).exists():
            problems.append(Problem(vdir, f"`{filename}` is missing"))
        elif filename == "model.py":
            problems += _check_shim(vdir / filename, entry)
        problems += _check_manifest(vdir, key)
    return problems


def _check_shim(path: Path, entry: ModelEntry) -> list[Problem]:
    """A `from tritonab.backends.X import ...` shim must name a module that exists, and
    the files that module reads must be beside it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError as exc:
        return [Problem(path, f"does not parse: {exc.msg} (line {exc.lineno})")]
    for node in tree.body:
        if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tritonab.")):
            continue
        if importlib.util.find_spec(node.module) is None:
            return [Problem(path, f"imports `{node.module}`, which does not exist")]
        if node.module in BACKEND_FILES:
            key, default = BACKEND_FILES[node.module]
            needed = get_parameter(entry.config, key, default) or default
            if not (path.parent / needed).exists():
                return [Problem(path.parent, f"`{needed}` is missing")]
            if node.module == "tritonab.backends.transform":
                return _check_transform(path.parent / needed, entry)
    return []


def _check_transform(path: Path, entry: ModelEntry) -> list[Problem]:
    """The transform spec reads, and what its `feast_lookup` steps need is there: the
    feature store config (relative to the version folder) and each entity-id input,
    declared TYPE_STRING. Feast itself is not opened (that is the model's `initialize`)."""
    from tritonclient.grpc import model_config_pb2 as mc

    from tritonab.backends._transform import load_transform  # here: backends are heavier

    try:
        spec = load_transform(path)
    except SpecError as exc:
        return [Problem(path, str(exc))]
    problems = []
    inputs = {t.name: t.data_type for t in entry.inputs}
    for index, step in spec.lookups:
        store = Path(step.feature_store)
        store = store if store.is_absolute() else path.parent / store
        if not store.is_file():
            problems.append(
                Problem(path, f"steps[{index}] (feast_lookup): `{step.feature_store}` is missing")
            )
        name = step.entity_input
        if name is not None and inputs.get(name) != mc.TYPE_STRING:
            what = "is not an input" if name not in inputs else f"is {type_name(inputs[name])}"
            problems.append(
                Problem(
                    path,
                    f"steps[{index}] (feast_lookup): entity input `{name}` {what}, expected TYPE_STRING",
                )
            )
    return problems


def _check_manifest(vdir: Path, key: Key | None = None) -> list[Problem]:
    if not (vdir / "manifest.json").exists():
        return []
    from tritonab.converters import verify_manifest  # here: converters import ensembles

    return [Problem(vdir / "manifest.json", message) for message in verify_manifest(vdir, key=key)]


def _check_ensemble(entry: ModelEntry, models: dict[str, ModelEntry]) -> list[Problem]:
    """Steps exist; every step input is fed by a tensor of the same dtype; outputs produced."""
    where = entry.path / "config.pbtxt"
    steps = entry.config.ensemble_scheduling.step
    if not steps:
        return [Problem(where, "ensemble has no `ensemble_scheduling` steps")]
    problems: list[Problem] = []
    tensors = {t.name: t.data_type for t in entry.inputs}
    for i, step in enumerate(steps):
        label = f"step {i} (`{step.model_name}`)"
        model = models.get(step.model_name)
        if model is None:
            problems.append(Problem(where, f"{label}: unknown model `{step.model_name}`"))
            continue
        step_inputs = {t.name: t.data_type for t in model.inputs}
        step_outputs = {t.name: t.data_type for t in model.outputs}
        for model_input, source in step.input_map.items():
            if model_input not in step_inputs:
                problems.append(Problem(where, f"{label}: `{step.model_name}` has no input `{model_input}`"))
            elif source not in tensors:
                problems.append(
                    Problem(
                        where,
                        f"{label}: input `{model_input}` reads `{source}`, which nothing produces before it",
                    )
                )
            elif tensors[source] != step_inputs[model_input]:
                problems.append(
                    Problem(
                        where,
                        f"{label}: input `{model_input}` is "
                        f"{type_name(step_inputs[model_input])} but `{source}` is "
                        f"{type_name(tensors[source])}",
                    )
                )
        for name in sorted(step_inputs.keys() - step.input_map.keys()):
            problems.append(Problem(where, f"{label}: input `{name}` is not mapped"))
        for model_output, target in step.output_map.items():
            if model_output not in step_outputs:
                problems.append(
                    Problem(where, f"{label}: `{step.model_name}` has no output `{model_output}`")
                )
            else:
                tensors[target] = step_outputs[model_output]
    for output in entry.outputs:
        if output.name not in tensors:
            problems.append(Problem(where, f"output `{output.name}` is produced by no step"))
        elif tensors[output.name] != output.data_type:
            problems.append(
                Problem(
                    where,
                    f"output `{output.name}` is "
                    f"{type_name(output.data_type)} but its step produces "
                    f"{type_name(tensors[output.name])}",
                )
            )
    return problems


def _check_router(entry: ModelEntry, models: dict[str, ModelEntry]) -> list[Problem]:
    """The embedded spec parses and its variants fit the router's own signature."""
    from tritonab.ensembles.build import check_spec, router_config

    where = entry.path / "config.pbtxt"
    try:
        spec = spec_from_json(get_parameter(entry.config, ROUTER_PARAMETER) or "")
        others = {k: v for k, v in models.items() if k != entry.name}
        first = check_spec(spec, others)
    except SpecError as exc:
        return [Problem(where, str(exc))]
    assert first is not None
    problems = []
    if (entry.config.max_batch_size > 0) != (first.config.max_batch_size > 0):
        problems.append(
            Problem(
                where,
                f"router max_batch_size {entry.config.max_batch_size} does not fit its variants' "
                f"(`{first.name}`: {first.config.max_batch_size}): a router batches exactly when "
                "its variants do; rebuild it",
            )
        )
    expected = router_config(spec, first, entry.config.max_batch_size)
    for what, want, got in (
        ("input", expected.input, entry.config.input),
        ("output", expected.output, entry.config.output),
    ):
        want_set = {(t.name, t.data_type, tuple(t.dims)) for t in want}
        got_set = {(t.name, t.data_type, tuple(t.dims)) for t in got}
        if want_set != got_set:
            problems.append(
                Problem(
                    where,
                    f"router {what}s {sorted(got_set)} do not match its "
                    f"variants' {sorted(want_set)}; rebuild it",
                )
            )
    return problems
