"""Canonical fingerprints of in-memory models: the same parameters give the same sha256
in every process, whatever the hash seed or the thread count.

A pickle is not canonical (memo numbering, dict and set order, object identity), so a
model's identity cannot be the hash of its pickle. Instead the object is walked and
each value is fed to SHA-256 in a tagged, length-prefixed encoding:

- scalars by value (floats as `float.hex`, so every bit counts and `-0.0 != 0.0`);
- strings as UTF-8, bytes as they are;
- lists and tuples in order; dicts, sets and frozensets sorted by the digest of each key
  (or member), so insertion order does not matter;
- numpy arrays as dtype (little-endian), shape and C-ordered bytes; object arrays
  element by element;
- a scikit-learn estimator as its class, its `get_params(deep=False)` and its fitted
  state (`__getstate__`, the fitted attributes and private helpers such as trees),
  leaving out how it ran (`n_jobs`, `n_threads`, `verbose`);
- a torch module as its class, its printed structure and its `state_dict`;
- classes and functions by their qualified name;
- any other object by what it pickles to (`__reduce_ex__`: the callable, its arguments
  and its state), walked the same way.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
import types
from typing import Any

import numpy as np

from tritonab.errors import ConversionError

_VERSION = b"tritonab-fingerprint-1\0"
# What an estimator keeps that says nothing about the model: the library version that
# pickled it (the manifest's tools record it) and how it was run (threads, processes,
# chattiness), which would otherwise make the same model differ from machine to machine.
_SKIPPED_STATE = frozenset({"_sklearn_version", "n_jobs", "n_threads", "verbose"})


def fingerprint(obj: Any) -> str:
    """The canonical sha256 (hex) of a model object's parameters and fitted state.

    Raises:
        ConversionError: an object inside cannot be serialised canonically.
    """
    digest = hashlib.sha256(_VERSION)
    _Walker(digest).feed(obj)
    return digest.hexdigest()


class _Walker:
    """Feeds one object graph into a digest; objects already on the path are referenced."""

    def __init__(self, digest: Any) -> None:
        self.digest = digest
        self.path: list[int] = []

    def tag(self, code: bytes, payload: bytes = b"") -> None:
        self.digest.update(code + struct.pack("<Q", len(payload)) + payload)

    def feed(self, obj: Any) -> None:
        if obj is None or isinstance(obj, (bool, np.bool_)):
            self.tag(b"B", repr(None if obj is None else bool(obj)).encode())
        elif isinstance(obj, (int, np.integer)):
            self.tag(b"I", str(int(obj)).encode())
        elif isinstance(obj, (float, np.floating)):
            self.tag(b"F", _float(float(obj)))
        elif isinstance(obj, (complex, np.complexfloating)):
            self.tag(b"J", _float(float(obj.real)) + b"," + _float(float(obj.imag)))
        elif isinstance(obj, str):
            self.tag(b"S", obj.encode("utf-8", "surrogatepass"))
        elif isinstance(obj, (bytes, bytearray, memoryview)):
            self.tag(b"Y", bytes(obj))
        elif isinstance(obj, np.dtype):
            self.tag(b"d", _dtype(obj).encode())
        elif isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            self.tag(b"C", _qualname(obj).encode())
        else:
            self._container(obj)

    def _container(self, obj: Any) -> None:
        if id(obj) in self.path:
            self.tag(b"R", str(len(self.path) - self.path.index(id(obj))).encode())
            return
        self.path.append(id(obj))
        try:
            self._walk(obj)
        finally:
            self.path.pop()

    def _walk(self, obj: Any) -> None:
        if isinstance(obj, np.ndarray):
            self._array(obj)
        elif isinstance(obj, (list, tuple)):
            self.tag(b"L" if isinstance(obj, list) else b"T", str(len(obj)).encode())
            for item in obj:
                self.feed(item)
        elif isinstance(obj, dict):
            self._mapping(obj.items())
        elif isinstance(obj, (set, frozenset)):
            self._mapping((item, None) for item in obj)
        elif _is_torch_tensor(obj):
            self._array(obj.detach().cpu().numpy())
        elif _is_torch_module(obj):
            self._torch_module(obj)
        elif _is_sklearn(obj):
            self._estimator(obj)
        else:
            self._reduced(obj)

    def _array(self, array: np.ndarray) -> None:
        self.tag(b"A", f"{_dtype(array.dtype)}|{array.shape}".encode())
        if array.dtype.hasobject:
            for item in array.reshape(-1).tolist():
                self.feed(item)
            return
        canonical = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        self.tag(b"a", canonical.tobytes())

    def _mapping(self, items: Any) -> None:
        """Entries sorted by the digest of each key: no dependence on insertion order."""
        entries = []
        for key, value in items:
            sub = hashlib.sha256()
            _Walker(sub).feed(key)
            entries.append((sub.digest(), key, value))
        entries.sort(key=lambda entry: entry[0])
        self.tag(b"D", str(len(entries)).encode())
        for key_digest, _key, value in entries:
            self.tag(b"k", key_digest)
            self.feed(value)

    def _estimator(self, obj: Any) -> None:
        self.tag(b"E", _qualname(type(obj)).encode())
        params = obj.get_params(deep=False)
        self.feed({k: v for k, v in params.items() if k not in _SKIPPED_STATE})
        state = obj.__getstate__() if hasattr(obj, "__getstate__") else vars(obj)
        self.feed({k: v for k, v in dict(state).items() if k not in _SKIPPED_STATE})

    def _torch_module(self, obj: Any) -> None:
        self.tag(b"M", _qualname(type(obj)).encode())
        self.tag(b"m", str(obj).encode())
        code = getattr(obj, "code", None)  # TorchScript: the compiled forward
        if isinstance(code, str):
            self.tag(b"c", code.encode())
        self.feed(list(obj.state_dict().items()))

    def _reduced(self, obj: Any) -> None:
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception as exc:  # any object may refuse to be pickled, in its own way
            raise ConversionError(
                f"cannot fingerprint a `{_qualname(type(obj))}` inside the model: {exc}"
            ) from exc
        if isinstance(reduced, str):  # a module-level singleton
            self.tag(b"G", f"{_qualname(type(obj))}:{reduced}".encode())
            return
        self.tag(b"O", _qualname(type(obj)).encode())
        parts = list(reduced) + [None] * (5 - len(reduced))
        func, args, state, list_items, dict_items = parts[:5]
        self.feed(func)
        self.feed(args)
        self.feed(state)
        self.feed(None if list_items is None else list(list_items))
        self.feed(None if dict_items is None else dict(dict_items))


def _float(value: float) -> bytes:
    return b"nan" if math.isnan(value) else value.hex().encode()


def _dtype(dtype: np.dtype) -> str:
    """A byte-order-free description (`<f4`, structured fields with their names)."""
    little = dtype.newbyteorder("<")
    return str(little.descr) if little.fields else little.str


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _is_sklearn(obj: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(obj, base.BaseEstimator)


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _is_torch_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)
