"""Parity between the source model and the converted one, output by output.

Floating outputs pass when every element satisfies `|a - b| <= atol + rtol * |b|`
(b: the source's value, as `numpy.isclose`); the table reports the largest
absolute and relative errors. Integer, boolean and string outputs (class labels)
are compared exactly and pass when the share of rows that differ is at most
`max_mismatch`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Precision = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class Tolerance:
    """Allowed error: absolute, relative, and share of rows whose labels may differ."""

    atol: float
    rtol: float
    max_mismatch: float = 0.0


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-3, max_mismatch=0.0),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2, max_mismatch=0.01),
    "int8": Tolerance(atol=1e-1, rtol=1e-1, max_mismatch=0.05),
}


def tolerance_for(
    precision: str, *, atol: float | None = None, rtol: float | None = None, max_mismatch: float | None = None
) -> Tolerance:
    """The default tolerance of a precision, with any given value overriding it."""
    base = DEFAULT_TOLERANCES[precision]
    return Tolerance(
        atol=base.atol if atol is None else float(atol),
        rtol=base.rtol if rtol is None else float(rtol),
        max_mismatch=base.max_mismatch if max_mismatch is None else float(max_mismatch),
    )


@dataclass(frozen=True)
class OutputParity:
    """How one converted output compares with the source's."""

    name: str
    mode: Literal["numeric", "exact", "missing"]
    ok: bool
    max_abs: float | None = None
    max_rel: float | None = None
    mismatch_rate: float | None = None
    note: str = ""


@dataclass(frozen=True)
class ParityReport:
    """Every compared output, the tolerance used and where the data came from."""

    outputs: tuple[OutputParity, ...]
    tolerance: Tolerance
    rows: int
    data: Literal["sample", "synthetic"]

    @property
    def ok(self) -> bool:
        """True when every output is within tolerance."""
        return all(o.ok for o in self.outputs)

    def table(self) -> str:
        """A plain-text table of the errors, one output per line."""
        head = f"{'output':<20} {'check':<8} {'max abs':>11} {'max rel':>11} {'mismatch':>9}  result"
        lines = [head, "-" * len(head)]
        for o in self.outputs:
            lines.append(
                f"{o.name:<20} {o.mode:<8} {_num(o.max_abs):>11} {_num(o.max_rel):>11} "
                f"{_pct(o.mismatch_rate):>9}  {'ok' if o.ok else 'FAIL'}" + (f" ({o.note})" if o.note else "")
            )
        t = self.tolerance
        lines.append(
            f"tolerance: atol={t.atol:g} rtol={t.rtol:g} max label mismatch="
            f"{t.max_mismatch:.2%}; {self.rows} rows of {self.data} data"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready form, for the manifest."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "data": self.data,
            "tolerance": asdict(self.tolerance),
            "outputs": [asdict(o) for o in self.outputs],
        }


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _exact(name: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> OutputParity:
    rows = max(len(ref), 1)
    ref2, got2 = ref.reshape(len(ref), -1), got.reshape(len(got), -1)
    if ref.dtype.kind in "OSU" or got.dtype.kind in "OSU":
        ref2, got2 = _as_text(ref2), _as_text(got2)
    diff = np.any(ref2 != got2, axis=1)
    rate = float(diff.sum()) / rows
    return OutputParity(name, "exact", rate <= tol.max_mismatch, mismatch_rate=rate)


def _as_text(array: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(array)


def _numeric(name: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> OutputParity:
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    err = np.abs(got64 - ref64)
    both_nan = np.isnan(ref64) & np.isnan(got64)
    err = np.where(both_nan, 0.0, err)
    scale = np.where(both_nan, 0.0, np.abs(ref64))
    rel = np.divide(err, scale, out=np.zeros_like(err), where=scale > tol.atol)
    ok = bool(np.all(err <= tol.atol + tol.rtol * scale)) and not np.isnan(err).any()
    max_abs = float(np.nanmax(err)) if err.size else 0.0
    max_rel = float(np.nanmax(rel)) if rel.size else 0.0
    return OutputParity(name, "numeric", ok, max_abs=max_abs, max_rel=max_rel)


def compare_output(name: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> OutputParity:
    """One output's parity; shapes may differ only by size-1 axes (`[n]` vs `[n, 1]`)."""
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.size != got.size or (ref.ndim and got.ndim and len(ref) != len(got)):
        return OutputParity(
            name, "numeric", False, note=f"shape {list(got.shape)} != source {list(ref.shape)}"
        )
    got = got.reshape(ref.shape)
    exact = ref.dtype.kind in "biuOSU" or got.dtype.kind in "biuOSU"
    return (_exact if exact else _numeric)(name, ref, got, tol)


def compare(
    reference: dict[str, np.ndarray],
    converted: dict[str, np.ndarray],
    tol: Tolerance,
    *,
    rows: int,
    data: Literal["sample", "synthetic"],
) -> ParityReport:
    """Compare every converted output that the source also produces.

    Outputs that the source has but the conversion lacks fail; outputs with no
    source counterpart (e.g. extra scores) are not compared.
    """
    results = []
    for name, ref in reference.items():
        if name not in converted:
            results.append(OutputParity(name, "missing", False, note="not produced"))
            continue
        results.append(compare_output(name, ref, converted[name], tol))
    if not results:
        results.append(OutputParity("(none)", "missing", False, note="no output to compare"))
    return ParityReport(tuple(results), tol, rows, data)
