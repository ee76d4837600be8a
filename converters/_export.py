"""Export a source model to ONNX, and compute the source's own outputs for parity.

scikit-learn goes through skl2onnx (classifiers with `zipmap=False`, so that
probabilities are a tensor and `label` is `[batch]`); PyTorch through
`torch.onnx.export` (TorchScript exporter) with a dynamic batch axis.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import onnx

from tritonab.converters._graph import BATCH_DIM, pin_ir_version, session
from tritonab.converters._graph import run as run_session
from tritonab.converters._sources import Source
from tritonab.errors import ConversionError

SKLEARN_INPUT = "input"
DEFAULT_TORCH_OPSET = 17


def _is_classifier(estimator) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(estimator)) and hasattr(estimator, "predict_proba")


def sklearn_features(source: Source, sample: np.ndarray | None) -> int:
    """The number of input features: `n_features_in_`, else the sample's width.

    Raises:
        ConversionError: neither is available.
    """
    n = getattr(source.obj, "n_features_in_", None)
    if n is None and sample is not None and sample.ndim == 2:
        n = sample.shape[1]
    if n is None:
        raise ConversionError(
            f"`{source.label}`: cannot tell the number of input features: "
            "give a sample input (--sample-input FILE.npz)"
        )
    return int(n)


def sklearn_to_onnx(source: Source, n_features: int, opset: int | None) -> onnx.ModelProto:
    """skl2onnx export with one float32 input `input` of shape `[batch, n_features]`.

    Raises:
        ConversionError: skl2onnx is missing or cannot convert the estimator.
    """
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError:
        raise ConversionError("scikit-learn sources need skl2onnx: pip install 'tritonab[sklearn]'") from None
    options = {"zipmap": False} if _is_classifier(source.obj) else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return to_onnx(
                source.obj,
                initial_types=[(SKLEARN_INPUT, FloatTensorType([None, n_features]))],
                options=options,
                target_opset=opset,
            )
    except Exception as exc:  # skl2onnx raises RuntimeError, MissingShapeCalculator, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(
            f"`{source.label}`: skl2onnx cannot convert `{source.type_name}`: {reason}"
        ) from None


def _sklearn_method(estimator, output: str, position: int) -> Callable | None:
    """The estimator method whose result matches a skl2onnx output (by name, then position)."""
    by_name = {
        "label": "predict",
        "probabilities": "predict_proba",
        "variable": "predict" if hasattr(estimator, "predict") else "transform",
        "scores": "decision_function" if hasattr(estimator, "decision_function") else "transform",
    }
    order = ["predict", "predict_proba"] if _is_classifier(estimator) else ["predict"]
    if not hasattr(estimator, "predict"):
        order = ["transform"]
    name = by_name.get(output) or (order[position] if position < len(order) else None)
    return getattr(estimator, name, None) if name else None


def sklearn_reference(
    source: Source, feeds: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    """The estimator's own outputs on the (float32) sample, keyed by the ONNX output names."""
    x = feeds[SKLEARN_INPUT]
    result: dict[str, np.ndarray] = {}
    for position, name in enumerate(outputs):
        method = _sklearn_method(source.obj, name, position)
        if method is not None:
            result[name] = np.asarray(method(x))
    return result


def torch_names(count: int, prefix: str) -> list[str]:
    """`input` for one tensor, `input_0`, `input_1`, ... for several."""
    return [prefix] if count == 1 else [f"{prefix}_{i}" for i in range(count)]


def _torch_outputs(module, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Run the module on numpy inputs, without gradients; outputs as numpy, in order."""
    import torch

    module.eval()
    with torch.no_grad():
        result = module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
    items = result if isinstance(result, (tuple, list)) else [result]
    return [t.detach().cpu().numpy() for t in items]


def torch_to_onnx(
    source: Source, feeds: dict[str, np.ndarray], opset: int | None, *, dynamic_batch: bool
) -> onnx.ModelProto:
    """`torch.onnx.export` of the module on the sample, with a dynamic batch axis.

    Raises:
        ConversionError: the exporter fails (unsupported operator, bad sample).
    """
    import torch

    arrays = list(feeds.values())
    try:
        n_out = len(_torch_outputs(source.obj, arrays))
    except Exception as exc:  # the module's own error on the sample
        raise ConversionError(f"`{source.label}`: the module fails on the sample: {exc}") from None
    outputs = torch_names(n_out, "output")
    axes = {n: {0: BATCH_DIM} for n in [*feeds, *outputs]} if dynamic_batch else None
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                source.obj,
                tuple(torch.from_numpy(a) for a in arrays),
                buffer,  # type: ignore[arg-type]  # torch's hints say a path; it takes a file object too
                input_names=list(feeds),
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=opset or DEFAULT_TORCH_OPSET,
                dynamo=False,
            )
    except Exception as exc:  # exporter errors come in many types
        raise ConversionError(f"`{source.label}`: torch.onnx.export failed: {exc}") from None
    return onnx.load_model_from_string(buffer.getvalue())


def torch_reference(
    source: Source, feeds: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    """The module's own outputs, by position onto the ONNX output names."""
    return dict(zip(outputs, _torch_outputs(source.obj, list(feeds.values()))))


def onnx_reference(source: Source, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    """The ONNX source run by onnxruntime with every optimisation off (IR pinned only)."""
    model = onnx.ModelProto.FromString(source.obj.SerializeToString())
    pin_ir_version(model, source.label)
    values = run_session(session(model, source.label, optimize=False), feeds)
    return {name: values[name] for name in outputs if name in values}


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS, OpenMP and torch held to one thread: a parallel sum adds in another order, so
    the reference outputs (and the parity figures in the manifest) would differ in their
    last bits from machine to machine."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # no scikit-learn installed: no BLAS pools to hold
        limits: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=1)
    with limits:
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None and threads is not None:
                torch.set_num_threads(threads)


def reference_outputs(
    source: Source, feeds: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    """The source's outputs on `feeds`, keyed by the converted model's output names.

    Raises:
        ConversionError: the source itself fails on the sample.
    """
    compute = {"sklearn": sklearn_reference, "torch": torch_reference, "onnx": onnx_reference}[source.kind]
    try:
        with single_threaded():
            return compute(source, feeds, outputs)
    except ConversionError:
        raise
    except Exception as exc:  # the source model's own failure on this data
        raise ConversionError(f"`{source.label}`: the source fails on the sample: {exc}") from None
