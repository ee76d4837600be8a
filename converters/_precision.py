"""Reduced precision as graph rewrites: FP16 casts and INT8 Q/DQ nodes.

Used for the ONNX target (served by onnxruntime) and for TensorRT 11, which
dropped the FP16/INT8 builder flags in favour of strongly typed networks: the
precision has to be in the graph before the build. Graph inputs and outputs
keep their float32 type so clients and configs do not change.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx

from tritonab.errors import ConversionError

CALIBRATION_BATCH = 16


def to_fp16(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """The graph with float tensors in FP16 and float32 inputs/outputs kept.

    Operators with no FP16 kernel (the ai.onnx.ml tree and linear ops among them)
    stay in float32 behind casts.

    Raises:
        ConversionError: onnxconverter-common is missing or fails on the graph.
    """
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ConversionError(
            "FP16 conversion needs onnxconverter-common: pip install 'onnxconverter-common>=1.14'"
        ) from None
    ir_version = model.ir_version
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = float16.convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:  # the converter raises bare exceptions
        raise ConversionError(f"`{label}`: FP16 conversion failed: {exc}") from None
    converted.ir_version = ir_version
    return converted


class _Reader:
    """onnxruntime CalibrationDataReader over the sample, in small batches."""

    def __init__(self, feeds: dict[str, np.ndarray]) -> None:
        total = len(next(iter(feeds.values())))
        self._batches = iter(
            [
                {name: array[start : start + CALIBRATION_BATCH] for name, array in feeds.items()}
                for start in range(0, total, CALIBRATION_BATCH)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - only some ORT versions call it
        pass


def to_int8_qdq(model: onnx.ModelProto, feeds: dict[str, np.ndarray], label: str) -> onnx.ModelProto:
    """Static INT8 quantisation with Q/DQ nodes, calibrated on `feeds`.

    Symmetric activations and weights, as TensorRT requires for explicit
    quantisation.

    Raises:
        ConversionError: onnxruntime's quantiser fails on the graph.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    reader_type = type("CalibrationReader", (_Reader, CalibrationDataReader), {})
    with tempfile.TemporaryDirectory(prefix="tritonab-int8-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, str(source))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_static(
                    str(source),
                    str(target),
                    reader_type(feeds),
                    quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
                )
        except Exception as exc:  # quantiser errors are untyped
            raise ConversionError(f"`{label}`: INT8 quantisation failed: {exc}") from None
        quantized = onnx.load_model(str(target))
    return quantized
