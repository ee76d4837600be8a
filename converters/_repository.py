"""Lay a converted model out as a Triton repository entry.

`DIR/NAME/config.pbtxt` plus `DIR/NAME/<version>/` holding the artifact, the
manifest and (for the Python runtime) the `model.py` shim. The version folder is
staged in a temporary folder and renamed into place; `config.pbtxt` is rewritten
atomically. A new version of an existing model must have the same inputs,
outputs and backend as the config already there (or `force`), so the config
stays true for every version on disk. The default `version_policy` is
`latest { num_versions: 1 }`: Triton serves only the newest version, and a
user's own policy, instance groups and batching settings are kept.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tritonclient.grpc import model_config_pb2 as mc

from tritonab._io import staged_dir
from tritonab.converters._graph import GraphTensor
from tritonab.ensembles.config import (
    ModelConfig,
    TensorSpec,
    add_tensor,
    from_numpy_dtype,
    io_specs,
    read_config,
    set_parameter,
    write_config,
)
from tritonab.errors import ConversionError, RepositoryError

Runtime = Literal["python", "native"]
Target = Literal["onnx", "tensorrt"]
ENCRYPTED_SUFFIX = ".enc"
SHIM = "from tritonab.backends.onnx_runner import TritonPythonModel  # noqa: F401\n"


@dataclass(frozen=True)
class EntrySpec:
    """What the config of a converted model is made from."""

    name: str
    target: Target
    runtime: Runtime
    max_batch_size: int
    inputs: tuple[GraphTensor, ...]
    outputs: tuple[GraphTensor, ...]
    accelerator: dict[str, str] | None = None
    instance_count: int = 1
    encrypted: bool = False

    @property
    def artifact(self) -> str:
        """The model file's name inside the version folder (`.enc` when encrypted at rest)."""
        name = "model.plan" if self.target == "tensorrt" else "model.onnx"
        return f"{name}{ENCRYPTED_SUFFIX}" if self.encrypted else name


def _tensor_spec(tensor: GraphTensor, batched: bool) -> tuple[TensorSpec, tuple[int, ...] | None]:
    """Config dims (batch dim dropped) and the reshape a rank-1 `[batch]` tensor needs."""
    shape = tensor.shape[1:] if batched else tensor.shape
    dims = tuple(-1 if d is None else int(d) for d in shape)
    reshape = None
    if not dims:
        # Triton needs at least one dim: serve `[batch]` as `[batch, 1]`.
        dims, reshape = (1,), ()
    try:
        data_type = from_numpy_dtype(tensor.dtype)
    except RepositoryError as exc:
        raise ConversionError(f"tensor `{tensor.name}`: {exc}") from None
    return TensorSpec(tensor.name, data_type, dims), reshape


def _add_io(config: ModelConfig, spec: EntrySpec) -> None:
    batched = spec.max_batch_size > 0
    # The Python runner reshapes outputs to the config dims itself; native backends
    # need the `reshape` to map `[batch]` onto `dims: [1]`.
    native = spec.runtime == "native" or spec.target == "tensorrt"
    for field, tensors in ((config.input, spec.inputs), (config.output, spec.outputs)):
        for tensor in tensors:
            tspec, reshape = _tensor_spec(tensor, batched)
            add_tensor(field, tspec, reshape=reshape if native else None)


def _add_warmup(config: ModelConfig) -> None:
    """One warm-up request of batch 1: random data for numbers, zeros otherwise."""
    warmup = config.model_warmup.add()
    warmup.name = "tritonab_warmup"
    warmup.batch_size = 1 if config.max_batch_size > 0 else 0
    for tensor in config.input:
        data = warmup.inputs[tensor.name]
        data.data_type = tensor.data_type
        dims = list(tensor.reshape.shape) if tensor.HasField("reshape") else list(tensor.dims)
        data.dims.extend(d if d > 0 else 1 for d in (dims or [1]))
        if tensor.data_type in (mc.TYPE_FP16, mc.TYPE_FP32, mc.TYPE_FP64):
            data.random_data = True
        else:
            data.zero_data = True


def _set_backend(config: ModelConfig, spec: EntrySpec) -> None:
    if spec.target == "tensorrt":
        config.platform = "tensorrt_plan"
    elif spec.runtime == "native":
        config.backend = "onnxruntime"
        if spec.accelerator is not None:
            accel = config.optimization.execution_accelerators.gpu_execution_accelerator.add()
            accel.name = "tensorrt"
            for key, value in spec.accelerator.items():
                accel.parameters[key] = value
    else:
        config.backend = "python"
        set_parameter(config, "onnx_file", spec.artifact)


def build_config(spec: EntrySpec) -> ModelConfig:
    """A fresh ModelConfig for a converted model (defaults for batching, instances, policy)."""
    config = ModelConfig()
    config.name = spec.name
    config.max_batch_size = spec.max_batch_size
    _set_backend(config, spec)
    _add_io(config, spec)
    if spec.max_batch_size > 0:
        config.dynamic_batching.SetInParent()
    group = config.instance_group.add()
    group.count = spec.instance_count
    python = spec.runtime == "python" and spec.target == "onnx"
    group.kind = (
        mc.ModelInstanceGroup.KIND_CPU
        if python
        else (
            mc.ModelInstanceGroup.KIND_GPU if spec.target == "tensorrt" else mc.ModelInstanceGroup.KIND_AUTO
        )
    )
    config.version_policy.latest.num_versions = 1
    _add_warmup(config)
    return config


_KEPT_FIELDS = (
    "instance_group",
    "dynamic_batching",
    "version_policy",
    "sequence_batching",
    "response_cache",
    "model_operations",
    "model_transaction_policy",
)


def merge_config(existing: ModelConfig, fresh: ModelConfig, *, force: bool) -> ModelConfig:
    """The fresh config, keeping the user's settings from the one on disk.

    Raises:
        ConversionError: the existing versions have other inputs, outputs or backend
            (unless `force`).
    """
    same = (
        io_specs(existing.input) == io_specs(fresh.input)
        and io_specs(existing.output) == io_specs(fresh.output)
        and existing.backend == fresh.backend
        and existing.platform == fresh.platform
    )
    if not same and not force:
        old = ", ".join(s.describe() for s in io_specs(existing.input) + io_specs(existing.output))
        new = ", ".join(s.describe() for s in io_specs(fresh.input) + io_specs(fresh.output))
        raise ConversionError(
            f"model `{fresh.name}`: the existing config serves "
            f"{existing.backend or existing.platform} with {old}; the new version has "
            f"{fresh.backend or fresh.platform} with {new}: use another name or --force"
        )
    if not same:
        return fresh
    merged = ModelConfig()
    merged.CopyFrom(fresh)
    for field in _KEPT_FIELDS:
        if existing.HasField(field) if field != "instance_group" else existing.instance_group:
            merged.ClearField(field)
            if field == "instance_group":
                merged.instance_group.extend(existing.instance_group)
            else:
                getattr(merged, field).CopyFrom(getattr(existing, field))
    return merged


def existing_versions(model_dir: Path) -> list[int]:
    """The numeric version folders of a model, sorted."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def pick_version(model_dir: Path, version: int | None, *, force: bool) -> int:
    """`version` if free (or `force`), else the next number after the newest one.

    Raises:
        ConversionError: the version exists and `force` is off, or it is not positive.
    """
    if version is None:
        versions = existing_versions(model_dir)
        return (versions[-1] + 1) if versions else 1
    if version < 1:
        raise ConversionError(f"version `{version}`: expected a positive integer")
    if (model_dir / str(version)).exists() and not force:
        raise ConversionError(f"`{model_dir / str(version)}` already exists: use --force to overwrite it")
    return version


def share_file(source: Path, target: Path) -> Literal["hardlink", "copy"]:
    """Put `source`'s bytes at `target`: a hard link (one artifact on disk, one sha256),
    or a copy where a link cannot be made (another file system, links not allowed)."""
    try:
        os.link(source, target)
        return "hardlink"
    except OSError:
        shutil.copyfile(source, target)
        return "copy"


def publish_version(
    model_dir: Path,
    version: int,
    config: ModelConfig,
    files: dict[str, bytes],
    *,
    shared: dict[str, Path] | None = None,
    force: bool,
) -> tuple[Path, dict[str, str]]:
    """Stage `model_dir/<version>/` with `files` (and `shared` files linked or copied from
    elsewhere), rename it into place, then write `config` as `config.pbtxt`.

    Returns:
        The version folder, and how each shared file got there (`hardlink` or `copy`).

    Raises:
        ConversionError: the version exists and `force` is off.
    """
    final = model_dir / str(version)
    created = not final.exists()
    how: dict[str, str] = {}
    try:
        with staged_dir(final, replace=force) as stage:
            for name, data in files.items():
                (stage / name).write_bytes(data)
            for name, source in (shared or {}).items():
                how[name] = share_file(source, stage / name)
    except FileExistsError:
        raise ConversionError(f"`{final}` already exists: use --force to overwrite it") from None
    try:
        write_config(model_dir / "config.pbtxt", config)
    except BaseException:
        if created:
            shutil.rmtree(final, ignore_errors=True)
        raise
    return final, how


def write_entry(
    repository: Path, spec: EntrySpec, version: int, files: dict[str, bytes], *, force: bool
) -> Path:
    """Stage and publish `DIR/NAME/<version>/` with `files`, then rewrite `config.pbtxt`.

    Returns:
        The version folder.

    Raises:
        ConversionError: conflicting existing config or version (without `force`).
    """
    model_dir = repository / spec.name
    config_path = model_dir / "config.pbtxt"
    fresh = build_config(spec)
    config = fresh
    if config_path.exists():
        try:
            existing = read_config(config_path)
        except RepositoryError as exc:
            if not force:
                raise ConversionError(f"{exc}: fix it or use --force") from None
        else:
            config = merge_config(existing, fresh, force=force)
    final, _ = publish_version(model_dir, version, config, files, force=force)
    return final
