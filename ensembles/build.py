"""Write router and ensemble models into a repository from an experiment spec.

Every config is a `ModelConfig` message printed by protobuf; every model folder
is staged in a temporary folder and renamed into place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from tritonab._io import staged_dir
from tritonab.ensembles.config import (
    ModelConfig,
    TensorSpec,
    add_tensor,
    set_parameter,
    write_config,
)
from tritonab.ensembles.repository import (
    ROUTER_PARAMETER,
    ModelEntry,
    load_repository,
    signature_mismatches,
)
from tritonab.errors import SpecError
from tritonab.splitter.spec import Experiment

VARIANT_OUTPUT = "AB_VARIANT"
ROUTER_SHIM = "from tritonab.backends.router import TritonPythonModel  # noqa: F401\n"


def shim(module: str) -> str:
    """The one-line `model.py` of a Python-backend model served by `tritonab.backends.<module>`."""
    return f"from tritonab.backends.{module} import TritonPythonModel  # noqa: F401\n"


def check_spec(spec: Experiment, models: dict[str, ModelEntry]) -> ModelEntry | None:
    """Check a spec's variants against the repository; returns the first variant's model
    (whose signature every variant shares).

    Raises:
        SpecError: unknown models or versions, batching and non-batching models mixed,
            or variants whose inputs/outputs differ in name, dtype or dims; each with its
            field path.
    """
    problems: list[str] = []
    first: ModelEntry | None = None
    for i, variant in enumerate(spec.variants):
        where = f"variants[{i}]"
        entry = models.get(variant.model)
        if entry is None:
            problems.append(
                f"{where}.model: unknown model `{variant.model}`; the repository has {sorted(models)}"
            )
            continue
        if not entry.has_version(variant.version):
            problems.append(
                f"{where}.version: model `{variant.model}` has no version "
                f"{variant.version} (has {list(entry.versions)})"
            )
        if first is None:
            first = entry
            continue
        for what, a, b in (("input", first.inputs, entry.inputs), ("output", first.outputs, entry.outputs)):
            for p in signature_mismatches(a, b, what):
                problems.append(f"{where}.model: `{variant.model}` vs `{first.name}`: {p}")
    for j, shadow in enumerate(spec.shadow):
        entry = models.get(shadow.model)
        if entry is None:
            problems.append(f"shadow[{j}].model: unknown model `{shadow.model}`")
        elif first is not None:
            for p in signature_mismatches(first.inputs, entry.inputs, "input"):
                problems.append(f"shadow[{j}].model: `{shadow.model}`: {p}")
    problems += _batching_problems(spec, models)
    if spec.unit_input and first is not None and spec.unit_input in {t.name for t in first.inputs}:
        problems.append(f"unit_input: `{spec.unit_input}` clashes with a variant input")
    if problems:
        raise SpecError(f"experiment `{spec.name}`:\n  " + "\n  ".join(problems))
    return first


def _batching_problems(spec: Experiment, models: dict[str, ModelEntry]) -> list[str]:
    """Every variant and shadow batches (max_batch_size >= 1), or none does (0): a router
    either splits batches by row or routes whole requests, never both."""
    sizes = {v.model: models[v.model].config.max_batch_size for v in spec.variants if v.model in models}
    sizes.update({s.model: models[s.model].config.max_batch_size for s in spec.shadow if s.model in models})
    if len({size > 0 for size in sizes.values()}) < 2:
        return []
    listed = ", ".join(f"`{m}` (max_batch_size {n})" for m, n in sizes.items())
    return [
        f"variants: batching and non-batching models cannot share a router: {listed}; "
        "every variant and shadow must batch (max_batch_size >= 1), or none (max_batch_size 0)"
    ]


def router_config(spec: Experiment, variant: ModelEntry, max_batch_size: int) -> ModelConfig:
    """The router's ModelConfig: the variants' I/O, `AB_VARIANT`, batching, the spec.

    `max_batch_size` 0 makes a non-batching router (variants with `max_batch_size: 0`):
    tensors without a batch dimension, no dynamic batcher, one request per `execute`,
    routed whole; `AB_VARIANT` then has shape [1] (one name per request).
    """
    config = ModelConfig(name=spec.name, backend="python", max_batch_size=max_batch_size)
    for tensor in variant.inputs:
        add_tensor(config.input, tensor)
    if spec.unit_input:
        add_tensor(config.input, TensorSpec(spec.unit_input, mc.TYPE_STRING, (1,)))
        config.input[-1].optional = True
    for tensor in variant.outputs:
        add_tensor(config.output, tensor)
    add_tensor(config.output, TensorSpec(VARIANT_OUTPUT, mc.TYPE_STRING, (1,)))
    if max_batch_size > 0:
        # No added queue delay: measured to cost throughput here (see ENVIRONMENT.md).
        config.dynamic_batching.SetInParent()
    group = config.instance_group.add()
    group.count = spec.instance_count
    group.kind = mc.ModelInstanceGroup.KIND_CPU
    set_parameter(config, ROUTER_PARAMETER, spec.to_json())
    return config


def build_router(spec: Experiment, repository: str | os.PathLike[str]) -> Path:
    """Write (or replace) the router model `<repository>/<spec.name>`.

    Returns:
        The router's folder.

    Raises:
        SpecError: the spec does not fit the repository (see `check_spec`).
    """
    models = load_repository(repository)
    models.pop(spec.name, None)
    first = check_spec(spec, models)
    assert first is not None
    batch = min(models[v.model].config.max_batch_size for v in spec.variants)
    if batch == 0 and spec.max_batch_size is not None:
        raise SpecError(
            f"max_batch_size: the variants do not batch (max_batch_size 0), so the router "
            f"cannot batch either; remove `max_batch_size` (got {spec.max_batch_size})"
        )
    if spec.max_batch_size is not None:
        if spec.max_batch_size > batch:
            raise SpecError(
                f"max_batch_size: {spec.max_batch_size} exceeds the variants' smallest max_batch_size {batch}"
            )
        batch = spec.max_batch_size
    config = router_config(spec, first, batch)
    final = Path(repository) / spec.name
    with staged_dir(final, replace=True) as stage:
        write_config(stage / "config.pbtxt", config)
        (stage / "1").mkdir()
        (stage / "1" / "model.py").write_text(ROUTER_SHIM, encoding="utf-8")
    return final


def chain_config(name: str, steps: Sequence[ModelEntry], max_batch_size: int | None = None) -> ModelConfig:
    """An ensemble that feeds each step's outputs, by position, to the next step's inputs."""
    if len(steps) < 2:
        raise SpecError(f"ensemble `{name}` needs at least two steps")
    batch = max_batch_size or min(s.config.max_batch_size for s in steps)
    config = ModelConfig(name=name, platform="ensemble", max_batch_size=batch)
    for tensor in steps[0].inputs:
        add_tensor(config.input, tensor)
    for tensor in steps[-1].outputs:
        add_tensor(config.output, tensor)
    feeds = {t.name: t.name for t in steps[0].inputs}
    for i, step in enumerate(steps):
        entry = config.ensemble_scheduling.step.add()
        entry.model_name = step.name
        entry.model_version = -1
        for tensor in step.inputs:
            entry.input_map[tensor.name] = feeds[tensor.name]
        if i + 1 == len(steps):
            for tensor in step.outputs:
                entry.output_map[tensor.name] = tensor.name
            break
        following = steps[i + 1].inputs
        if len(step.outputs) != len(following):
            raise SpecError(
                f"ensemble `{name}`: `{step.name}` has {len(step.outputs)} outputs "
                f"but `{steps[i + 1].name}` takes {len(following)} inputs"
            )
        feeds = {}
        for out, nxt in zip(step.outputs, following):
            internal = f"{step.name}__{out.name}"
            entry.output_map[out.name] = internal
            feeds[nxt.name] = internal
    return config


def build_chain(name: str, steps: Sequence[str], repository: str | os.PathLike[str]) -> Path:
    """Write the ensemble `<repository>/<name>` chaining existing models `steps`."""
    models = load_repository(repository)
    missing = [s for s in steps if s not in models]
    if missing:
        raise SpecError(f"ensemble `{name}`: unknown models {missing}")
    config = chain_config(name, [models[s] for s in steps])
    final = Path(repository) / name
    with staged_dir(final, replace=True) as stage:
        write_config(stage / "config.pbtxt", config)
        (stage / "1").mkdir()
        # Triton needs the (empty) version folder; git needs a file to keep it.
        (stage / "1" / ".gitkeep").write_text("", encoding="utf-8")
    return final


def build_transform(
    name: str,
    transform,
    repository: str | os.PathLike[str],
    *,
    input_name: str,
    output_name: str,
    max_batch_size: int = 64,
    data_type: int = mc.TYPE_FP32,
    files: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Path:
    """Write a feature-transform model `<repository>/<name>` serving `transform`
    (a `tritonab.backends.TransformSpec`), one FP32 matrix in and one out.

    A spec whose `feast_lookup` steps read entity ids from input tensors gets those
    inputs too (TYPE_STRING, one id per row). `files` are copied into the version
    folder under the given names (a `feature_store.yaml` the lookups name).
    """
    config = ModelConfig(name=name, backend="python", max_batch_size=max_batch_size)
    add_tensor(config.input, TensorSpec(input_name, data_type, (transform.input_width,)))
    for entity in getattr(transform, "entity_inputs", []):
        add_tensor(config.input, TensorSpec(entity, mc.TYPE_STRING, (1,)))
    add_tensor(config.output, TensorSpec(output_name, data_type, (transform.output_width,)))
    config.dynamic_batching.SetInParent()
    group = config.instance_group.add()
    group.count = 1
    group.kind = mc.ModelInstanceGroup.KIND_CPU
    final = Path(repository) / name
    with staged_dir(final, replace=True) as stage:
        write_config(stage / "config.pbtxt", config)
        (stage / "1").mkdir()
        (stage / "1" / "model.py").write_text(shim("transform"), encoding="utf-8")
        (stage / "1" / "transform.json").write_text(transform.to_json(), encoding="utf-8")
        for target, source in (files or {}).items():
            if Path(target).name != target:
                raise SpecError(f"transform `{name}`: file name `{target}` must not contain a folder")
            shutil.copyfile(source, stage / "1" / target)
    return final
