"""`convert`: source -> ONNX (-> TensorRT plan) -> parity check -> repository entry.

Everything is built and checked in memory first; the repository is touched only
after the parity check passed, so a failed conversion writes nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx

from tritonab.converters import _export, _graph, _samples
from tritonab.converters._manifest import MANIFEST, build_manifest, dump_manifest, file_entry
from tritonab.converters._parity import ParityReport, Precision, compare, tolerance_for
from tritonab.converters._precision import to_fp16, to_int8_qdq
from tritonab.converters._repository import (
    SHIM,
    EntrySpec,
    Runtime,
    Target,
    pick_version,
    write_entry,
)
from tritonab.converters._sources import Source, load_source
from tritonab.converters._tensorrt import (
    DEFAULT_WORKSPACE_MB,
    BuildOptions,
    accelerator_parameters,
    build_plan,
    prepare_graph,
    require_tensorrt,
    run_plan,
)
from tritonab.errors import ConversionError
from tritonab.security import ARTIFACT_CONTEXT, ENCRYPTION, Key, seal

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
SampleInput = str | os.PathLike | np.ndarray | Mapping[str, np.ndarray] | None


@dataclass(frozen=True)
class ConvertOptions:
    """Every setting of a conversion (the keyword arguments of `convert`)."""

    name: str
    repository: Path
    version: int | None = None
    to: Target = "onnx"
    runtime: Runtime = "python"
    accelerator: Literal["tensorrt"] | None = None
    max_batch_size: int = 64
    opset: int | None = None
    precision: Precision = "fp32"
    atol: float | None = None
    rtol: float | None = None
    max_label_mismatch: float | None = None
    parity_rows: int = _samples.DEFAULT_ROWS
    optimize: bool = True
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None
    force: bool = False
    encrypt_key: Key | None = None


@dataclass(frozen=True)
class ConversionResult:
    """What a successful conversion wrote, and how it compared with the source."""

    name: str
    version: int
    version_dir: Path
    artifact: Path
    config_path: Path
    parity: ParityReport
    manifest: dict[str, Any] = field(repr=False)


def _check_options(opts: ConvertOptions) -> None:
    """Reject inconsistent settings before any work is done."""
    if not _NAME.match(opts.name):
        raise ConversionError(f"model name `{opts.name}`: expected letters, digits, `_`, `.`, `-`")
    choices = {
        "to": ("onnx", "tensorrt"),
        "runtime": ("python", "native"),
        "precision": ("fp32", "fp16", "int8"),
    }
    for key, allowed in choices.items():
        if getattr(opts, key) not in allowed:
            raise ConversionError(f"{key} `{getattr(opts, key)}`: expected one of {allowed}")
    if opts.max_batch_size < 0:
        raise ConversionError(f"max_batch_size `{opts.max_batch_size}`: expected 0 or more")
    if opts.accelerator not in (None, "tensorrt"):
        raise ConversionError(f"accelerator `{opts.accelerator}`: expected `tensorrt`")
    if opts.accelerator and (opts.to != "onnx" or opts.runtime != "native"):
        raise ConversionError(
            "accelerator `tensorrt` configures the native onnxruntime backend: "
            "use it with --to onnx --runtime native"
        )
    if opts.encrypt_key is not None and (opts.to != "onnx" or opts.runtime != "python"):
        raise ConversionError(
            "an encrypted artifact is decrypted in memory by tritonab's ONNX runner: "
            "use it with --to onnx --runtime python"
        )
    if opts.to == "tensorrt":
        require_tensorrt()


def _sample_feeds(
    source: Source, model: onnx.ModelProto, sample: dict[str, np.ndarray] | None, opts: ConvertOptions
):
    """Parity data bound to the graph inputs, and whether it is the user's or synthetic."""
    inputs = _graph.graph_inputs(model)
    batched = opts.max_batch_size > 0
    if sample is None:
        return _samples.synthesize(inputs, batched=batched), "synthetic"
    feeds = _samples.bind(sample, inputs, batched=batched)
    if batched:
        feeds = _samples.draw_rows(feeds, opts.parity_rows)
    return feeds, "sample"


def _export_source(
    source: Source, sample: dict[str, np.ndarray] | None, opts: ConvertOptions
) -> onnx.ModelProto:
    """The source as a normalised ONNX graph."""
    dynamic = opts.max_batch_size > 0
    if source.kind == "sklearn":
        features = _export.sklearn_features(source, _samples.first_array(sample))
        model = _export.sklearn_to_onnx(source, features, opts.opset)
    elif source.kind == "torch":
        if sample is None:
            raise ConversionError(
                f"`{source.label}`: PyTorch sources need a sample input (--sample-input FILE.npz)"
            )
        names = _export.torch_names(len(sample), "input")
        keys = list(sample)
        if all(k.startswith("arr_") for k in keys):
            sample = dict(zip(names, sample.values()))
        model = _export.torch_to_onnx(source, sample, opts.opset, dynamic_batch=dynamic)
    else:
        model = source.obj
    return _graph.normalize(
        model, source.label, dynamic_batch=dynamic, opset=opts.opset if source.kind == "onnx" else None
    )


def _to_final_onnx(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], opts: ConvertOptions, label: str
) -> onnx.ModelProto:
    """Graph optimisations and the requested precision, then the IR pin again."""
    if opts.optimize:
        model = _graph.optimize(model, label)
    if opts.precision == "fp16":
        model = to_fp16(model, label)
    elif opts.precision == "int8":
        model = to_int8_qdq(model, feeds, label)
    _graph.pin_ir_version(model, label)
    return model


def _run_onnx(
    model: onnx.ModelProto | bytes, feeds: dict[str, np.ndarray], label: str, opts: ConvertOptions
) -> dict[str, np.ndarray]:
    """Outputs of the converted graph on the sample, failures translated."""
    sess = _graph.session(model, label)
    try:
        return _graph.run(sess, feeds)
    except Exception as exc:  # onnxruntime errors are untyped
        hint = (
            " (a graph with a fixed batch size needs --max-batch-size 0)" if opts.max_batch_size > 0 else ""
        )
        raise ConversionError(
            f"`{label}`: the converted model fails on the sample: {str(exc).strip()}{hint}"
        ) from None


def _artifact(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], opts: ConvertOptions, label: str
) -> tuple[bytes, dict[str, np.ndarray]]:
    """The artifact bytes (ONNX or plan) and its outputs on the sample."""
    if opts.to == "tensorrt":
        graph = prepare_graph(model, opts.precision, feeds, label)
        build = BuildOptions(opts.precision, opts.max_batch_size, opts.workspace_mb, opts.timing_cache)
        plan = build_plan(graph, _graph.graph_inputs(model), feeds, build, label)
        return plan, run_plan(plan, feeds, label)
    final = _to_final_onnx(model, feeds, opts, label)
    try:
        onnx.checker.check_model(final)
    except onnx.checker.ValidationError as exc:
        raise ConversionError(f"`{label}`: the converted graph fails the checker: {exc}") from None
    _graph.sort_opset_imports(final)
    data = final.SerializeToString()
    return data, _run_onnx(data, feeds, label, opts)


def _entry_spec(model: onnx.ModelProto, opts: ConvertOptions) -> EntrySpec:
    accel = (
        accelerator_parameters(opts.precision, workspace_mb=opts.workspace_mb) if opts.accelerator else None
    )
    return EntrySpec(
        name=opts.name,
        target=opts.to,
        runtime=opts.runtime,
        max_batch_size=opts.max_batch_size,
        inputs=tuple(_graph.graph_inputs(model)),
        outputs=tuple(_graph.graph_outputs(model)),
        accelerator=accel,
        encrypted=opts.encrypt_key is not None,
    )


def _manifest(
    source: Source,
    model: onnx.ModelProto,
    spec: EntrySpec,
    version: int,
    artifact: bytes,
    parity: ParityReport,
    opts: ConvertOptions,
    attachments: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    conversion = {
        "target": opts.to,
        "runtime": opts.runtime,
        "precision": opts.precision,
        "opset": _graph.default_opset(model),
        "ir_version": model.ir_version,
        "max_batch_size": opts.max_batch_size,
        "accelerator": opts.accelerator,
        "optimized": opts.optimize,
        "inputs": [t.name for t in spec.inputs],
        "outputs": [t.name for t in spec.outputs],
    }
    src = {
        "kind": source.kind,
        "type": source.type_name,
        "sha256": source.sha256,
        "path": str(source.path.resolve()) if source.path else None,
    }
    manifest = build_manifest(
        name=opts.name,
        version=version,
        artifact=spec.artifact,
        artifact_bytes=artifact,
        source=src,
        conversion=conversion,
        parity=parity.to_dict(),
        attachments=attachments,
    )
    if opts.encrypt_key is not None:
        manifest["artifact"].update(encrypted=ENCRYPTION, key_id=opts.encrypt_key.id)
    return manifest


def _reference_file(reference: Any, model: onnx.ModelProto) -> tuple[str, str, bytes]:
    """(role, file name, bytes) of the drift reference profile of `reference` data, whose
    unnamed arrays take the graph's input names."""
    from tritonab.monitoring.drift import REFERENCE_FILE, REFERENCE_ROLE, build_profile

    inputs = [t.name for t in _graph.graph_inputs(model)]
    profile = build_profile(reference, inputs=inputs)
    return REFERENCE_ROLE, REFERENCE_FILE, profile.to_json().encode("utf-8")


def run_conversion(
    source: Any, sample: SampleInput, opts: ConvertOptions, reference: Any = None
) -> ConversionResult:
    """Convert, check parity, and write the repository entry (see `convert`)."""
    _check_options(opts)
    model_dir = opts.repository / opts.name
    pick_version(model_dir, opts.version, force=opts.force)  # fail early on a taken version
    loaded = load_source(source)
    samples = (
        _samples.load_sample(sample)
        if isinstance(sample, (str, os.PathLike))
        else _samples.as_mapping(sample)
    )
    model = _export_source(loaded, samples, opts)
    attached = [] if reference is None else [_reference_file(reference, model)]
    feeds, data = _sample_feeds(loaded, model, samples, opts)
    names = [o.name for o in model.graph.output]
    artifact, outputs = _artifact(model, feeds, opts, loaded.label)
    reference = _export.reference_outputs(loaded, feeds, names)
    tolerance = tolerance_for(
        opts.precision, atol=opts.atol, rtol=opts.rtol, max_mismatch=opts.max_label_mismatch
    )
    rows = len(next(iter(feeds.values()))) if feeds else 0
    parity = compare(reference, outputs, tolerance, rows=rows, data=data)
    if not parity.ok:
        raise ConversionError(
            f"model `{opts.name}`: parity check against `{loaded.label}` failed; "
            f"nothing written:\n{parity.table()}"
        )
    spec = _entry_spec(model, opts)
    version = pick_version(model_dir, opts.version, force=opts.force)
    if opts.encrypt_key is not None:
        # Only ciphertext reaches the disk: the graph was built and checked in memory.
        artifact = seal(opts.encrypt_key, artifact, context=ARTIFACT_CONTEXT)
    attachments = {role: file_entry(name, blob) for role, name, blob in attached}
    manifest = _manifest(loaded, model, spec, version, artifact, parity, opts, attachments)
    files = {spec.artifact: artifact, MANIFEST: dump_manifest(manifest)}
    files.update({name: blob for _role, name, blob in attached})
    if spec.runtime == "python" and spec.target == "onnx":
        files["model.py"] = SHIM.encode("utf-8")
    version_dir = write_entry(opts.repository, spec, version, files, force=opts.force)
    return ConversionResult(
        opts.name,
        version,
        version_dir,
        version_dir / spec.artifact,
        model_dir / "config.pbtxt",
        parity,
        manifest,
    )
