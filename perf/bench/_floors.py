"""Floors for the benchmark scripts: each script ends with `sys.exit(finish(...))`.

A floor is a ratio measured side by side in one run, against a limit. `finish` prints
one line per floor with PASS or BELOW FLOOR and returns the exit code: 1 when any
floor is missed. With `TRITONAB_BENCH_JSON=FILE` set (as `run_all.py` does), each
script also appends its floors to FILE as one JSON line. Every run prints the share of
CPU the hypervisor took meanwhile (steal, from /proc/stat).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

JSON_ENV = "TRITONAB_BENCH_JSON"


def _cpu_ticks() -> list[int] | None:
    """The machine's CPU time counters (`/proc/stat`: user ... steal), None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            return [int(x) for x in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


_STARTED = _cpu_ticks()


def steal_share() -> float | None:
    """Share of the machine's CPU time taken by the hypervisor (steal) since this module
    was imported: a virtual machine's neighbours move its figures, and a run with a
    large share is no fair measurement."""
    now = _cpu_ticks()
    if now is None or _STARTED is None:
        return None
    spent = [b - a for a, b in zip(_STARTED, now)]
    return spent[7] / sum(spent) if sum(spent) else None


@dataclass(frozen=True)
class Floor:
    """One measured ratio and the limit it must meet."""

    name: str
    value: float
    limit: float
    higher_is_better: bool = True
    unit: str = "x"

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def line(self) -> str:
        bound = ">=" if self.higher_is_better else "<="
        verdict = "PASS" if self.passed else "BELOW FLOOR"
        return (
            f"{self.name}: {self.value:.3g}{self.unit}  (floor {bound} {self.limit:g}{self.unit})  {verdict}"
        )


def finish(bench: str, floors: list[Floor], info: dict | None = None) -> int:
    """Print every floor, record them for `run_all.py`, and return the exit code."""
    steal = steal_share()
    if steal is not None:
        print(f"CPU stolen by the hypervisor during the run: {steal:.1%}")
    for floor in floors:
        print(floor.line())
    target = os.environ.get(JSON_ENV)
    if target:
        record = {"bench": bench, "floors": [asdict(f) | {"passed": f.passed} for f in floors]}
        record["info"] = (info or {}) | {"steal_share": steal}
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    return 0 if all(f.passed for f in floors) else 1


@dataclass(frozen=True)
class Paired:
    """Ratios a/b of windows measured in the same round (adjacent in time, so drift of a
    shared machine cancels), with their median and spread."""

    ratios: list[float]

    @classmethod
    def of(cls, a: Sequence[Any], b: Sequence[Any], figure: Callable[[Any], float]) -> Paired:
        return cls([figure(x) / figure(y) for x, y in zip(a, b, strict=True)])

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    def spread(self) -> str:
        return f"{self.median:.3f}x (rounds {min(self.ratios):.2f}-{max(self.ratios):.2f}x)"
