"""A repository model pinned for offline scoring, and run the way Triton runs it.

`pin_model` resolves a model at a version (`-1`: the highest its version policy
serves), reads and verifies every artifact it needs (`_artifacts`), and returns a
`PinnedModel`: plain data (artifact bytes included), so it travels to Ray actors as it
is. `PinnedModel.load()` builds the runner with the code the Python backends serve:

- `tritonab.backends.onnx_runner` models and native `onnxruntime` models run in
  `backends._onnx.OnnxModel` (outputs reshaped to the config's dims);
- `tritonab.backends.transform` models apply `backends._transform.TransformSpec`;
- ensembles feed their steps by tensor name, in dependency order, as Triton's ensemble
  scheduler does (each step pinned to its `model_version`, `-1` resolved as above);

and every step's outputs take their configured dtype (`backends._batching`), as a
Python-backend response does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from tritonab.bulk._artifacts import Artifact, pin_artifact
from tritonab.ensembles.config import TensorSpec, format_config, get_parameter, to_numpy_dtype
from tritonab.ensembles.repository import ModelEntry
from tritonab.errors import BulkError, RepositoryError, TritonABError

Kind = Literal["onnx", "transform", "ensemble", "served"]
Arrays = dict[str, NDArray[Any]]

_ONNX_RUNNER = "tritonab.backends.onnx_runner"
_TRANSFORM = "tritonab.backends.transform"
_NATIVE_ONNX = ("onnxruntime", "onnxruntime_onnx")


class Runner(Protocol):
    """Something that runs one batch: named input arrays in, named output arrays out."""

    def run(self, inputs: Mapping[str, NDArray[Any]]) -> Arrays: ...


@dataclass(frozen=True)
class EnsembleStep:
    """One step of an ensemble: a pinned model and its tensor wiring."""

    model: PinnedModel
    input_map: tuple[tuple[str, str], ...]  # (step model input, ensemble tensor)
    output_map: tuple[tuple[str, str], ...]  # (step model output, ensemble tensor)


@dataclass(frozen=True)
class PinnedModel:
    """A model version resolved for offline scoring, with its verified artifacts.

    Attributes:
        name, version: the repository model and the version folder it resolved to.
        kind: `onnx`, `transform`, `ensemble`, or `served` for a model only a server
            runs (custom Python code, TensorRT...; pinned for the `triton` engine).
        inputs, outputs: the config's tensors (dims without the batch dim).
        max_batch_size: the config's `max_batch_size`.
        config_sha256: sha256 of the config's canonical text (what Triton reads).
        artifact: the model file (None for an ensemble).
        steps: an ensemble's steps, in the order they run.
        threads: onnxruntime intra-op threads, the config's `intra_op_threads` as the
            ONNX runner reads it (default 1): the same threads give the same float
            summation order, so offline outputs equal the server's bit for bit.
    """

    name: str
    version: int
    kind: Kind
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    config_sha256: str
    artifact: Artifact | None = None
    steps: tuple[EnsembleStep, ...] = ()
    threads: int = 1

    @property
    def artifacts(self) -> tuple[Artifact, ...]:
        """Every artifact this model runs from (an ensemble's steps', in step order)."""
        found = [self.artifact] if self.artifact is not None else []
        for step in self.steps:
            found += [a for a in step.model.artifacts if a not in found]
        return tuple(found)

    @property
    def sha256(self) -> str:
        """The model's identity: the artifact's sha256 for a single-file model (the digest
        its manifest records), else the sha256 of `path sha256` lines over its artifacts."""
        artifacts = self.artifacts
        if len(artifacts) == 1:
            return artifacts[0].sha256
        lines = "".join(f"{a.path} {a.sha256}\n" for a in artifacts)
        return hashlib.sha256(lines.encode()).hexdigest()

    def configs(self) -> dict[str, str]:
        """sha256 of each config taking part, by `model/version`."""
        found = {f"{self.name}/{self.version}": self.config_sha256}
        for step in self.steps:
            found.update(step.model.configs())
        return found

    def identity(self) -> dict[str, Any]:
        """What pins this model: names, versions and digests (JSON-ready)."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "sha256": self.sha256,
            "artifacts": [a.describe() for a in self.artifacts],
            "configs": self.configs(),
        }

    def load(self) -> Runner:
        """The runner for this model.

        Raises:
            BulkError: a model file that does not load.
        """
        if self.kind == "ensemble":
            return _EnsembleRunner(self, [step.model.load() for step in self.steps])
        if self.kind == "transform":
            return _TransformRunner(self)
        if self.kind == "served":
            raise BulkError(
                f"model `{self.name}` ({self.backend_label()}) runs only on a server: "
                "score it with `--engine triton --url HOST:PORT`"
            )
        return _OnnxRunner(self)

    def backend_label(self) -> str:
        """`model.py`, `model.plan`...: the served-only model's file, for messages."""
        return self.artifact.file if self.artifact is not None else "no model file"


def pin_model(
    models: Mapping[str, ModelEntry],
    name: str,
    version: int = -1,
    *,
    served: bool = False,
    _chain: tuple[str, ...] = (),
) -> PinnedModel:
    """Resolve `name` at `version` in a repository's models and verify its artifacts.

    Args:
        models: the repository, by model name (`ensembles.load_repository`).
        name: the model.
        version: the version folder; -1 for the highest version its policy serves.
        served: the model will be scored by a server (`triton` engine): a model that
            cannot run offline (custom Python code, TensorRT...) is pinned by its config
            and its model file (checked against the version's manifest when one covers
            it) instead of refused.

    Raises:
        BulkError: unknown model or version, a model that does not batch, one that cannot
            run offline (a router, custom Python code, a backend other than ONNX), or an
            artifact that differs from its manifest.
    """
    entry = models.get(name)
    if entry is None:
        raise BulkError(f"unknown model `{name}`; the repository has {sorted(models)}")
    if name in _chain:
        raise BulkError(f"ensemble `{_chain[0]}` runs itself through `{name}`")
    try:
        resolved = entry.resolve_version(version)
    except RepositoryError as exc:
        raise BulkError(str(exc)) from None
    if entry.kind == "router":
        raise BulkError(
            f"`{name}` is an experiment router: score its variants with "
            f"`--experiment {name} --unit-column COLUMN` (the router's own assignment)"
        )
    if entry.config.max_batch_size < 1:
        raise BulkError(f"model `{name}` does not batch (max_batch_size 0): it cannot score rows in batches")
    inputs, outputs, batch = entry.inputs, entry.outputs, int(entry.config.max_batch_size)
    config_sha256 = hashlib.sha256(format_config(entry.config).encode()).hexdigest()
    if entry.kind == "ensemble":
        steps = _ensemble_steps(models, entry, (*_chain, name), served)
        return PinnedModel(name, resolved, "ensemble", inputs, outputs, batch, config_sha256, steps=steps)
    try:
        kind, file = _runnable(entry, resolved)
    except BulkError:
        if not served:
            raise
        return _pin_served(entry, resolved, inputs, outputs, batch, config_sha256)
    artifact = pin_artifact(entry, resolved, file)
    threads = get_parameter(entry.config, "intra_op_threads", "1") or "1"
    if not threads.isdigit():
        raise BulkError(f"model `{name}`: parameter `intra_op_threads` must be a number, got `{threads}`")
    return PinnedModel(
        name, resolved, kind, inputs, outputs, batch, config_sha256, artifact=artifact, threads=int(threads)
    )


def _pin_served(
    entry: ModelEntry,
    version: int,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    batch: int,
    config_sha256: str,
) -> PinnedModel:
    """A model only a server runs, pinned by its config and its model file when the
    version folder has one (a TensorRT plan may be built on the server's own GPU)."""
    file = entry.model_file
    artifact = None
    if file is not None and (entry.version_dir(version) / file).is_file():
        artifact = pin_artifact(entry, version, file)
    return PinnedModel(
        entry.name, version, "served", inputs, outputs, batch, config_sha256, artifact=artifact
    )


def _runnable(entry: ModelEntry, version: int) -> tuple[Kind, str]:
    """Which offline runner serves this model version, and the file it reads."""
    backend = entry.config.backend or entry.config.platform
    if backend in _NATIVE_ONNX:
        return "onnx", entry.model_file or "model.onnx"
    if backend == "python":
        try:
            module = entry.backend_module(version)
        except RepositoryError as exc:
            raise BulkError(str(exc)) from None
        if module == _ONNX_RUNNER:
            return "onnx", entry.backend_file(module)
        if module == _TRANSFORM:
            return "transform", entry.backend_file(module)
        raise BulkError(
            f"model `{entry.name}` is Python-backend code of its own (`model.py`), which only a "
            "server runs: score it with `--engine triton`"
        )
    raise BulkError(
        f"model `{entry.name}` (backend `{backend}`) cannot run offline here: "
        "score it through a server that serves it with `--engine triton`"
    )


def _ensemble_steps(
    models: Mapping[str, ModelEntry], entry: ModelEntry, chain: tuple[str, ...], served: bool
) -> tuple[EnsembleStep, ...]:
    """The steps pinned, in an order where every step's inputs exist before it runs."""
    pending = []
    for step in entry.config.ensemble_scheduling.step:
        model = pin_model(models, step.model_name, int(step.model_version), served=served, _chain=chain)
        pending.append(
            EnsembleStep(model, tuple(sorted(step.input_map.items())), tuple(sorted(step.output_map.items())))
        )
    if not pending:
        raise BulkError(f"ensemble `{entry.name}` has no steps")
    ready = {t.name for t in entry.inputs}
    ordered: list[EnsembleStep] = []
    while pending:
        runnable = [s for s in pending if all(source in ready for _, source in s.input_map)]
        if not runnable:
            missing = sorted({src for s in pending for _, src in s.input_map if src not in ready})
            raise BulkError(f"ensemble `{entry.name}`: no step produces {missing}")
        for step in runnable:
            ordered.append(step)
            pending.remove(step)
            ready.update(target for _, target in step.output_map)
    unproduced = [t.name for t in entry.outputs if t.name not in ready]
    if unproduced:
        raise BulkError(f"ensemble `{entry.name}`: no step produces its outputs {unproduced}")
    return tuple(ordered)


def _dtypes(tensors: tuple[TensorSpec, ...]) -> dict[str, np.dtype[Any]]:
    return {t.name: to_numpy_dtype(t.data_type) for t in tensors}


class _OnnxRunner:
    """`OnnxModel` (the ONNX runner's own class) over the verified bytes."""

    def __init__(self, model: PinnedModel) -> None:
        from tritonab.backends._onnx import OnnxModel

        artifact = model.artifact
        assert artifact is not None
        self.label = artifact.path
        self.names = [t.name for t in model.outputs]
        self.dtypes = _dtypes(model.outputs)
        try:
            self.model = OnnxModel(
                artifact.data,
                providers=["CPUExecutionProvider"],
                intra_op_threads=model.threads,
                output_dims={t.name: t.dims for t in model.outputs},
                config_inputs=[t.name for t in model.inputs],
                source=artifact.path,
            )
        except TritonABError as exc:
            raise BulkError(str(exc)) from exc

    def run(self, inputs: Mapping[str, NDArray[Any]]) -> Arrays:
        from tritonab.backends._batching import as_config_dtypes

        try:
            outputs = self.model.run(dict(inputs))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BulkError(f"`{self.label}`: onnxruntime failed: {exc}") from exc
        return as_config_dtypes({n: outputs[n] for n in self.names if n in outputs}, self.dtypes)


class _TransformRunner:
    """`TransformSpec.apply` on the single input, as `backends.transform` serves it."""

    def __init__(self, model: PinnedModel) -> None:
        from tritonab.backends._transform import parse_transform

        artifact = model.artifact
        assert artifact is not None
        self.label = artifact.path
        try:
            self.spec = parse_transform(artifact.data, source=f"`{artifact.path}`")
        except TritonABError as exc:
            raise BulkError(str(exc)) from exc
        self.input_name = model.inputs[0].name
        self.output_name = model.outputs[0].name
        self.dtypes = _dtypes(model.outputs)

    def run(self, inputs: Mapping[str, NDArray[Any]]) -> Arrays:
        from tritonab.backends._batching import as_config_dtypes

        try:
            result = self.spec.apply(inputs[self.input_name])
        except TritonABError as exc:
            raise BulkError(f"`{self.label}`: {exc}") from exc
        return as_config_dtypes({self.output_name: result}, self.dtypes)


class _EnsembleRunner:
    """Triton's ensemble scheduling: tensors by name, each step fed when its inputs exist."""

    def __init__(self, model: PinnedModel, runners: list[Runner]) -> None:
        self.steps = list(zip(model.steps, runners))
        self.outputs = [t.name for t in model.outputs]

    def run(self, inputs: Mapping[str, NDArray[Any]]) -> Arrays:
        tensors: Arrays = dict(inputs)
        for step, runner in self.steps:
            produced = runner.run({own: tensors[source] for own, source in step.input_map})
            for own, target in step.output_map:
                tensors[target] = produced[own]
        return {name: tensors[name] for name in self.outputs}


def describe_models(models: tuple[PinnedModel, ...]) -> str:
    """`name vN (sha256 abcdef123456…)` of each model, for messages."""
    return ", ".join(f"`{m.name}` v{m.version} (sha256 {m.sha256[:12]})" for m in models)


def identity_digest(value: Any) -> str:
    """sha256 of a JSON value's canonical form."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
