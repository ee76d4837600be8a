"""The example's Feast objects: one entity (a customer), one feature view of daily
customer statistics read from a Parquet file (Feast's file offline store).

Float64 features: the online store keeps the values it materialises bit for bit, so
served features and historical ones compare exactly.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

VIEW = "customer_stats"
FEATURES = ("tenure_days", "orders_30d", "tickets_30d")
REFERENCES = tuple(f"{VIEW}:{name}" for name in FEATURES)
ENTITY = "customer_id"


def definitions(stats_parquet: Path) -> list:
    """The entity and the feature view over `stats_parquet` (one row per customer and day)."""
    customer = Entity(name="customer", join_keys=[ENTITY], value_type=ValueType.STRING)
    source = FileSource(path=str(stats_parquet), timestamp_field="event_timestamp")
    view = FeatureView(
        name=VIEW,
        entities=[customer],
        ttl=timedelta(days=30),
        schema=[Field(name=name, dtype=Float64) for name in FEATURES],
        source=source,
        online=True,
    )
    return [customer, view]
