"""Recognise and load what is being converted: a file or an in-memory object.

Supported: scikit-learn estimators and pipelines (pickle/joblib files or objects),
PyTorch modules (TorchScript or whole-module `torch.save` files, or objects;
optional) and ONNX models (files or `onnx.ModelProto`).

Unpickling runs code from the file: convert only files you trust.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnx

from tritonab.converters._fingerprint import fingerprint
from tritonab.converters._graph import load_onnx_file
from tritonab.errors import ConversionError

SourceKind = Literal["sklearn", "torch", "onnx"]
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".sav"}
_TORCH_SUFFIXES = {".pt", ".pth", ".ts", ".torchscript"}


@dataclass(frozen=True)
class Source:
    """A loaded source model and where it came from."""

    kind: SourceKind
    obj: Any
    label: str
    path: Path | None
    sha256: str | None
    type_name: str


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def is_sklearn(obj: Any) -> bool:
    """True for a scikit-learn estimator or pipeline (anything with `get_params` and a fit)."""
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(obj, BaseEstimator)


def is_torch_module(obj: Any) -> bool:
    """True for a `torch.nn.Module` (without importing torch when it is not loaded)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _check_fitted(obj: Any, label: str) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except NotFittedError:
        raise ConversionError(f"`{label}`: the estimator is not fitted") from None
    except TypeError as exc:
        raise ConversionError(f"`{label}`: not a scikit-learn estimator: {exc}") from None


def from_object(
    obj: Any, *, label: str | None = None, path: Path | None = None, sha256: str | None = None
) -> Source:
    """Classify an in-memory model.

    Raises:
        ConversionError: neither a scikit-learn estimator, a torch module nor an ONNX model.
    """
    name = _type_name(obj)
    label = label or f"<{type(obj).__name__} object>"
    if isinstance(obj, onnx.ModelProto):
        digest = sha256 or hashlib.sha256(obj.SerializeToString(deterministic=True)).hexdigest()
        return Source("onnx", obj, label, path, digest, name)
    if is_sklearn(obj):
        _check_fitted(obj, label)
        return Source("sklearn", obj, label, path, sha256 or fingerprint(obj), name)
    if is_torch_module(obj):
        return Source("torch", obj, label, path, sha256 or fingerprint(obj), name)
    raise ConversionError(
        f"`{label}`: unsupported source type `{name}`: expected a scikit-learn estimator "
        "or pipeline, a torch.nn.Module or an ONNX model"
    )


def _load_pickle(path: Path) -> Any:
    """Unpickle a joblib or plain pickle file, translating every failure."""
    try:
        import joblib

        return joblib.load(path)
    except ImportError:
        pass
    except Exception as exc:  # truncated/corrupt pickles raise many error types
        raise ConversionError(f"`{path}`: cannot unpickle the model: {_reason(exc)}") from None
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    except Exception as exc:  # as above
        raise ConversionError(f"`{path}`: cannot unpickle the model: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load_torch(path: Path) -> Any:
    """A TorchScript archive, or a whole module saved with `torch.save`."""
    try:
        import torch
    except ImportError:
        raise ConversionError(
            f"`{path}`: PyTorch sources need torch: pip install 'tritonab[torch]'"
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated, still the TorchScript loader
            return torch.jit.load(str(path), map_location="cpu")
    except Exception:  # not TorchScript: try a pickled module
        pass
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt archives raise many error types
        raise ConversionError(f"`{path}`: cannot load the PyTorch model: {_reason(exc)}") from None


def load_source(source: Any) -> Source:
    """A `Source` from a path (str/PathLike) or an in-memory model.

    Raises:
        ConversionError: missing/unreadable/corrupt file or an unsupported model type;
            the message names the file and the reason.
    """
    if not isinstance(source, (str, os.PathLike)):
        return from_object(source)
    path = Path(source)
    if not path.is_file():
        raise ConversionError(f"source `{path}` does not exist or is not a file")
    digest = sha256_file(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        obj: Any = load_onnx_file(path)
    elif suffix in _TORCH_SUFFIXES:
        obj = _load_torch(path)
    elif suffix in _PICKLE_SUFFIXES:
        obj = _load_pickle(path)
    else:
        raise ConversionError(
            f"`{path}`: unknown source format `{suffix or '(no suffix)'}`: expected .onnx, "
            f"{', '.join(sorted(_PICKLE_SUFFIXES))} or {', '.join(sorted(_TORCH_SUFFIXES))}"
        )
    return from_object(obj, label=str(path), path=path, sha256=digest)
