"""Redaction and hashing of named payload fields, applied before a record is serialised."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces or hashes named tensors in a payload record's `inputs` and `outputs`.

    Args:
        redact: names whose values are replaced by `[REDACTED]` (shape kept out too).
        hash: names whose every element becomes `sha256:<hex>` of `salt` + the element.
        salt: prefix of every hashed value (so hashes of small domains are not a lookup).
    """

    def __init__(self, redact: Iterable[str] = (), hash: Iterable[str] = (), salt: str = "") -> None:
        self.redact = frozenset(redact)
        self.hash = frozenset(hash)
        self.salt = salt.encode("utf-8")

    def __bool__(self) -> bool:
        return bool(self.redact or self.hash)

    def digest(self, value: Any) -> str:
        """`sha256:<hex>` of the salt and one element."""
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, (float, np.floating)):
            data = repr(float(value)).encode()
        else:
            data = str(value.item() if isinstance(value, np.generic) else value).encode("utf-8")
        return "sha256:" + hashlib.sha256(self.salt + data).hexdigest()

    def tensor(self, name: str, value: Any) -> Any:
        """The value to write for tensor `name`."""
        if name in self.redact:
            return REDACTED
        if name in self.hash:
            array = np.asarray(value, dtype=object)
            return np.vectorize(self.digest, otypes=[object])(array).tolist() if array.size else []
        return value

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        """A copy of `record` with `inputs`/`outputs` tensors (and `unit_id`) redacted/hashed."""
        if not self:
            return record
        out = dict(record)
        for section in ("inputs", "outputs"):
            tensors = record.get(section)
            if isinstance(tensors, dict):
                out[section] = {n: self.tensor(n, v) for n, v in tensors.items()}
        if "unit_id" in out and out["unit_id"] is not None:
            if "unit_id" in self.redact:
                out["unit_id"] = REDACTED
            elif "unit_id" in self.hash:
                out["unit_id"] = self.digest(out["unit_id"])
        return out
