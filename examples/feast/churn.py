"""Feast features in a Triton ensemble: train on point-in-time features, materialise them,
serve them joined to each request, and score.

    .venv/bin/python examples/feast/churn.py [--customers 300] [--workdir DIR]
        [--repository DIR --triton HOST:PORT]   # a running explicit-mode server instead

1. data: daily statistics per customer (Parquet) and churn labels at random times, each
   drawn from the statistics as they were at that time;
2. feature store: Feast's local provider (SQLite online store, Parquet offline store)
   in WORKDIR/feature_repo;
3. training: the transform (`feast_lookup` of three features by `customer_id`, then
   `impute`) applied to each label's request feature with Feast's historical features
   as of the label's time (`transform_offline`: point-in-time correct), a logistic
   regression fitted on the result and converted to ONNX;
4. materialise: the online store gets each customer's latest statistics;
5. serve: the ensemble `churn` = `churn_features` (the same transform, reading the
   ids from its input `customer_id`) -> `churn_model` (a lookup without `entity_input`
   keys the ids by the request's `unit_id` parameter instead);
6. score: every test customer through Triton: the features served are the historical
   ones at the materialisation time, so the served probabilities equal the offline
   ones; then the AUC on labels drawn after the materialisation.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from features import ENTITY, FEATURES, REFERENCES, definitions  # noqa: E402

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAYS = 10
END = START + timedelta(days=DAYS)
MODELS = ("churn", "churn_features", "churn_model")  # loading the ensemble loads the other two


def _churn_probability(stats: pd.DataFrame, cart_value: np.ndarray) -> np.ndarray:
    """The true model: long tenure and many orders keep customers, tickets lose them."""
    z = (
        2.5
        - 0.008 * stats["tenure_days"].to_numpy()
        - 0.6 * stats["orders_30d"].to_numpy()
        + 1.2 * stats["tickets_30d"].to_numpy()
        - 0.01 * cart_value
    )
    return 1.0 / (1.0 + np.exp(-z))


def make_data(workdir: Path, customers: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily statistics (written to Parquet), training labels, and test labels at END."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:04d}" for i in range(customers)]
    tenure0 = rng.integers(10, 500, customers)
    order_rate, ticket_rate = rng.gamma(2.0, 1.5, customers), rng.gamma(1.0, 0.6, customers)
    rows = []
    for day in range(DAYS):
        moment = [START + timedelta(days=day, hours=int(h)) for h in rng.integers(0, 20, customers)]
        orders = rng.poisson(order_rate)
        tickets = rng.poisson(ticket_rate)
        for i, customer in enumerate(ids):
            stats = (float(tenure0[i] + day), float(orders[i]), float(tickets[i]))
            rows.append({ENTITY: customer, "event_timestamp": moment[i], **dict(zip(FEATURES, stats))})
    stats = pd.DataFrame(rows).sort_values("event_timestamp", kind="stable")
    folder = workdir / "data"
    folder.mkdir(parents=True, exist_ok=True)
    stats.to_parquet(folder / "customer_stats.parquet")

    def labels(times: list[datetime]) -> pd.DataFrame:
        frame = pd.DataFrame({ENTITY: ids * (len(times) // customers), "event_timestamp": times})
        frame["cart_value"] = rng.gamma(2.0, 20.0, len(frame)).round(2)
        # The truth uses the statistics as they were at the label's time.
        frame["order"] = np.arange(len(frame))
        asof = pd.merge_asof(
            frame.sort_values("event_timestamp"), stats, on="event_timestamp", by=ENTITY, direction="backward"
        ).sort_values("order")
        frame = frame.drop(columns="order")
        frame["churned"] = (
            rng.random(len(frame)) < _churn_probability(asof, frame["cart_value"].to_numpy())
        ).astype(int)
        return frame

    train_times = [
        START + timedelta(days=1) + timedelta(seconds=float(s))
        for s in rng.uniform(0, (DAYS - 1) * 86400, 3 * customers)
    ]
    train = labels(train_times)
    test = labels([END] * customers)
    return train, test


def create_store(workdir: Path) -> Path:
    """Feast's local provider in WORKDIR/feature_repo, with the example's definitions applied."""
    from feast import FeatureStore

    from tritonab.backends import feature_store_yaml

    repo = workdir / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    config = repo / "feature_store.yaml"
    config.write_text(
        feature_store_yaml(
            project="churn",
            registry=str(repo / "registry.db"),
            online="sqlite",
            online_path=str(repo / "online.db"),
        )
    )
    FeatureStore(repo_path=str(repo), fs_yaml_file=config).apply(
        definitions(workdir / "data" / "customer_stats.parquet")
    )
    return config


def lookup(entity_input: str | None = ENTITY) -> dict:
    """The `feast_lookup` step: the three features by customer id (unknown ids get NaN)."""
    return {
        "op": "feast_lookup",
        "features": list(REFERENCES),
        "entity": ENTITY,
        "entity_input": entity_input,
        "on_missing": "nan",
    }


def train(config: Path, train_labels: pd.DataFrame, repository: Path):
    """Point-in-time training set, a fitted model, and the served repository entries."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tritonab.backends import TransformSpec, historical_features
    from tritonab.converters import convert
    from tritonab.ensembles import build_chain, build_transform

    request = train_labels[["cart_value"]].to_numpy(np.float32)
    raw = TransformSpec.model_validate({"input_width": 1, "steps": [lookup()]})
    joined = raw.apply(request, features=historical_features(raw, train_labels, base=config.parent))
    means = [float(v) for v in np.nanmean(joined, axis=0)]
    spec = TransformSpec.model_validate(
        {"input_width": 1, "steps": [lookup(), {"op": "impute", "values": means}]}
    )
    x = spec.apply(request, features=historical_features(spec, train_labels, base=config.parent))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, train_labels["churned"])
    convert(model, name="churn_model", repository=repository, sample_input=x, max_batch_size=64, force=True)
    files = {"feature_store.yaml": config}
    build_transform(
        "churn_features", spec, repository, input_name="cart_value", output_name="features", files=files
    )
    build_chain("churn", ["churn_features", "churn_model"], repository)
    return spec, model


def materialize(config: Path) -> None:
    """Each customer's latest statistics up to END into the SQLite online store."""
    from feast import FeatureStore

    FeatureStore(repo_path=str(config.parent), fs_yaml_file=config).materialize(
        start_date=START, end_date=END
    )


def score(url: str, test: pd.DataFrame, spec, model, config: Path) -> dict:
    """Every test customer through Triton, against the offline prediction at END."""
    from sklearn.metrics import roc_auc_score

    from tritonab.backends import transform_offline
    from tritonab.client import ExperimentClient

    request = test[["cart_value"]].to_numpy(np.float32)
    offline = model.predict_proba(transform_offline(spec, request, test, base=config.parent))[:, 1]
    served = []
    with ExperimentClient(url) as client:
        for start in range(0, len(test), 32):
            part = test.iloc[start : start + 32]
            inputs = {
                "cart_value": part[["cart_value"]].to_numpy(np.float32),
                "customer_id": part[[ENTITY]].to_numpy(dtype=object).astype(bytes),
            }
            served.append(client.infer("churn", inputs).outputs["probabilities"][:, 1])
    probabilities = np.concatenate(served)
    return {
        "customers": len(test),
        "max_abs_difference": float(np.abs(probabilities - offline).max()),
        "auc": float(roc_auc_score(test["churned"], probabilities)),
        "served": probabilities,
    }


def build(workdir: Path, repository: Path, customers: int):
    """Steps 1-5 without a server: data, store, training, entries, materialisation."""
    train_labels, test = make_data(workdir, customers)
    config = create_store(workdir)
    spec, model = train(config, train_labels, repository)
    materialize(config)
    return test, spec, model, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument(
        "--workdir", type=Path, help="where the data and the feature store go (default: a temp dir)"
    )
    parser.add_argument("--repository", type=Path, help="write the models here (default: WORKDIR/models)")
    parser.add_argument("--triton", help="a running server (explicit model control) to load the models on")
    args = parser.parse_args(argv)
    # Absolute: Feast resolves the registry path against the feature repository folder.
    workdir = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="tritonab-feast-"))
    repository = args.repository or workdir / "models"
    try:
        test, spec, model, config = build(workdir, repository, args.customers)
        if args.triton:
            from tritonab.deploy.control import ModelControl

            with ModelControl(args.triton) as control:
                control.load("churn")
                try:
                    result = score(args.triton, test, spec, model, config)
                finally:
                    for name in MODELS:
                        control.unload(name)
        else:
            from tritonab.deploy.server import TritonServer

            with TritonServer(repository) as server:
                result = score(server.urls.grpc, test, spec, model, config)
    finally:
        if not args.workdir:  # a temporary folder: never left behind, also on failure
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"trained on {args.customers * 3} labels with point-in-time features; materialised to {END:%Y-%m-%d}"
    )
    print(f"served {result['customers']} customers through `churn` (feast_lookup -> impute -> model)")
    print(f"served vs offline probability: max |difference| {result['max_abs_difference']:.2e}")
    print(f"AUC on labels drawn after the materialisation: {result['auc']:.3f}")
    return 0 if result["max_abs_difference"] < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
