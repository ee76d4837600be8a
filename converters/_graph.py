"""Make an ONNX graph servable: checked, shape-inferred, loadable by the pinned onnxruntime.

The pinned onnxruntime reads IR versions up to 13 while onnx 1.23 writes 14 by
default, so the IR version is pinned down to `TARGET_IR_VERSION` (10) unless
the graph's opset needs a newer one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, shape_inference

from tritonab.errors import ConversionError

TARGET_IR_VERSION = 10
MAX_IR_VERSION = 13  # the newest IR onnxruntime 1.31 reads
MIN_OPSET = 7
BATCH_DIM = "batch"


@dataclass(frozen=True)
class GraphTensor:
    """A graph input or output: name, numpy dtype, shape (None for a dynamic dim)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default (`ai.onnx`) domain the graph imports."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else 0


def max_supported_opset() -> int:
    """The newest `ai.onnx` opset the installed onnx (and so this pipeline) knows."""
    return onnx.defs.onnx_opset_version()


def check_opset(model: onnx.ModelProto, label: str) -> int:
    """The graph's default opset, or ConversionError when it is out of the supported range."""
    opset = default_opset(model)
    top = max_supported_opset()
    if opset and not MIN_OPSET <= opset <= top:
        raise ConversionError(
            f"`{label}`: unsupported opset {opset}: expected an ai.onnx opset between {MIN_OPSET} and {top}"
        )
    return opset


def _required_ir(opset: int) -> int:
    """The oldest IR version that can carry `opset` (from onnx's version table)."""
    for _release, ir, op, *_ in helper.VERSION_TABLE:
        if op >= opset:
            return int(ir)
    return int(onnx.IR_VERSION)


def sort_opset_imports(model: onnx.ModelProto) -> None:
    """Order opset imports by domain: exporters emit them in set order, which would make
    the same model serialize to different bytes from run to run."""
    ordered = sorted(model.opset_import, key=lambda o: (o.domain, o.version))
    del model.opset_import[:]
    model.opset_import.extend(ordered)


def pin_ir_version(model: onnx.ModelProto, label: str) -> None:
    """Lower the IR version to one onnxruntime reads (in place)."""
    needed = _required_ir(default_opset(model) or MIN_OPSET)
    ir = max(min(model.ir_version or TARGET_IR_VERSION, TARGET_IR_VERSION), needed)
    if ir > MAX_IR_VERSION:
        raise ConversionError(
            f"`{label}`: opset {default_opset(model)} needs IR version {ir}; "
            f"onnxruntime reads at most IR {MAX_IR_VERSION}"
        )
    model.ir_version = ir


def _dedupe_opsets(model: onnx.ModelProto) -> None:
    """Keep one opset_import per domain (skl2onnx can list the default domain twice)."""
    best: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        best[domain] = max(best.get(domain, 0), entry.version)
    del model.opset_import[:]
    for domain, version in best.items():
        model.opset_import.append(helper.make_opsetid(domain, version))


def _set_batch_dim(value_info: onnx.ValueInfoProto) -> None:
    """Make dim 0 of a tensor the symbolic `batch` dim."""
    shape = value_info.type.tensor_type.shape
    if len(shape.dim) == 0:
        return
    dim = shape.dim[0]
    dim.ClearField("dim_value")
    dim.dim_param = BATCH_DIM


def make_batch_dynamic(model: onnx.ModelProto) -> None:
    """Set a symbolic batch dim on every graph input and output (in place)."""
    initializers = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in initializers:
            _set_batch_dim(value)
    for value in model.graph.output:
        _set_batch_dim(value)


def normalize(
    model: onnx.ModelProto, label: str, *, dynamic_batch: bool, opset: int | None = None
) -> onnx.ModelProto:
    """Checked, shape-inferred copy of `model` with pinned IR and (optionally) dynamic batch.

    Raises:
        ConversionError: unsupported opset, failed opset conversion or a graph the
            ONNX checker rejects; the message names `label`.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    _dedupe_opsets(model)
    current = check_opset(model, label)
    if opset is not None and current and opset != current:
        model = _convert_opset(model, opset, label)
    if dynamic_batch:
        make_batch_dynamic(model)
    pin_ir_version(model, label)
    try:
        onnx.checker.check_model(model)
        model = shape_inference.infer_shapes(model, strict_mode=False)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ConversionError(f"`{label}`: the ONNX checker rejects the graph: {exc}") from None
    return model


def _convert_opset(model: onnx.ModelProto, opset: int, label: str) -> onnx.ModelProto:
    """The graph moved to another ai.onnx opset with onnx's version converter."""
    if not MIN_OPSET <= opset <= max_supported_opset():
        raise ConversionError(
            f"`{label}`: unsupported target opset {opset}: expected {MIN_OPSET}..{max_supported_opset()}"
        )
    try:
        return onnx.version_converter.convert_version(model, opset)
    except Exception as exc:  # the converter raises bare RuntimeErrors
        raise ConversionError(f"`{label}`: cannot convert to opset {opset}: {exc}") from None


def load_onnx_file(path: Path) -> onnx.ModelProto:
    """Read an `.onnx` file.

    Raises:
        ConversionError: unreadable or not an ONNX model.
    """
    try:
        model = onnx.load_model(os.fspath(path))
    except Exception as exc:  # protobuf DecodeError, OSError, ...
        raise ConversionError(f"`{path}`: not a readable ONNX model: {exc}") from None
    if not model.graph.node and not model.graph.output:
        raise ConversionError(f"`{path}`: not a readable ONNX model: the graph is empty")
    return model


def _value_tensor(value: onnx.ValueInfoProto) -> GraphTensor:
    """A GraphTensor from a graph value's type."""
    ttype = value.type.tensor_type
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(ttype.elem_type))
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim)
    return GraphTensor(value.name, dtype, shape)


def graph_inputs(model: onnx.ModelProto) -> list[GraphTensor]:
    """The real graph inputs (initializers excluded), in order."""
    initializers = {i.name for i in model.graph.initializer}
    return [_value_tensor(v) for v in model.graph.input if v.name not in initializers]


def graph_outputs(model: onnx.ModelProto) -> list[GraphTensor]:
    """The graph outputs, in order."""
    return [_value_tensor(v) for v in model.graph.output]


def _load_error(label: str, exc: Exception) -> ConversionError:
    return ConversionError(f"`{label}`: onnxruntime cannot load the model: {str(exc).strip()}")


def session(model: onnx.ModelProto | bytes, label: str, *, optimize: bool = True):
    """A CPU onnxruntime session for `model`.

    Raises:
        ConversionError: onnxruntime cannot load the graph; the message names `label`.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model if isinstance(model, bytes) else model.SerializeToString()
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime errors are untyped
        raise _load_error(label, exc) from None


def optimize(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """The model after onnxruntime's basic (hardware-independent) graph optimisations.

    Saved only where they help (fewer nodes); otherwise the input is returned.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="tritonab-ort-") as tmp:
        target = Path(tmp) / "optimized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(target)
        try:
            ort.InferenceSession(
                model.SerializeToString(),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime errors are untyped
            raise _load_error(label, exc) from None
        optimized = onnx.load_model(str(target))
    if len(optimized.graph.node) >= len(model.graph.node):
        return model
    optimized.ir_version = model.ir_version
    _dedupe_opsets(optimized)
    return optimized


def run(sess, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of an onnxruntime session, by name."""
    names = [o.name for o in sess.get_outputs()]
    feed = {i.name: inputs[i.name] for i in sess.get_inputs()}
    return dict(zip(names, sess.run(names, feed)))
