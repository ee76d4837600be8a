"""Runtime-config variants: a new model that differs from a converted one only in how
Triton runs it (instances, batching, queue delay, backend) or, through the converter's
precision path and its parity check, in precision.

A config-only variant shares the source version's artifact: the file is hard-linked
(copied where a link cannot be made) into the new version folder, and its manifest
records the same sha256, so `tritonab validate` proves the two serve the same bytes.
The new config is the source's, with only the asked fields changed; the manifest lists
the changes (`derived_from`), computed by diffing the two configs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tritonclient.grpc import model_config_pb2 as mc

from tritonab.converters import _graph
from tritonab.converters._convert import ConvertOptions, SampleInput, run_conversion
from tritonab.converters._manifest import MANIFEST, created_at, dump_manifest, read_manifest, verify_manifest
from tritonab.converters._parity import ParityReport
from tritonab.converters._repository import (
    _KEPT_FIELDS,
    SHIM,
    EntrySpec,
    Runtime,
    build_config,
    pick_version,
    publish_version,
)
from tritonab.ensembles.config import ConfigChange, ModelConfig, config_diff
from tritonab.ensembles.repository import ModelEntry, load_model
from tritonab.errors import RepositoryError, VariantError

VariantPrecision = Literal["fp32", "fp16"]
_PRECISION_RANK = {"int8": 0, "fp16": 1, "fp32": 2}


@dataclass(frozen=True)
class RuntimeChanges:
    """What a runtime-config variant changes (None: keep the source's).

    Attributes:
        instances: the instance group's `count`.
        max_batch_size: Triton `max_batch_size` (the source must batch).
        max_queue_delay_us: dynamic batching's `max_queue_delay_microseconds`.
        preferred_batch_sizes: dynamic batching's `preferred_batch_size`.
        runtime: `python` (tritonab's onnxruntime runner) or `native` (`onnxruntime` backend).
        precision: `fp16` converts the artifact (parity-checked); `fp32` keeps it.
    """

    instances: int | None = None
    max_batch_size: int | None = None
    max_queue_delay_us: int | None = None
    preferred_batch_sizes: tuple[int, ...] | None = None
    runtime: Runtime | None = None
    precision: VariantPrecision | None = None

    def check(self) -> None:
        """Each given value in range, and at least one given.

        Raises:
            VariantError: a value out of range, or nothing to change.
        """
        if all(getattr(self, f) is None for f in self.__dataclass_fields__):
            raise VariantError(
                "nothing to change: give --instances, --max-batch-size, --max-queue-delay-us, "
                "--preferred-batch-sizes, --runtime or --precision"
            )
        for name in ("instances", "max_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise VariantError(f"{name} `{value}`: expected a positive integer")
        if self.max_queue_delay_us is not None and self.max_queue_delay_us < 0:
            raise VariantError(f"max_queue_delay_us `{self.max_queue_delay_us}`: expected 0 or more")
        sizes = self.preferred_batch_sizes
        if sizes is not None and (not sizes or any(s < 1 for s in sizes) or len(set(sizes)) != len(sizes)):
            raise VariantError(f"preferred_batch_sizes `{list(sizes)}`: expected distinct positive integers")
        if self.runtime not in (None, "python", "native"):
            raise VariantError(f"runtime `{self.runtime}`: expected `python` or `native`")
        if self.precision not in (None, "fp32", "fp16"):
            raise VariantError(f"precision `{self.precision}`: expected `fp32` or `fp16`")


@dataclass(frozen=True)
class DerivedVariant:
    """What `derive_variant` wrote.

    Attributes:
        name, version: the new model and its version.
        source, source_version: the model and version it was derived from.
        version_dir, config_path: where it lies.
        sha256: the artifact's sha256 (the source's, unless the precision changed).
        shared: how the artifact got there: `hardlink`, `copy`, or None (converted anew).
        changes: every config field that differs from the source's.
        parity: the parity report of a precision change (None otherwise).
    """

    name: str
    version: int
    source: str
    source_version: int
    version_dir: Path
    config_path: Path
    sha256: str
    shared: str | None
    changes: tuple[ConfigChange, ...]
    parity: ParityReport | None = None
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "source_version": self.source_version,
            "version_dir": str(self.version_dir),
            "sha256": self.sha256,
            "shared": self.shared,
            "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in self.changes],
            "parity": None if self.parity is None else self.parity.to_dict(),
        }


@dataclass(frozen=True)
class _Source:
    """The source model's entry, version, manifest and what it was converted to."""

    entry: ModelEntry
    version: int
    manifest: dict[str, Any]
    manifest_sha256: str
    artifact: Path
    target: str
    precision: str
    runtime: Runtime | None


def _read_source(repository: Path, name: str, version: int | None) -> _Source:
    """The source version, its manifest verified (the artifact must still be the one converted)."""
    try:
        entry = load_model(repository / name)
    except RepositoryError as exc:
        raise VariantError(f"source model `{name}`: {exc}") from None
    if not entry.versions:
        raise VariantError(f"source model `{name}` has no version folder")
    chosen = entry.versions[-1] if version is None else version
    if chosen not in entry.versions:
        raise VariantError(f"source model `{name}` has no version {chosen} (has {list(entry.versions)})")
    folder = entry.version_dir(chosen)
    problems = verify_manifest(folder)
    if problems:
        raise VariantError(
            f"source model `{name}` version {chosen}: {problems[0]}; only a converted model with an "
            "intact manifest can be derived"
        )
    manifest = read_manifest(folder)
    conversion = manifest.get("conversion") or {}
    runtime: Runtime | None = None
    if entry.config.backend == "python":
        runtime = "python"
    elif entry.config.backend == "onnxruntime":
        runtime = "native"
    return _Source(
        entry=entry,
        version=chosen,
        manifest=manifest,
        manifest_sha256=hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest(),
        artifact=folder / manifest["artifact"]["file"],
        target=str(conversion.get("target", "onnx")),
        precision=str(conversion.get("precision", "fp32")),
        runtime=runtime,
    )


def _check_fit(src: _Source, changes: RuntimeChanges) -> None:
    """Refuse what the artifact cannot serve, before any work."""
    config, name = src.entry.config, src.entry.name
    batching = any(
        v is not None
        for v in (changes.max_batch_size, changes.max_queue_delay_us, changes.preferred_batch_sizes)
    )
    if batching and config.max_batch_size < 1:
        raise VariantError(
            f"source model `{name}` does not batch (max_batch_size 0, fixed shapes in its graph): "
            "its batching cannot be changed"
        )
    if changes.instances is not None and len(config.instance_group) > 1:
        raise VariantError(
            f"source model `{name}` has {len(config.instance_group)} instance groups: "
            "--instances sets the count of one"
        )
    if src.target == "tensorrt":
        if changes.runtime is not None or changes.precision not in (None, src.precision):
            raise VariantError(
                f"source model `{name}` is a TensorRT plan: its runtime and precision are fixed at "
                "build; convert the ONNX source again (tritonab convert --to tensorrt --fp16)"
            )
        if changes.max_batch_size is not None and changes.max_batch_size > config.max_batch_size:
            raise VariantError(
                f"max_batch_size {changes.max_batch_size}: the plan of `{name}` was built for at most "
                f"{config.max_batch_size} rows"
            )
    elif changes.runtime is not None and src.runtime is None:
        raise VariantError(
            f"source model `{name}` runs on backend `{config.backend}`: expected python or native"
        )
    if changes.precision is not None and _PRECISION_RANK[changes.precision] > _PRECISION_RANK[src.precision]:
        raise VariantError(
            f"precision {changes.precision}: the artifact of `{name}` is {src.precision}; a variant can "
            "lower precision, not raise it (convert the original source instead)"
        )


def _with_runtime(src: _Source, name: str, runtime: Runtime, graph: EntrySpec) -> ModelConfig:
    """The source's config moved to another runtime: the backend, the I/O reshapes and the
    warm-up the converter writes for it, with the source's own settings kept."""
    config = build_config(graph)
    original = src.entry.config
    for field_name in _KEPT_FIELDS:
        if field_name == "instance_group":
            if original.instance_group:
                kind = config.instance_group[0].kind
                config.ClearField("instance_group")
                config.instance_group.extend(original.instance_group)
                for group in config.instance_group:
                    group.kind = kind
        elif original.HasField(field_name):
            getattr(config, field_name).CopyFrom(getattr(original, field_name))
    for key, value in original.parameters.items():
        if key != "onnx_file":
            config.parameters[key].CopyFrom(value)
    if runtime == "native":
        config.parameters.pop("onnx_file", None)
    return config


def _apply(config: ModelConfig, changes: RuntimeChanges) -> None:
    """Set the asked instance count and batching fields."""
    if changes.instances is not None:
        if not config.instance_group:
            config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_AUTO)
        config.instance_group[0].count = changes.instances
    if changes.max_batch_size is not None:
        config.max_batch_size = changes.max_batch_size
    if changes.max_queue_delay_us is not None:
        config.dynamic_batching.max_queue_delay_microseconds = changes.max_queue_delay_us
    if changes.preferred_batch_sizes is not None:
        config.dynamic_batching.ClearField("preferred_batch_size")
        config.dynamic_batching.preferred_batch_size.extend(sorted(changes.preferred_batch_sizes))
    too_big = [s for s in config.dynamic_batching.preferred_batch_size if s > config.max_batch_size]
    if too_big:
        raise VariantError(f"preferred_batch_sizes {too_big}: above max_batch_size {config.max_batch_size}")


def _graph_spec(src: _Source, name: str, runtime: Runtime) -> EntrySpec:
    """The entry spec of the source's ONNX artifact, for a config on another runtime."""
    model = _graph.load_onnx_file(src.artifact)
    return EntrySpec(
        name=name,
        target="onnx",
        runtime=runtime,
        max_batch_size=src.entry.config.max_batch_size,
        inputs=tuple(_graph.graph_inputs(model)),
        outputs=tuple(_graph.graph_outputs(model)),
    )


def _derived_manifest(
    src: _Source,
    base: dict[str, Any],
    name: str,
    version: int,
    config: ModelConfig,
    changes: list[ConfigChange],
) -> dict[str, Any]:
    """The new version's manifest: `base` (the source's, or a fresh conversion's) renamed,
    with what the config serves and where it came from."""
    manifest = copy.deepcopy(base)
    manifest.update(name=name, version=version, created=created_at())
    conversion = dict(manifest.get("conversion") or {})
    conversion["max_batch_size"] = config.max_batch_size
    if config.backend in ("python", "onnxruntime"):
        conversion["runtime"] = "python" if config.backend == "python" else "native"
    manifest["conversion"] = conversion
    manifest["derived_from"] = {
        "model": src.entry.name,
        "version": src.version,
        "manifest_sha256": src.manifest_sha256,
        "artifact_sha256": src.manifest["artifact"]["sha256"],
        "changes": [c.describe() for c in changes],
    }
    return manifest


def _converted_files(
    src: _Source,
    name: str,
    version: int,
    runtime: Runtime,
    sample_input: SampleInput,
    atol: float | None,
    rtol: float | None,
) -> tuple[dict[str, bytes], ParityReport]:
    """The source's artifact through the converter's FP16 path, parity-checked against it,
    converted into a scratch repository; returns the version folder's files and the report
    (a failed parity check raises, and nothing reaches the real repository)."""
    with tempfile.TemporaryDirectory(prefix="tritonab-derive-") as scratch:
        result = run_conversion(
            src.artifact,
            sample_input,
            ConvertOptions(
                name=name,
                repository=Path(scratch),
                version=version,
                runtime=runtime,
                max_batch_size=src.entry.config.max_batch_size,
                precision="fp16",
                atol=atol,
                rtol=rtol,
            ),
        )
        files = {p.name: p.read_bytes() for p in result.version_dir.iterdir() if p.is_file()}
    return files, result.parity


def derive_variant(
    source: str,
    *,
    name: str,
    repository: str | os.PathLike[str],
    changes: RuntimeChanges,
    source_version: int | None = None,
    version: int | None = None,
    sample_input: SampleInput = None,
    atol: float | None = None,
    rtol: float | None = None,
    force: bool = False,
) -> DerivedVariant:
    """Write model `name`: model `source` with another runtime configuration.

    Args:
        source: a converted model of the repository (its version must have a manifest).
        name: the new model's name.
        repository: the model repository folder.
        changes: what differs (`RuntimeChanges`).
        source_version: the source version (default: its newest).
        version: the new model's version (default: 1, or the next free one).
        sample_input: parity data for a precision change (synthetic when omitted).
        atol, rtol: parity tolerances for a precision change (the precision's defaults).
        force: replace an existing model `name` (its config and that version).

    Returns:
        A `DerivedVariant`: where it went, the artifact's sha256, how it was shared and
        the config fields that changed.

    Raises:
        VariantError: an unknown source or version, a source without an intact manifest,
            `name` taken (without `force`), or changes the artifact cannot serve.
        ConversionError: a precision change failed its parity check (nothing written).
    """
    changes.check()
    repo = Path(repository)
    if name == source:
        raise VariantError(f"variant name `{name}`: expected a name other than the source's")
    src = _read_source(repo, source, source_version)
    _check_fit(src, changes)
    model_dir = repo / name
    if model_dir.exists() and not force:
        raise VariantError(f"model `{name}` already exists in `{repo}`: use another name or --force")
    new_version = pick_version(model_dir, version or 1, force=force)
    runtime = changes.runtime or src.runtime
    convert = changes.precision is not None and changes.precision != src.precision
    if runtime is not None and runtime != src.runtime:
        config = _with_runtime(src, name, runtime, _graph_spec(src, name, runtime))
    else:
        config = ModelConfig()
        config.CopyFrom(src.entry.config)
        config.name = name
    _apply(config, changes)
    diff = config_diff(src.entry.config, config)
    files: dict[str, bytes] = {}
    shared: dict[str, Path] = {}
    parity = None
    if convert:
        fresh, parity = _converted_files(
            src, name, new_version, runtime or "python", sample_input, atol, rtol
        )
        files = {k: v for k, v in fresh.items() if k != MANIFEST}
        base = json.loads(fresh[MANIFEST])
        files[MANIFEST] = dump_manifest(_derived_manifest(src, base, name, new_version, config, diff))
    else:
        shared[src.artifact.name] = src.artifact
        files[MANIFEST] = dump_manifest(_derived_manifest(src, src.manifest, name, new_version, config, diff))
        if config.backend == "python":
            files["model.py"] = SHIM.encode("utf-8")
    if config.backend != "python":
        files.pop("model.py", None)
    final, how = publish_version(model_dir, new_version, config, files, shared=shared, force=force)
    manifest = read_manifest(final)
    return DerivedVariant(
        name=name,
        version=new_version,
        source=source,
        source_version=src.version,
        version_dir=final,
        config_path=model_dir / "config.pbtxt",
        sha256=manifest["artifact"]["sha256"],
        shared=how.get(src.artifact.name),
        changes=tuple(diff),
        parity=parity,
        manifest=manifest,
    )
