"""Feast features for the `feast_lookup` transform step: online at serving, point-in-time
correct offline for training, from the same feature views.

Serving: `FeatureJoin(spec, base)` opens each step's feature store once (the transform
model builds it in `initialize`); `transform(requests)` reads every request's entity
ids (an input tensor, or the `unit_id` parameter), fetches the online features of the
whole batch in one `get_online_features` call per step, and applies the spec to each
request's matrix with those columns joined. A request whose ids are missing, malformed
or unknown to the store fails alone (INVALID_ARG); if the store itself fails, each
request is fetched on its own, so only the requests it fails get an error.

Training: `historical_features(spec, entity_df)` asks Feast's `get_historical_features`
(a point-in-time join: each row gets the values as of its `event_timestamp`) for the
same feature references, and `transform_offline` applies the spec with them: the
columns a model trains on are the columns it is served.

Feast is imported only here, and only when a spec has a `feast_lookup` step (it takes
about a second to import). The embedded default is Feast's local provider (SQLite
online store, file/Parquet offline store); production points the online store at
Redis (`feature_store_yaml(online="redis")`, which needs `feast[redis]`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tritonab.backends._routing import RequestError
from tritonab.backends._transform import FeastLookup, TransformSpec
from tritonab.errors import FeatureStoreError, SpecError


@dataclass(frozen=True)
class TransformRequest:
    """One request to a transform: its matrix, its entity-id tensors and its unit id."""

    matrix: np.ndarray
    entities: Mapping[str, np.ndarray] = field(default_factory=dict)
    unit_id: str | None = None


def resolve(path: str, base: str | os.PathLike[str]) -> Path:
    """`path`, relative to `base` when not absolute."""
    target = Path(path)
    return target if target.is_absolute() else Path(base) / target


def open_store(path: Path) -> Any:
    """A Feast `FeatureStore` configured by the `feature_store.yaml` at `path`.

    Raises:
        FeatureStoreError: Feast is not installed, the file is missing or invalid.
    """
    try:
        from feast import FeatureStore
    except ImportError as exc:
        raise FeatureStoreError(
            f"a `feast_lookup` step needs Feast (pip install 'tritonab[feast]'): {exc}"
        ) from exc
    if not path.is_file():
        raise FeatureStoreError(f"feature store config `{path}` does not exist")
    try:
        return FeatureStore(repo_path=str(path.parent), fs_yaml_file=path)
    except Exception as exc:  # Feast raises its own errors, pydantic's and OSError
        raise FeatureStoreError(f"feature store `{path}`: cannot open: {exc}") from exc


def _column(reference: str) -> str:
    """Feast's full feature name of a `view:feature` reference."""
    view, _, name = reference.partition(":")
    return f"{view}__{name}"


class OnlineFeatures:
    """One lookup step on its (open) feature store: the entity's key type, checked
    feature references, and batched online reads.

    Raises:
        FeatureStoreError: the store has no entity with the step's join key, or no such
            feature view or feature.
    """

    def __init__(self, step: FeastLookup, path: Path, store: Any) -> None:
        self.step, self.path, self.store = step, path, store
        self.columns = [_column(f) for f in step.features]
        self._int_keys = self._key_is_integer()
        self._check_features()

    def _key_is_integer(self) -> bool:
        """Whether the entity's join key is an integer (ids arrive as text)."""
        from feast import ValueType

        try:
            entities = self.store.list_entities()
        except Exception as exc:  # a broken registry
            raise FeatureStoreError(f"feature store `{self.path}`: cannot read the registry: {exc}") from exc
        for entity in entities:
            if entity.join_key == self.step.entity:
                return entity.value_type in (ValueType.INT64, ValueType.INT32)
        known = sorted(e.join_key for e in entities)
        raise FeatureStoreError(
            f"feature store `{self.path}` has no entity with join key `{self.step.entity}` (has {known})"
        )

    def _check_features(self) -> None:
        """Every reference names a feature view of the store and one of its features."""
        for reference in self.step.features:
            view_name, _, name = reference.partition(":")
            try:
                view = self.store.get_feature_view(view_name)
            except Exception:
                raise FeatureStoreError(
                    f"feature store `{self.path}` has no feature view `{view_name}` (for `{reference}`)"
                ) from None
            if name not in {f.name for f in view.features}:
                raise FeatureStoreError(
                    f"feature view `{view_name}` of `{self.path}` has no feature `{name}`"
                )

    def key(self, entity_id: str) -> Any:
        """The id as the entity's key type.

        Raises:
            ValueError: not an integer, for an integer key.
        """
        return int(entity_id) if self._int_keys else entity_id

    def fetch(self, keys: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """The online features of `keys` (one read for the distinct ones).

        Returns:
            `[rows, features]` float64 values (NaN where a value is null), and for each
            row whether the store knows the entity (False: every feature is null).

        Raises:
            FeatureStoreError: the online read failed.
        """
        distinct = list(dict.fromkeys(keys))
        if not distinct:
            return np.zeros((0, len(self.columns))), np.zeros(0, dtype=bool)
        rows = [{self.step.entity: k} for k in distinct]
        try:
            response = self.store.get_online_features(
                features=self.step.features, entity_rows=rows, full_feature_names=True
            ).to_dict()
        except Exception as exc:  # the online store's own errors (SQLite, Redis, ...)
            raise FeatureStoreError(f"feature store `{self.path}`: online read failed: {exc}") from exc
        table = np.array(
            [[math.nan if v is None else float(v) for v in response[c]] for c in self.columns],
            dtype=np.float64,
        ).T.reshape(len(distinct), len(self.columns))
        known = np.array(
            [any(response[c][i] is not None for c in self.columns) for i in range(len(distinct))]
        )
        position = {k: i for i, k in enumerate(distinct)}
        index = np.fromiter((position[k] for k in keys), dtype=np.intp, count=len(keys))
        return table[index], known[index]


class FeatureJoin:
    """The online features of every `feast_lookup` step of a transform, opened once.

    Args:
        spec: the transform spec.
        base: the folder relative `feature_store` paths start from (the version folder).

    Raises:
        FeatureStoreError: a store cannot be opened, or does not have the step's entity
            and features.
    """

    def __init__(self, spec: TransformSpec, base: str | os.PathLike[str]) -> None:
        self.spec = spec
        stores: dict[Path, Any] = {}
        self.online: dict[int, OnlineFeatures] = {}
        for index, step in spec.lookups:
            path = resolve(step.feature_store, base)
            if path not in stores:
                stores[path] = open_store(path)
            self.online[index] = OnlineFeatures(step, path, stores[path])

    def transform(self, requests: Sequence[TransformRequest]) -> list[np.ndarray | RequestError]:
        """Each request's transformed matrix, or its own error."""
        results: dict[int, np.ndarray | RequestError] = {}
        keyed: list[tuple[int, dict[int, list[Any]]]] = []
        for i, request in enumerate(requests):
            keys = self._keys(request)
            if isinstance(keys, RequestError):
                results[i] = keys
            else:
                keyed.append((i, keys))
        fetched = self._fetch([keys for _, keys in keyed])
        for (i, _), features in zip(keyed, fetched):
            results[i] = (
                features if isinstance(features, RequestError) else self._apply(requests[i], features)
            )
        return [results[i] for i in range(len(requests))]

    def _keys(self, request: TransformRequest) -> dict[int, list[Any]] | RequestError:
        """Each lookup step's keys for the request's rows, or why the request is refused."""
        matrix = np.asarray(request.matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.spec.input_width:
            return RequestError(
                f"transform expects [rows, {self.spec.input_width}], got {list(matrix.shape)}", True
            )
        rows = len(matrix)
        keys: dict[int, list[Any]] = {}
        for index, online in self.online.items():
            step = online.step
            if step.entity_input is None:
                if request.unit_id is None:
                    return RequestError(
                        f"request has no `unit_id` parameter: steps[{index}] (feast_lookup) keys "
                        f"`{step.entity}` by it",
                        True,
                    )
                ids = [request.unit_id] * rows
            else:
                tensor = request.entities.get(step.entity_input)
                if tensor is None or np.asarray(tensor).size != rows:
                    return RequestError(
                        f"input `{step.entity_input}` must hold one `{step.entity}` per row", True
                    )
                ids = [_text(v) for v in np.asarray(tensor).reshape(-1)]
            try:
                keys[index] = [online.key(v) for v in ids]
            except ValueError:
                return RequestError(f"`{step.entity}` ids must be integers, got {ids[:5]}", True)
        return keys

    def _fetch(
        self, keyed: list[dict[int, list[Any]]]
    ) -> Sequence[dict[int, tuple[np.ndarray, np.ndarray]] | RequestError]:
        """Every request's features: one read per step for the batch; if the store fails,
        one read per request, so a failure reaches only the requests it hits."""
        if not keyed:
            return []
        try:
            return self._fetch_batch(keyed)
        except FeatureStoreError:
            pass
        out: list[dict[int, tuple[np.ndarray, np.ndarray]] | RequestError] = []
        for keys in keyed:
            try:
                out.append(self._fetch_batch([keys])[0])
            except FeatureStoreError as exc:
                out.append(RequestError(str(exc)))
        return out

    def _fetch_batch(
        self, keyed: list[dict[int, list[Any]]]
    ) -> list[dict[int, tuple[np.ndarray, np.ndarray]]]:
        """One online read per step for every request's rows, cut back per request."""
        out: list[dict[int, tuple[np.ndarray, np.ndarray]]] = [{} for _ in keyed]
        for index, online in self.online.items():
            sizes = [len(k[index]) for k in keyed]
            values, known = online.fetch([key for k in keyed for key in k[index]])
            start = 0
            for j, size in enumerate(sizes):
                out[j][index] = (values[start : start + size], known[start : start + size])
                start += size
        return out

    def _apply(
        self, request: TransformRequest, features: dict[int, tuple[np.ndarray, np.ndarray]]
    ) -> np.ndarray | RequestError:
        """The spec on one request, or the entities the store does not know."""
        for index, (_, known) in features.items():
            step = self.online[index].step
            if step.on_missing == "error" and not known.all():
                ids = self._ids(request, index, known)
                return RequestError(
                    f"no online features for `{step.entity}` {ids} in `{self.online[index].path}`", True
                )
        try:
            return self.spec.apply(request.matrix, features={i: v for i, (v, _) in features.items()})
        except SpecError as exc:
            return RequestError(str(exc), True)

    def _ids(self, request: TransformRequest, index: int, known: np.ndarray) -> list[str]:
        """The unknown ids of a request (at most five), for its error message."""
        step = self.online[index].step
        if step.entity_input is None:
            return [str(request.unit_id)]
        ids = [_text(v) for v in np.asarray(request.entities[step.entity_input]).reshape(-1)]
        return list(dict.fromkeys(i for i, ok in zip(ids, known) if not ok))[:5]


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# -- training: the same features, point-in-time correct ---------------------------------------


def historical_features(
    spec: TransformSpec,
    entity_df: Any,
    *,
    base: str | os.PathLike[str] = ".",
    timestamp: str = "event_timestamp",
) -> dict[int, np.ndarray]:
    """Every lookup step's features for each row of `entity_df`, as of the row's time.

    Args:
        spec: the transform spec.
        entity_df: a pandas DataFrame with each lookup's entity column and `timestamp`.
        base: the folder relative `feature_store` paths start from.
        timestamp: the event-time column.

    Returns:
        Step index -> `[rows, features]` float64 values in `entity_df`'s row order (NaN
        where Feast has no value as of that time), ready for `spec.apply(features=...)`.

    Raises:
        FeatureStoreError: a store cannot be opened or read, or a column is missing.
    """
    import pandas as pd

    out: dict[int, np.ndarray] = {}
    for index, step in spec.lookups:
        path = resolve(step.feature_store, base)
        online = OnlineFeatures(step, path, open_store(path))
        missing = [c for c in (step.entity, timestamp) if c not in entity_df.columns]
        if missing:
            raise FeatureStoreError(f"entity rows lack the column(s) {missing} that steps[{index}] needs")
        rows = pd.DataFrame(
            {
                step.entity: entity_df[step.entity].to_numpy(),
                "event_timestamp": _utc(pd, entity_df[timestamp]).reset_index(drop=True),
            }
        )
        # Feast answers each distinct (entity, time) once: ask for those, join back by key.
        distinct = rows.drop_duplicates(ignore_index=True)
        try:
            job = online.store.get_historical_features(
                entity_df=distinct, features=step.features, full_feature_names=True
            )
            answer = job.to_df()
        except Exception as exc:  # the offline store's own errors
            raise FeatureStoreError(f"feature store `{path}`: historical read failed: {exc}") from exc
        answer["event_timestamp"] = _utc(pd, answer["event_timestamp"])
        answer = answer.drop_duplicates([step.entity, "event_timestamp"])
        frame = rows.merge(answer, on=[step.entity, "event_timestamp"], how="left")
        out[index] = frame[online.columns].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _utc(pd: Any, times: Any) -> Any:
    """Times as UTC nanoseconds, one type on both sides of the join back."""
    return pd.to_datetime(times, utc=True).astype("datetime64[ns, UTC]")


def transform_offline(
    spec: TransformSpec,
    matrix: np.ndarray,
    entity_df: Any,
    *,
    base: str | os.PathLike[str] = ".",
    timestamp: str = "event_timestamp",
) -> np.ndarray:
    """The transform of training rows: `matrix` (the request features) with the lookup
    steps' historical features joined as of each row's time, through the same
    `TransformSpec.apply` that serving runs.

    Raises:
        FeatureStoreError: as for `historical_features`.
        SpecError: `matrix` does not fit the spec, or has another row count.
    """
    if len(matrix) != len(entity_df):
        raise SpecError(f"{len(matrix)} matrix rows for {len(entity_df)} entity rows")
    return spec.apply(matrix, features=historical_features(spec, entity_df, base=base, timestamp=timestamp))


# -- feature_store.yaml -------------------------------------------------------------------------


def feature_store_yaml(
    *,
    project: str,
    registry: str,
    online: Literal["sqlite", "redis"] = "sqlite",
    online_path: str = "online.db",
    redis: str = "localhost:6379",
) -> str:
    """A `feature_store.yaml`: Feast's local provider with a file (Parquet) offline store,
    and a SQLite online store (the embedded default) or Redis (production; needs
    `feast[redis]` where it is served).

    Args:
        project: the Feast project.
        registry: the registry file (relative paths start at the YAML's folder).
        online: `sqlite` or `redis`.
        online_path: the SQLite file.
        redis: Redis `connection_string` (`host:port[,password=...,ssl=true]`).

    Returns:
        The YAML text.
    """
    import yaml

    store: dict[str, Any] = (
        {"type": "sqlite", "path": online_path}
        if online == "sqlite"
        else {"type": "redis", "connection_string": redis}
    )
    document = {
        "project": project,
        "provider": "local",
        "registry": registry,
        "online_store": store,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 2,
    }
    return str(yaml.safe_dump(document, sort_keys=False))
