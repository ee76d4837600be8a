"""Triton Python-backend models: router, feature transform, ONNX runner.

Each `TritonPythonModel` is a thin adapter (importable only inside Triton) over
plain, testable functions: `_routing`, `_transform`, `_onnx`, `_feast` (online and
historical features for the transform's `feast_lookup` step; Feast itself is imported
only when a lookup is opened).
"""

from tritonab.backends._feast import (
    FeatureJoin,
    TransformRequest,
    feature_store_yaml,
    historical_features,
    transform_offline,
)
from tritonab.backends._onnx import OnnxModel, default_providers, gpu_available
from tritonab.backends._routing import VARIANT_OUTPUT, RequestError, Router
from tritonab.backends._transform import FeastLookup, TransformSpec, load_transform

__all__ = [
    "VARIANT_OUTPUT",
    "FeastLookup",
    "FeatureJoin",
    "OnnxModel",
    "RequestError",
    "Router",
    "TransformRequest",
    "TransformSpec",
    "default_providers",
    "feature_store_yaml",
    "gpu_available",
    "historical_features",
    "load_transform",
    "transform_offline",
]
