"""Reference profiles: what a model's input data looked like, stored beside a model version.

Per numeric feature: count, missing, mean, standard deviation, quantiles, the PSI bins
(edges at the reference's deciles, with the count in each) and an equal-width histogram
for plots. Per categorical feature: the count of each category (the 50 most frequent;
the rest under `__other__`). Plus a random sample of whole rows (default 2,000), which
the KS test and the domain classifier compare with the current data. A reference built
from a data file that holds no more rows than the sample size keeps every row, so its
KS figures are those of the full data.

The profile is one JSON file, `reference.json`, in `DIR/NAME/<version>/`, recorded in
the version's manifest (`attachments.reference`, with its sha256).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tritonab.converters import attach_file, read_manifest
from tritonab.converters._manifest import created_at, sha256_bytes
from tritonab.ensembles import load_model
from tritonab.errors import DriftError, RepositoryError
from tritonab.monitoring.drift._frames import TIME, VARIANT, TableLike, feature_names, load_frame

KIND = "tritonab.reference_profile"
FORMAT = 1
REFERENCE_FILE = "reference.json"
REFERENCE_ROLE = "reference"
PSI_BINS = 10
HIST_BINS = 30
TOP_CATEGORIES = 50
OTHER = "__other__"
SAMPLE_ROWS = 2000
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
FeatureKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class NumericProfile:
    """A numeric feature of the reference.

    `edges` are the PSI bins' inner edges (the reference's deciles, duplicates merged):
    bin i holds values in `[edges[i-1], edges[i])`, the outer bins are open. `counts` is
    the reference rows in each bin. `hist_edges`/`hist_counts` are a plotting histogram.
    """

    name: str
    count: int
    missing: int
    mean: float
    std: float
    quantiles: dict[str, float]
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    hist_edges: tuple[float, ...]
    hist_counts: tuple[int, ...]
    kind: FeatureKind = "numeric"

    def bin_counts(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """Counts of `values` in the PSI bins."""
        index = np.searchsorted(np.asarray(self.edges), values, side="right")
        return np.bincount(index, minlength=len(self.edges) + 1).astype(np.int64)

    def hist(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """Counts of `values` in the plotting histogram (values outside go to the end bins)."""
        edges = np.asarray(self.hist_edges)
        index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        return np.bincount(index, minlength=len(edges) - 1).astype(np.int64)


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical feature of the reference: rows per category (`__other__` for the rest)."""

    name: str
    count: int
    missing: int
    frequencies: dict[str, int]
    kind: FeatureKind = "categorical"

    def bin_counts(self, values: Iterable[Any]) -> NDArray[np.int64]:
        """Counts of `values` per reference category (unknown ones under `__other__`)."""
        known = list(self.frequencies)
        position = {c: i for i, c in enumerate(known)}
        other = len(known) if OTHER not in position else position[OTHER]
        counts = np.zeros(len(known) + (OTHER not in position), dtype=np.int64)
        for value, n in pd.Series(list(values), dtype=object).value_counts().items():
            counts[position.get(str(value), other)] += int(n)
        return counts

    @property
    def categories(self) -> list[str]:
        """The bins' labels, in `bin_counts` order."""
        return list(self.frequencies) + ([] if OTHER in self.frequencies else [OTHER])

    @property
    def counts(self) -> tuple[int, ...]:
        """The reference rows per bin (`categories` order)."""
        return tuple(self.frequencies.values()) + ((0,) if OTHER not in self.frequencies else ())


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    """A reference profile: per-feature summaries and a sample of rows.

    Attributes:
        features: name -> profile, in column order.
        rows: rows the profile was built from.
        sample: a random sample of those rows (all of them when few).
        created: when (UTC, ISO 8601). source: where the data came from.
    """

    features: dict[str, FeatureProfile]
    rows: int
    sample: pd.DataFrame = field(repr=False)
    created: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The profile as JSON text (the `reference.json` format)."""
        document = {
            "kind": KIND,
            "format": FORMAT,
            "created": self.created,
            "rows": self.rows,
            "source": self.source,
            "features": {name: _feature_dict(f) for name, f in self.features.items()},
            "sample": {name: [_plain(v) for v in self.sample[name].tolist()] for name in self.sample.columns},
        }
        return json.dumps(document, indent=1, allow_nan=False) + "\n"


def _plain(value: Any) -> Any:
    """JSON value of one sample cell (NaN and None as null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


def _feature_dict(feature: FeatureProfile) -> dict[str, Any]:
    if isinstance(feature, CategoricalProfile):
        return {
            "kind": feature.kind,
            "count": feature.count,
            "missing": feature.missing,
            "frequencies": feature.frequencies,
        }
    return {
        "kind": feature.kind,
        "count": feature.count,
        "missing": feature.missing,
        "mean": feature.mean,
        "std": feature.std,
        "quantiles": feature.quantiles,
        "edges": list(feature.edges),
        "counts": list(feature.counts),
        "hist_edges": list(feature.hist_edges),
        "hist_counts": list(feature.hist_counts),
    }


# -- building --------------------------------------------------------------------------


def feature_kind(values: pd.Series) -> FeatureKind:
    """Numbers are numeric (booleans are not); anything else is categorical."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "categorical"
    return "numeric"


def numeric_values(values: pd.Series) -> NDArray[np.float64]:
    """The non-missing values of a numeric column as floats."""
    array: NDArray[np.float64] = pd.to_numeric(values, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return array[~np.isnan(array)]


def category_values(values: pd.Series) -> list[str]:
    """The non-missing values of a categorical column as text."""
    return [str(v) for v in values.dropna().tolist()]


def _numeric_profile(name: str, column: pd.Series) -> NumericProfile:
    values = numeric_values(column)
    if not len(values):
        raise DriftError(f"feature `{name}`: no values in the reference")
    deciles = np.quantile(values, np.arange(1, PSI_BINS) / PSI_BINS)
    edges = tuple(float(e) for e in np.unique(deciles))
    lo, hi = float(values.min()), float(values.max())
    hist_edges = np.linspace(lo, hi if hi > lo else lo + 1.0, HIST_BINS + 1)
    profile = NumericProfile(
        name=name,
        count=len(values),
        missing=int(len(column) - len(values)),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        quantiles={f"{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES))},
        edges=edges,
        counts=(),
        hist_edges=tuple(float(e) for e in hist_edges),
        hist_counts=(),
    )
    return dataclasses.replace(
        profile,
        counts=tuple(int(c) for c in profile.bin_counts(values)),
        hist_counts=tuple(int(c) for c in profile.hist(values)),
    )


def _categorical_profile(name: str, column: pd.Series) -> CategoricalProfile:
    values = category_values(column)
    if not values:
        raise DriftError(f"feature `{name}`: no values in the reference")
    counts = pd.Series(values, dtype=object).value_counts()
    top = {str(k): int(v) for k, v in counts.iloc[:TOP_CATEGORIES].items()}
    rest = int(counts.iloc[TOP_CATEGORIES:].sum())
    if rest:
        top[OTHER] = top.get(OTHER, 0) + rest
    return CategoricalProfile(name, len(values), int(len(column) - len(values)), top)


def build_profile(
    data: TableLike,
    *,
    categorical: Sequence[str] = (),
    ignore: Sequence[str] = (),
    sample_rows: int = SAMPLE_ROWS,
    inputs: Sequence[str] | None = None,
    source: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> ReferenceProfile:
    """Profile reference data.

    Args:
        data: a file (CSV, Parquet, JSON Lines, `.npz`, `.npy`), a DataFrame, an array or
            a mapping of input name -> array (see `load_frame`).
        categorical: features to treat as categorical although they hold numbers.
        ignore: columns to leave out (ids, timestamps, labels).
        sample_rows: rows kept for the KS test and the domain classifier (all when fewer).
        inputs: the model's input names, for unnamed arrays.
        source: recorded in the profile (default: the file's path and row count).
        seed: seed of the sample.

    Raises:
        DriftError: unreadable data, an unknown name in `categorical`, a feature
            without values.
    """
    frame = load_frame(data, inputs=inputs)
    frame = frame.drop(columns=[c for c in frame.columns if c in set(ignore) or c in (TIME, VARIANT)])
    unknown = sorted(set(categorical) - set(frame.columns))
    if unknown:
        raise DriftError(
            f"categorical feature(s) {unknown} are not columns of the data: {list(frame.columns)}"
        )
    features: dict[str, FeatureProfile] = {}
    for name in frame.columns:
        column = frame[name]
        kind = "categorical" if name in categorical else feature_kind(column)
        features[str(name)] = (
            _categorical_profile(str(name), column)
            if kind == "categorical"
            else _numeric_profile(str(name), column)
        )
    if sample_rows < len(frame):
        sample = frame.sample(n=sample_rows, random_state=seed).sort_index()
    else:
        sample = frame
    described = dict(source) if source is not None else _describe(data)
    return ReferenceProfile(features, len(frame), sample.reset_index(drop=True), created_at(), described)


def _describe(data: TableLike) -> dict[str, Any]:
    if isinstance(data, (str, os.PathLike)):
        return {"path": str(Path(data).resolve())}
    return {"path": None, "object": type(data).__name__}


# -- reading ---------------------------------------------------------------------------


def _feature_from(name: str, raw: Mapping[str, Any]) -> FeatureProfile:
    if raw["kind"] == "categorical":
        return CategoricalProfile(
            name,
            int(raw["count"]),
            int(raw["missing"]),
            {str(k): int(v) for k, v in raw["frequencies"].items()},
        )
    return NumericProfile(
        name=name,
        count=int(raw["count"]),
        missing=int(raw["missing"]),
        mean=float(raw["mean"]),
        std=float(raw["std"]),
        quantiles={str(k): float(v) for k, v in raw["quantiles"].items()},
        edges=tuple(float(e) for e in raw["edges"]),
        counts=tuple(int(c) for c in raw["counts"]),
        hist_edges=tuple(float(e) for e in raw["hist_edges"]),
        hist_counts=tuple(int(c) for c in raw["hist_counts"]),
    )


def profile_from_json(text: str, *, source: str = "profile") -> ReferenceProfile:
    """Parse `reference.json` text.

    Raises:
        DriftError: not a tritonab reference profile, or a malformed one.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise DriftError(f"{source}: not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise DriftError(f'{source}: not a tritonab reference profile (expected "kind": "{KIND}")')
    if document.get("format") != FORMAT:
        raise DriftError(f"{source}: profile format {document.get('format')!r}, this tritonab reads {FORMAT}")
    try:
        features = {str(n): _feature_from(str(n), raw) for n, raw in document["features"].items()}
        sample = pd.DataFrame(
            {n: pd.Series(v, dtype=_sample_dtype(features.get(n))) for n, v in document["sample"].items()}
        )
        return ReferenceProfile(
            features,
            int(document["rows"]),
            sample,
            str(document.get("created", "")),
            dict(document.get("source") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DriftError(f"{source}: malformed reference profile: {exc!r}") from None


def _sample_dtype(feature: FeatureProfile | None) -> str:
    return "float64" if isinstance(feature, NumericProfile) else "object"


def is_profile_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a reference profile (a JSON object of the profile kind)."""
    source = Path(path)
    if source.suffix.lower() != ".json" or not source.is_file():
        return False
    with open(source, "rb") as handle:
        head = handle.read(256)
    return head.lstrip().startswith(b"{") and KIND.encode() in head


def load_profile(path: str | os.PathLike[str]) -> ReferenceProfile:
    """Read a reference profile file, or the one beside a version folder.

    Raises:
        DriftError: missing or malformed profile.
    """
    source = Path(path)
    if source.is_dir():
        source = source / REFERENCE_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise DriftError(f"reference profile `{source}` cannot be read: {exc.strerror}") from None
    return profile_from_json(text, source=f"`{source}`")


# -- beside a model version ------------------------------------------------------------


def version_dir(repository: str | os.PathLike[str], model: str, version: int | None = None) -> Path:
    """`DIR/NAME/<version>` (the newest version folder when `version` is None or -1, the
    spec's "latest").

    Raises:
        DriftError: no such model or version.
    """
    folder = Path(repository) / model
    versions = (
        sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
        if folder.is_dir()
        else []
    )
    if not versions:
        raise DriftError(f"model `{model}` has no version folder in repository `{repository}`")
    chosen = versions[-1] if version is None or version < 1 else version
    if chosen not in versions:
        raise DriftError(f"model `{model}` has no version {chosen} in `{repository}` (versions: {versions})")
    return folder / str(chosen)


def save_reference(
    repository: str | os.PathLike[str], model: str, profile: ReferenceProfile, *, version: int | None = None
) -> Path:
    """Store `profile` as `reference.json` beside a model version and record it in the manifest.

    Returns:
        The profile file.

    Raises:
        DriftError: no such model or version. ConversionError: an unreadable manifest.
    """
    folder = version_dir(repository, model, version)
    attach_file(folder, REFERENCE_ROLE, REFERENCE_FILE, profile.to_json().encode("utf-8"))
    return folder / REFERENCE_FILE


def reference_for(
    repository: str | os.PathLike[str], model: str, version: int | None = None
) -> ReferenceProfile:
    """The profile stored beside a model version, after checking it against the manifest.

    Raises:
        DriftError: no profile, or one that differs from what the manifest recorded.
    """
    folder = version_dir(repository, model, version)
    path = folder / REFERENCE_FILE
    if not path.is_file():
        raise DriftError(
            f"model `{model}` version {folder.name} has no reference profile: "
            f"`tritonab drift reference --repository {repository} --model {model} --input DATA` makes one"
        )
    data = path.read_bytes()
    try:
        recorded = read_manifest(folder).get("attachments", {}).get(REFERENCE_ROLE, {})
    except (OSError, ValueError):
        recorded = {}
    if recorded.get("sha256") != sha256_bytes(data):
        raise DriftError(f"`{path}` is not the profile its manifest records (changed after it was stored?)")
    return profile_from_json(data.decode("utf-8"), source=f"`{path}`")


def unmatched_features(
    profile: ReferenceProfile, repository: str | os.PathLike[str], model: str
) -> list[str]:
    """The profile's features that name none of the model's inputs (so payload logs will
    never hold them); empty when the model's config cannot be read."""
    try:
        inputs = load_model(Path(repository) / model).inputs
    except RepositoryError:
        return []
    known: set[str] = set()
    open_ended: list[str] = []
    for tensor in inputs:
        if all(d > 0 for d in tensor.dims):
            known.update(feature_names(tensor.name, (1, *tensor.dims)))
        else:
            known.add(tensor.name)
            open_ended.append(f"{tensor.name}[")
    return [n for n in profile.features if n not in known and not n.startswith(tuple(open_ended))]
