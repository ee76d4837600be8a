"""JSON Schemas of every file a user writes, generated from the pydantic models that read them.

    from tritonab.schemas import SCHEMAS, schema
    schema("experiment")   # a JSON Schema (draft 2020-12) as a dict

Editors validate and complete YAML against them (`# yaml-language-server: $schema=...`),
and `tritonab schema NAME` prints one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from tritonab.errors import SpecError

DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class SchemaEntry:
    """A user-written format: what it is, an example file, and where its model lives."""

    description: str
    example: str
    target: str  # "module:attribute" of the pydantic model (or type) that reads the file

    def model(self) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


SCHEMAS: dict[str, SchemaEntry] = {
    "experiment": SchemaEntry(
        "an experiment spec: variants, weights, units, logging, success criteria",
        "examples/experiment.yaml",
        "tritonab.splitter.spec:Experiment",
    ),
    "rollout": SchemaEntry(
        "a rollout spec: `strategy: canary` (steps, checks, perf gate, statistics), `bluegreen` "
        "or `bandit` (examples/bandit.yaml)",
        "examples/rollout.yaml",
        "tritonab.rollout.spec:RolloutSpec",
    ),
    "transform": SchemaEntry(
        "a feature transform (`transform.json` of a transform model): steps in order",
        "examples/transform.yaml",
        "tritonab.backends._transform:TransformSpec",
    ),
    "outcome": SchemaEntry(
        "one outcome record (a row of an outcomes CSV, a line of a JSON Lines file)",
        "examples/outcomes.csv",
        "tritonab.monitoring.outcomes:OutcomeRecord",
    ),
    "stats-row": SchemaEntry(
        "one row of sufficient statistics (`tritonab stats compare FILE`)",
        "examples/stats.csv",
        "tritonab.splitter.stats.rows:StatRow",
    ),
    "gate": SchemaEntry(
        "perf gate thresholds (`tritonab perf gate --thresholds FILE`)",
        "examples/gate.yaml",
        "tritonab.perf._gate:GateThresholds",
    ),
    "region-policy": SchemaEntry(
        "a region policy: the storage roots each region may write under (`--region-policy`)",
        "examples/regions.yaml",
        "tritonab.security:RegionPolicy",
    ),
    "deploy": SchemaEntry(
        "a deploy spec rendered to Kubernetes manifests (`tritonab deploy render FILE`)",
        "examples/deploy.yaml",
        "tritonab.deploy.k8s.spec:DeploySpec",
    ),
    "drift": SchemaEntry(
        "drift thresholds and settings (`tritonab drift check --spec FILE`, `tritonab monitor --spec`)",
        "examples/drift.yaml",
        "tritonab.monitoring.drift:DriftSpec",
    ),
}


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of the format `name` (a key of `SCHEMAS`).

    Raises:
        SpecError: an unknown name.
    """
    entry = SCHEMAS.get(name)
    if entry is None:
        raise SpecError(f"no schema `{name}`: expected one of {', '.join(SCHEMAS)}")
    build: Callable[[], dict[str, Any]] = TypeAdapter(entry.model()).json_schema
    document = build()
    return {"$schema": DRAFT, "$id": f"tritonab:{name}", "description": entry.description, **document}
