"""Feast lookups on a real local feature store (SQLite online, Parquet offline): the
features served equal the historical features at the same timestamp, the historical
ones are point-in-time correct (against pandas' as-of join), and a request's lookup
problem fails that request alone."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritonab.backends import (
    FeatureJoin,
    TransformRequest,
    TransformSpec,
    feature_store_yaml,
    historical_features,
    transform_offline,
)
from tritonab.backends._routing import RequestError
from tritonab.errors import FeatureStoreError, SpecError

# The optional extra (`make` installs it, so CI runs these): skipped only when it is
# absent, never because an installed Feast fails to import.
if importlib.util.find_spec("feast") is None:
    pytest.skip("the `feast` extra is not installed", allow_module_level=True)

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
END = START + timedelta(days=6)
FEATURES = ["driver_stats:trips", "driver_stats:rating"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A driver feature view (integer entity ids) over five days of hourly-ish rows,
    applied and materialised up to END."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    root = tmp_path_factory.mktemp("feast")
    rng = np.random.default_rng(4)
    rows = []
    for driver in range(1, 41):
        for day in range(5):
            t = START + timedelta(days=day, hours=int(rng.integers(0, 23)), minutes=int(rng.integers(0, 59)))
            rows.append(
                {
                    "driver_id": driver,
                    "event_timestamp": t,
                    "trips": float(rng.integers(0, 50)),
                    "rating": float(rng.integers(30, 50)) / 10,
                }
            )
    stats = pd.DataFrame(rows)
    stats.to_parquet(root / "stats.parquet")
    (root / "feature_store.yaml").write_text(
        feature_store_yaml(
            project="drivers", registry=str(root / "registry.db"), online_path=str(root / "online.db")
        )
    )
    fs = FeatureStore(repo_path=str(root), fs_yaml_file=root / "feature_store.yaml")
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=timedelta(days=30),
        schema=[Field(name="trips", dtype=Float64), Field(name="rating", dtype=Float64)],
        source=FileSource(path=str(root / "stats.parquet"), timestamp_field="event_timestamp"),
    )
    fs.apply([driver, view])
    fs.materialize(start_date=START - timedelta(days=1), end_date=END)
    return root, stats


def _spec(**lookup) -> TransformSpec:
    step = {
        "op": "feast_lookup",
        "features": FEATURES,
        "entity": "driver_id",
        "entity_input": "driver",
        **lookup,
    }
    impute = {"op": "impute", "values": [0] + [-1] * len(step["features"])}
    return TransformSpec.model_validate({"input_width": 1, "steps": [step, impute]})


def _asof(stats: pd.DataFrame, entity_df: pd.DataFrame) -> np.ndarray:
    """The independent reference: pandas' backward as-of join, in `entity_df`'s order."""
    frame = entity_df.assign(
        order=np.arange(len(entity_df)),
        event_timestamp=entity_df["event_timestamp"].astype("datetime64[ns, UTC]"),
    ).sort_values("event_timestamp")
    joined = pd.merge_asof(frame, stats.sort_values("event_timestamp"), on="event_timestamp", by="driver_id")
    return joined.sort_values("order")[["trips", "rating"]].to_numpy()


def _ids(*ids) -> np.ndarray:
    return np.array([[str(i).encode()] for i in ids], dtype=object)


def test_served_features_equal_the_historical_ones_at_the_same_timestamp(store):
    root, stats = store
    spec = _spec()
    join = FeatureJoin(spec, root)
    sampled = [int(i) for i in np.random.default_rng(0).choice(np.arange(1, 41), size=12, replace=False)]
    x = np.arange(len(sampled), dtype=np.float32).reshape(-1, 1)
    # One batch of three requests, as a dynamic batch would bring them.
    parts = [slice(0, 5), slice(5, 6), slice(6, 12)]
    served = join.transform([TransformRequest(x[p], {"driver": _ids(*sampled[p])}) for p in parts])
    online, known = join.online[0].fetch(sampled)  # the values the served rows were built from
    entity_df = pd.DataFrame({"driver_id": sampled, "event_timestamp": [END] * len(sampled)})
    offline = historical_features(spec, entity_df, base=root)[0]
    assert known.all() and np.array_equal(online, offline)
    assert np.array_equal(offline, _asof(stats, entity_df))
    assert np.array_equal(np.concatenate([s[:, 1:] for s in served]), offline.astype(np.float32))
    # The whole transform agrees too: serving's path and training's path are one `apply`.
    assert np.array_equal(np.concatenate(served), transform_offline(spec, x, entity_df, base=root))


def test_historical_features_are_point_in_time_correct(store):
    root, stats = store
    rng = np.random.default_rng(1)
    entity_df = pd.DataFrame(
        {
            "driver_id": rng.integers(1, 41, 60),
            "event_timestamp": [START + timedelta(hours=float(h)) for h in rng.uniform(30, 140, 60)],
        }
    )
    got = historical_features(_spec(), entity_df, base=root)[0]
    assert np.array_equal(got, _asof(stats, entity_df))
    # Earlier times see earlier values: the join does not leak the latest row.
    at_end = entity_df.assign(event_timestamp=END)  # repeated (driver, time) pairs: Feast answers each once
    latest = historical_features(_spec(), at_end, base=root)[0]
    assert np.array_equal(latest, _asof(stats, at_end))
    assert (got != latest).any()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids=st.lists(st.one_of(st.integers(1, 40), st.just(999)), min_size=1, max_size=12),
    cuts=st.lists(st.integers(1, 11), max_size=4),
)
def test_a_batch_answers_each_request_as_if_it_came_alone(store, ids, cuts):
    """However a dynamic batch groups requests (repeated, unknown ids included), each
    request gets exactly what it gets on its own: the batch's one read is cut back right."""
    root, _ = store
    join = FeatureJoin(_spec(on_missing="nan"), root)
    bounds = [0, *sorted({c for c in cuts if c < len(ids)}), len(ids)]
    requests = [
        TransformRequest(np.arange(a, b, dtype=np.float32).reshape(-1, 1), {"driver": _ids(*ids[a:b])})
        for a, b in zip(bounds, bounds[1:])
    ]
    batched = join.transform(requests)
    alone = [join.transform([r])[0] for r in requests]
    assert len(batched) == len(requests)
    for together, single in zip(batched, alone):
        assert np.array_equal(together, single)


def test_an_unknown_entity_fails_its_request_alone(store):
    root, _ = store
    join = FeatureJoin(_spec(), root)
    x = np.ones((1, 1), dtype=np.float32)
    out = join.transform(
        [
            TransformRequest(x, {"driver": _ids(3)}),
            TransformRequest(np.ones((2, 1), np.float32), {"driver": _ids(4, 999)}),
            TransformRequest(x, {"driver": _ids("abc")}),
            TransformRequest(x, {}),
            TransformRequest(np.ones((1, 3), np.float32), {"driver": _ids(3)}),
        ]
    )
    assert isinstance(out[0], np.ndarray) and out[0].shape == (1, 3)
    assert out[1] == RequestError(
        f"no online features for `driver_id` ['999'] in `{root / 'feature_store.yaml'}`", True
    )
    assert out[2] == RequestError("`driver_id` ids must be integers, got ['abc']", True)
    assert out[3] == RequestError("input `driver` must hold one `driver_id` per row", True)
    assert out[4] == RequestError("transform expects [rows, 1], got [1, 3]", True)
    lenient = FeatureJoin(_spec(on_missing="nan"), root).transform(
        [TransformRequest(x, {"driver": _ids(999)})]
    )
    assert lenient[0].tolist() == [[1.0, -1.0, -1.0]]  # NaN, then imputed


def test_the_unit_id_keys_the_lookup_when_no_input_is_named(store):
    root, stats = store
    join = FeatureJoin(_spec(entity_input=None), root)
    out = join.transform(
        [
            TransformRequest(np.zeros((2, 1), np.float32), unit_id="7"),
            TransformRequest(np.zeros((1, 1), np.float32)),
        ]
    )
    latest = stats[stats.driver_id == 7].sort_values("event_timestamp").iloc[-1]
    assert out[0][:, 1:].tolist() == [[np.float32(latest.trips), np.float32(latest.rating)]] * 2
    assert out[1] == RequestError(
        "request has no `unit_id` parameter: steps[0] (feast_lookup) keys `driver_id` by it", True
    )


def test_a_store_failure_fails_only_the_requests_it_hits(store, monkeypatch):
    root, _ = store
    join = FeatureJoin(_spec(), root)
    online = join.online[0]
    real = online.fetch

    def fetch(keys):
        if 13 in keys:  # one driver's row is on a store shard that is down
            raise FeatureStoreError("feature store `x`: online read failed: disk I/O error")
        return real(keys)

    monkeypatch.setattr(online, "fetch", fetch)
    x = np.ones((1, 1), np.float32)
    out = join.transform(
        [TransformRequest(x, {"driver": _ids(12)}), TransformRequest(x, {"driver": _ids(13)})]
    )
    assert isinstance(out[0], np.ndarray)
    assert out[1] == RequestError("feature store `x`: online read failed: disk I/O error")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feature_store": "nope.yaml"}, r"feature store config `.*nope.yaml` does not exist"),
        ({"features": ["driver_stats:speed"]}, r"feature view `driver_stats` of `.*` has no feature `speed`"),
        ({"features": ["cars:trips"]}, r"has no feature view `cars` \(for `cars:trips`\)"),
        ({"entity": "car_id"}, r"has no entity with join key `car_id` \(has \['driver_id'\]\)"),
    ],
)
def test_a_lookup_that_cannot_be_served_fails_at_load(store, change, message):
    root, _ = store
    with pytest.raises(FeatureStoreError, match=message):
        FeatureJoin(_spec(**change), root)


def test_spec_checks_and_widths():
    spec = _spec()
    assert spec.output_width == 3 and spec.entity_inputs == ["driver"] and [i for i, _ in spec.lookups] == [0]
    with pytest.raises(SpecError, match=r"steps\[0\] \(feast_lookup\) needs its online features"):
        spec.apply(np.ones((1, 1), np.float32))
    with pytest.raises(ValueError, match=r"steps\[0\].features: \['trips'\] are not `feature_view:feature`"):
        TransformSpec.model_validate(
            {"input_width": 1, "steps": [{"op": "feast_lookup", "features": ["trips"], "entity": "d"}]}
        )


def test_feast_is_imported_only_when_a_lookup_is_opened(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from tritonab.backends import TransformSpec
        from tritonab.ensembles import build_transform
        spec = TransformSpec.model_validate({{"input_width": 1, "steps": [
            {{"op": "feast_lookup", "features": ["v:f"], "entity": "e", "entity_input": "e"}}]}})
        build_transform("t", spec, {str(tmp_path)!r}, input_name="x", output_name="y")
        print("feast" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    config = (tmp_path / "t" / "config.pbtxt").read_text()
    assert 'name: "e"' in config and "TYPE_STRING" in config


def test_feature_store_configs(tmp_path):
    import yaml
    from feast.repo_config import RepoConfig

    local = yaml.safe_load(feature_store_yaml(project="p", registry="r.db"))
    assert local["online_store"] == {"type": "sqlite", "path": "online.db"} and local["offline_store"] == {
        "type": "file"
    }
    RepoConfig(**local)  # Feast accepts it
    redis = yaml.safe_load(
        feature_store_yaml(project="p", registry="r.db", online="redis", redis="redis:6379,ssl=true")
    )
    assert redis["online_store"] == {"type": "redis", "connection_string": "redis:6379,ssl=true"}
    assert {k: v for k, v in redis.items() if k != "online_store"} == {
        k: v for k, v in local.items() if k != "online_store"
    }
