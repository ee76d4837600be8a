"""Triton Python-backend models: router, feature transform, ONNX runner.

Each `TritonPythonModel` is a thin adapter (importable only inside Triton) over
plain, testable functions: `_routing`, `_transform`, `_onnx`.
"""

from tritonab.backends._onnx import OnnxModel, default_providers, gpu_available
from tritonab.backends._routing import VARIANT_OUTPUT, RequestError, Router
from tritonab.backends._transform import TransformSpec, load_transform

__all__ = [
    "VARIANT_OUTPUT",
    "OnnxModel",
    "RequestError",
    "Router",
    "TransformSpec",
    "default_providers",
    "gpu_available",
    "load_transform",
]
