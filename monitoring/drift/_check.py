"""Data drift: current rows against a reference profile, per feature and per window.

`compare_window` judges one table of current rows; `check_data` compares two data sets
(or a stored profile and a data set); `check_logs` reads the router's payload log and
judges every (variant, window) against the reference profile of the variant's model
version (or one reference for all).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tritonab.errors import DriftError, SpecError
from tritonab.monitoring.drift._frames import TIME, VARIANT, TableLike, load_frame, read_payloads
from tritonab.monitoring.drift._profile import (
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    category_values,
    is_profile_file,
    load_profile,
    numeric_values,
    reference_for,
    version_dir,
)
from tritonab.monitoring.drift._spec import DriftSpec, DriftThresholds
from tritonab.monitoring.drift._stats import (
    chi_square_test,
    domain_classifier,
    js_distance,
    ks_test,
    psi,
)

ALL_ROWS = 2**62


@dataclass(frozen=True)
class Histogram:
    """Reference and current counts over the same bins, for plots (labels: edges or categories)."""

    labels: tuple[Any, ...]
    reference: tuple[int, ...]
    current: tuple[int, ...]
    numeric: bool


@dataclass(frozen=True)
class FeatureDrift:
    """One feature in one window.

    `p_value` is the feature's test (KS for numeric, chi-square for categorical) and
    `p_adjusted` the same after the window's correction; `drifted` is None when the
    window had no values of the feature. `reason` says which figures decided.
    """

    name: str
    kind: str
    rows: int
    psi: float
    js: float
    ks_statistic: float | None
    ks_pvalue: float | None
    chi2_statistic: float | None
    chi2_pvalue: float | None
    p_adjusted: float | None
    drifted: bool | None
    reason: str
    histogram: Histogram = field(repr=False)

    @property
    def p_value(self) -> float | None:
        """The raw p-value of the feature's test."""
        return self.ks_pvalue if self.kind == "numeric" else self.chi2_pvalue

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (NaN as None)."""
        keys = ("psi", "js", "ks_statistic", "ks_pvalue", "chi2_statistic", "chi2_pvalue")
        out: dict[str, Any] = {"kind": self.kind, "rows": self.rows}
        out.update({k: _num(getattr(self, k)) for k in keys})
        out.update(p_adjusted=_num(self.p_adjusted), drifted=self.drifted, reason=self.reason)
        return out


@dataclass(frozen=True)
class DomainDrift:
    """The domain classifier's figures for one window."""

    auc: float
    p_value: float
    drifted: bool
    rows_reference: int
    rows_current: int


@dataclass(frozen=True)
class WindowDrift:
    """One (variant, window): `status` is `ok`, or `insufficient` (fewer than `min_rows` rows)."""

    variant: str | None
    start: float | None
    end: float | None
    rows: int
    status: str
    features: tuple[FeatureDrift, ...] = ()
    domain: DomainDrift | None = None

    @property
    def drifted(self) -> bool | None:
        """Any feature (or the domain classifier) drifted; None when not judged."""
        if self.status != "ok":
            return None
        return any(f.drifted for f in self.features) or bool(self.domain and self.domain.drifted)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def feature(self, name: str) -> FeatureDrift:
        """The figures of one feature (KeyError when absent)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "status": self.status,
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "features": {f.name: f.to_dict() for f in self.features},
            "domain": None if self.domain is None else dict(self.domain.__dict__),
        }


@dataclass(frozen=True)
class DriftReport:
    """What a drift check found: every window, the settings and data notes."""

    experiment: str | None
    references: dict[str, dict[str, Any]]
    spec: DriftSpec
    windows: list[WindowDrift]
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """Any judged window drifted."""
        return any(w.drifted for w in self.windows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "drifted": self.drifted,
            "references": self.references,
            "spec": self.spec.model_dump(),
            "windows": [w.to_dict() for w in self.windows],
            "notes": self.notes,
        }


def _num(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


# -- one window ------------------------------------------------------------------------


def _numeric(profile: NumericProfile, reference: pd.DataFrame, column: pd.Series) -> dict[str, Any]:
    values = numeric_values(column)
    current = profile.bin_counts(values)
    sample = numeric_values(reference[profile.name]) if profile.name in reference else np.zeros(0)
    d, p = ks_test(sample, values) if len(sample) and len(values) else (math.nan, math.nan)
    hist = Histogram(
        profile.hist_edges, profile.hist_counts, tuple(int(c) for c in profile.hist(values)), True
    )
    return dict(rows=len(values), current=current, ks_statistic=d, ks_pvalue=p, histogram=hist)


def _categorical(profile: CategoricalProfile, column: pd.Series) -> dict[str, Any]:
    values = category_values(column)
    current = profile.bin_counts(values)
    chi2, p = chi_square_test(profile.counts, current) if values else (math.nan, math.nan)
    hist = Histogram(tuple(profile.categories), profile.counts, tuple(int(c) for c in current), False)
    return dict(rows=len(values), current=current, chi2_statistic=chi2, chi2_pvalue=p, histogram=hist)


def _measure(profile: FeatureProfile, reference: pd.DataFrame, column: pd.Series) -> dict[str, Any]:
    """Every figure of one feature except the verdict."""
    figures = (
        _numeric(profile, reference, column)
        if isinstance(profile, NumericProfile)
        else _categorical(profile, column)
    )
    current = figures.pop("current")
    figures.update(psi=psi(profile.counts, current), js=js_distance(profile.counts, current))
    return figures


def _verdict(
    figures: dict[str, Any], p_adjusted: float | None, t: DriftThresholds
) -> tuple[bool | None, str]:
    """(drifted, reason) from the figures and the thresholds (see `_spec`)."""
    if not figures["rows"]:
        return None, "no values in this window"
    magnitude = []
    for key, label, limit in (("psi", "PSI", t.psi), ("js", "JS", t.js), ("ks_statistic", "KS", t.ks)):
        value = figures.get(key)
        if limit is not None and value is not None and not math.isnan(value):
            magnitude.append((label, value, limit))
    large = [f"{label} {value:.3g} >= {limit:g}" for label, value, limit in magnitude if value >= limit]
    small = [f"{label} {value:.3g} < {limit:g}" for label, value, limit in magnitude if value < limit]
    big_enough = bool(large) if magnitude else True
    if t.alpha is None:
        evidence, proof = True, ""
    else:
        evidence = p_adjusted is not None and not math.isnan(p_adjusted) and p_adjusted < t.alpha
        sign = "<" if evidence else ">="
        proof = f"p {_p(p_adjusted)} {sign} {t.alpha:g}" + (
            f" ({t.correction})" if t.correction != "none" else ""
        )
    drifted = evidence and big_enough
    parts = (large if big_enough else small) + ([proof] if proof else [])
    return drifted, ", ".join(parts)


def _p(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3g}"


def _adjust(p_values: list[float], method: str) -> list[float]:
    if method == "none" or not p_values:
        return p_values
    from tritonab.splitter import stats

    return [float(x) for x in stats.adjust(p_values, method)]  # type: ignore[arg-type]


def compare_window(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    spec: DriftSpec | None = None,
    *,
    variant: str | None = None,
    start: float | None = None,
    end: float | None = None,
) -> WindowDrift:
    """Judge one table of current rows against a reference profile.

    Features are the reference's (or `spec.features`) that the current table has;
    a window with fewer than `spec.min_rows` rows is `insufficient` and not judged.
    """
    spec = spec or DriftSpec()
    names = [n for n in (spec.features or profile.features) if n in profile.features and n in current.columns]
    if len(current) < spec.min_rows:
        return WindowDrift(variant, start, end, len(current), "insufficient")
    measured = {n: _measure(profile.features[n], profile.sample, current[n]) for n in names}
    raw = [
        f.get("ks_pvalue", f.get("chi2_pvalue", math.nan)) if f["rows"] else math.nan
        for f in measured.values()
    ]
    adjusted = _adjust([math.nan if p is None else p for p in raw], spec.thresholds.correction)
    features = []
    for (name, figures), p_adj in zip(measured.items(), adjusted):
        drifted, reason = _verdict(figures, p_adj, spec.thresholds)
        features.append(
            FeatureDrift(
                name=name,
                kind=profile.features[name].kind,
                rows=figures["rows"],
                psi=figures["psi"],
                js=figures["js"],
                ks_statistic=figures.get("ks_statistic"),
                ks_pvalue=figures.get("ks_pvalue"),
                chi2_statistic=figures.get("chi2_statistic"),
                chi2_pvalue=figures.get("chi2_pvalue"),
                p_adjusted=p_adj,
                drifted=drifted,
                reason=reason,
                histogram=figures["histogram"],
            )
        )
    domain = _domain(profile, current, names, spec) if spec.domain_classifier.enabled and names else None
    return WindowDrift(variant, start, end, len(current), "ok", tuple(features), domain)


def _domain(
    profile: ReferenceProfile, current: pd.DataFrame, names: Sequence[str], spec: DriftSpec
) -> DomainDrift:
    settings = spec.domain_classifier
    usable = [n for n in names if n in profile.sample.columns]
    result = domain_classifier(profile.sample, current, usable, max_rows=settings.max_rows)
    alpha = spec.thresholds.alpha
    drifted = result.auc >= settings.auc and (alpha is None or result.p_value < alpha)
    return DomainDrift(result.auc, result.p_value, drifted, result.rows_reference, result.rows_current)


# -- two data sets ---------------------------------------------------------------------


def as_profile(reference: ReferenceProfile | TableLike, spec: DriftSpec) -> ReferenceProfile:
    """A profile object, a profile file, or data profiled with every row in its sample."""
    if isinstance(reference, ReferenceProfile):
        return reference
    if isinstance(reference, (str, os.PathLike)) and (Path(reference).is_dir() or is_profile_file(reference)):
        return load_profile(reference)
    return build_profile(reference, categorical=spec.categorical, ignore=spec.ignore, sample_rows=ALL_ROWS)


def _coverage_notes(profile: ReferenceProfile, current: pd.DataFrame, spec: DriftSpec) -> list[str]:
    columns = [c for c in current.columns if c not in (TIME, VARIANT) and c not in spec.ignore]
    missing = [n for n in (spec.features or profile.features) if n not in current.columns]
    extra = [c for c in columns if c not in profile.features]
    notes = []
    if missing:
        notes.append(f"feature(s) of the reference absent from the current data: {missing[:10]}")
    if extra:
        notes.append(f"column(s) not in the reference, not judged: {extra[:10]}")
    return notes


def check_data(
    reference: ReferenceProfile | TableLike, current: TableLike, spec: DriftSpec | None = None
) -> DriftReport:
    """Compare current data with reference data (or a stored reference profile).

    Args:
        reference: a profile (object, `reference.json`, or a version folder holding one)
            or reference data (file, DataFrame, arrays), profiled with all its rows.
        current: the current data (file, DataFrame, arrays).
        spec: thresholds and settings (defaults: `DriftSpec()`).

    Raises:
        DriftError: unreadable data or profile.
    """
    spec = spec or DriftSpec()
    profile = as_profile(reference, spec)
    frame = load_frame(current)
    window = compare_window(profile, frame, spec)
    where = {"reference": _where(reference, profile)}
    return DriftReport(None, where, spec, [window], _coverage_notes(profile, frame, spec))


def _where(reference: Any, profile: ReferenceProfile) -> dict[str, Any]:
    path = str(reference) if isinstance(reference, (str, os.PathLike)) else None
    return {"path": path, "rows": profile.rows, "created": profile.created, "source": profile.source}


# -- payload logs ----------------------------------------------------------------------


def _variant_models(log_dir: Path, experiment: str) -> dict[str, tuple[str, int | None]]:
    """variant -> (model, version) from the spec the router stored beside its logs."""
    from tritonab.splitter.spec import spec_from_json

    stored = log_dir / experiment / "spec.json"
    if not stored.is_file():
        return {}
    try:
        spec = spec_from_json(stored.read_text(encoding="utf-8"))
    except SpecError:
        return {}
    return {v.name: (v.model, v.version) for v in spec.variants}


def _references(
    log_dir: Path,
    experiment: str,
    variants: list[str],
    reference: ReferenceProfile | TableLike | None,
    repository: str | os.PathLike[str] | None,
    spec: DriftSpec,
    notes: list[str],
    strict: bool,
) -> dict[str, tuple[ReferenceProfile, dict[str, Any]]]:
    if reference is not None:
        profile = as_profile(reference, spec)
        return {v: (profile, _where(reference, profile)) for v in variants}
    if repository is None:
        raise DriftError(
            "a drift check on logs needs a reference: pass `reference` (--reference) or `repository`"
        )
    models = _variant_models(log_dir, experiment)
    out = {}
    for v in variants:
        if v not in models:
            raise DriftError(f"variant `{v}` is not in the spec stored with the logs of `{experiment}`")
        model, version = models[v]
        try:
            profile = reference_for(repository, model, version)
        except DriftError as exc:
            if strict:
                raise
            notes.append(f"variant `{v}` not checked: {exc}")
            continue
        resolved = int(version_dir(repository, model, version).name)
        where = {"model": model, "version": resolved, "rows": profile.rows, "created": profile.created}
        out[v] = (profile, where)
    return out


def check_logs(
    log_dir: str | os.PathLike[str],
    experiment: str,
    *,
    variant: str | None = None,
    reference: ReferenceProfile | TableLike | None = None,
    repository: str | os.PathLike[str] | None = None,
    spec: DriftSpec | None = None,
    since: float | None = None,
) -> DriftReport:
    """Judge the experiment's logged payloads, per variant and per window.

    Args:
        log_dir: the log folder.
        experiment: the experiment (router) name.
        variant: only this variant (default: every variant of the stored spec, or seen).
        reference: one reference (profile or data) for every variant; otherwise
            `repository`: the profile stored beside each variant's model version.
        spec: thresholds and settings; `spec.window` splits the log into windows aligned
            on multiples of the window since the epoch (default: one window).
        since: only payloads logged at or after this time (epoch seconds).

    Raises:
        DriftError: no payload log, no reference, an unknown variant.
    """
    spec = spec or DriftSpec()
    folder = Path(log_dir)
    notes: list[str] = []
    models = _variant_models(folder, experiment)
    read = read_payloads(folder, experiment, variants=[variant] if variant else None, since=since)
    notes += read.notes
    seen = sorted(str(v) for v in read.frame[VARIANT].dropna().unique())
    wanted = [variant] if variant else (list(models) or seen)
    refs = _references(
        folder, experiment, wanted, reference, repository, spec, notes, strict=variant is not None
    )
    windows: list[WindowDrift] = []
    for name, (profile, _) in refs.items():
        rows = read.frame[read.frame[VARIANT] == name]
        notes += [f"variant `{name}`: {n}" for n in _coverage_notes(profile, rows, spec)] if len(rows) else []
        windows += _windows(profile, rows, spec, name)
    if not len(read.frame):
        notes.append(
            f"the payload log of `{experiment}` holds no rows" + (" since the given time" if since else "")
        )
    return DriftReport(experiment, {v: w for v, (_, w) in refs.items()}, spec, windows, notes)


def _windows(
    profile: ReferenceProfile, rows: pd.DataFrame, spec: DriftSpec, variant: str
) -> list[WindowDrift]:
    width = spec.window_s
    if not len(rows):
        return [WindowDrift(variant, None, None, 0, "insufficient")]
    if width is None:
        times = rows[TIME]
        return [
            compare_window(
                profile, rows, spec, variant=variant, start=float(times.min()), end=float(times.max())
            )
        ]
    index = np.floor(rows[TIME].to_numpy(dtype=np.float64) / width)
    out = []
    for key in np.unique(index):
        part = rows[index == key]
        out.append(
            compare_window(profile, part, spec, variant=variant, start=key * width, end=(key + 1) * width)
        )
    return out
