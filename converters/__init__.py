"""Converters: scikit-learn / PyTorch / ONNX -> ONNX or TensorRT plan, parity-checked,
written as a versioned Triton repository entry with a manifest.

Example:
    >>> from tritonab.converters import convert  # doctest: +SKIP
    >>> result = convert("model.joblib", name="churn", repository="model_repository")
    >>> print(result.parity.table())

A runtime-config variant (same artifact, another config) for an A/B test on how the
model is served:
    >>> from tritonab.converters import RuntimeChanges, derive_variant  # doctest: +SKIP
    >>> derive_variant("churn", name="churn_x2", repository="model_repository",
    ...                changes=RuntimeChanges(instances=2, max_queue_delay_us=200))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from tritonab.converters._convert import (
    ConversionResult,
    ConvertOptions,
    SampleInput,
    run_conversion,
)
from tritonab.converters._derive import DerivedVariant, RuntimeChanges, derive_variant
from tritonab.converters._encryption import decrypt_artifact, rotate_repository
from tritonab.converters._manifest import ATTACHMENTS, MANIFEST, attach_file, read_manifest, verify_manifest
from tritonab.converters._parity import (
    DEFAULT_TOLERANCES,
    OutputParity,
    ParityReport,
    Precision,
    Tolerance,
)
from tritonab.converters._repository import SHIM, Runtime, Target
from tritonab.converters._tensorrt import DEFAULT_WORKSPACE_MB
from tritonab.security import Key, load_key

__all__ = [
    "ATTACHMENTS",
    "DEFAULT_TOLERANCES",
    "MANIFEST",
    "SHIM",
    "ConversionResult",
    "ConvertOptions",
    "DerivedVariant",
    "OutputParity",
    "ParityReport",
    "RuntimeChanges",
    "Tolerance",
    "attach_file",
    "convert",
    "decrypt_artifact",
    "rotate_repository",
    "derive_variant",
    "read_manifest",
    "verify_manifest",
]


def convert(
    source: Any,
    *,
    name: str,
    repository: str | os.PathLike[str],
    version: int | None = None,
    to: Target = "onnx",
    runtime: Runtime = "python",
    accelerator: Literal["tensorrt"] | None = None,
    max_batch_size: int = 64,
    opset: int | None = None,
    precision: Precision = "fp32",
    sample_input: SampleInput = None,
    atol: float | None = None,
    rtol: float | None = None,
    max_label_mismatch: float | None = None,
    parity_rows: int = 256,
    optimize: bool = True,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    timing_cache: str | os.PathLike[str] | None = None,
    force: bool = False,
    encrypt_key: Key | str | os.PathLike[str] | None = None,
    reference: Any = None,
) -> ConversionResult:
    """Convert a model, check it against the source, and add it to a Triton repository.

    Args:
        source: a path (`.onnx`, `.joblib`/`.pkl`/`.pickle`, `.pt`/`.pth`) or an object
            (fitted scikit-learn estimator or pipeline, `torch.nn.Module`, `onnx.ModelProto`).
            Pickles run code when loaded: convert only files you trust.
        name: the model's name in the repository.
        repository: the model repository folder (`DIR`).
        version: the version folder to write; the next free number when omitted.
        to: `onnx` (`model.onnx`) or `tensorrt` (`model.plan`, needs a GPU and `tensorrt`).
        runtime: for ONNX, `python` (tritonab's onnxruntime runner on the Python backend,
            which the embedded Triton has) or `native` (`backend: "onnxruntime"`).
        accelerator: `tensorrt` adds the onnxruntime backend's TensorRT execution
            accelerator (with `to="onnx", runtime="native"`).
        max_batch_size: Triton `max_batch_size`; > 0 gives the graph a dynamic batch dim
            and enables dynamic batching; 0 keeps the graph's shapes as they are.
        opset: target ai.onnx opset (export, or conversion of an ONNX source).
        precision: `fp32`, `fp16` (FP16 graph / builder flag) or `int8` (Q/DQ nodes
            calibrated on the sample).
        sample_input: `.npz`/`.npy` path, array or mapping of input name -> array; used
            for export (PyTorch needs it), calibration and parity (at most
            `parity_rows` rows drawn from it). Synthetic data is used when omitted.
        atol, rtol, max_label_mismatch: parity tolerances (defaults per precision,
            `DEFAULT_TOLERANCES`).
        parity_rows: rows drawn from the sample for the parity check.
        optimize: save onnxruntime's basic graph optimisations where they remove nodes.
        workspace_mb: TensorRT builder workspace limit (and accelerator setting).
        timing_cache: TensorRT timing cache file, read and updated.
        force: overwrite an existing version / replace an inconsistent config.
        encrypt_key: a data key (or its key file): the artifact is written encrypted with
            AES-256-GCM (`model.onnx.enc`), never as a plaintext graph; the manifest records
            the key id and the ciphertext's sha256. The runner decrypts it in memory with
            the key named by `$TRITONAB_MODEL_KEY_FILE`. Needs `to="onnx", runtime="python"`.
        reference: data describing the model's inputs (a CSV, Parquet, JSON Lines,
            `.npz`/`.npy` file, a DataFrame, an array or a mapping of input name ->
            array): its drift reference profile is written as `reference.json` in the
            version folder and recorded in the manifest (`tritonab.monitoring.drift`).

    Returns:
        A `ConversionResult` (version folder, artifact, config path, parity report,
        manifest).

    Raises:
        ConversionError: unreadable/unsupported source, failed export, no GPU or
            TensorRT for `to="tensorrt"`, a parity failure (with the table of errors),
            or an existing version without `force`. Nothing is written then.
        DriftError: reference data that cannot be read or profiled (nothing written).
    """
    opts = ConvertOptions(
        name=name,
        repository=Path(repository),
        version=version,
        to=to,
        runtime=runtime,
        accelerator=accelerator,
        max_batch_size=max_batch_size,
        opset=opset,
        precision=precision,
        atol=atol,
        rtol=rtol,
        max_label_mismatch=max_label_mismatch,
        parity_rows=parity_rows,
        optimize=optimize,
        workspace_mb=workspace_mb,
        timing_cache=Path(timing_cache) if timing_cache else None,
        force=force,
        encrypt_key=(
            encrypt_key
            if isinstance(encrypt_key, Key) or encrypt_key is None
            else load_key(encrypt_key, purpose="data")
        ),
    )
    return run_conversion(source, sample_input, opts, reference)
