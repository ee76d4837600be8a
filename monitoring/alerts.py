"""Prometheus alert rules shipped with tritonab, and their thresholds.

Each file `monitoring/rules/<name>.rules.yaml` is a Prometheus rule file (`groups:`),
checked by `promtool check rules` and tested by `promtool test rules` with
`tests/unit/monitoring/rules/<name>.test.yaml`. Thresholds live in the files as
recording rules named `tritonab:config:<name>` (`expr: vector(<value>)`), so the
alerts stay plain PromQL and a deployment changes numbers, never expressions:

    groups = load_rule_groups(thresholds={"error_rate_max": 0.02, "latency_slo_bucket": 250000})

`latency_slo_bucket` is special: the SLO is "no slower than this bucket of the router's
latency histogram", and its records carry the bucket as the `le` label in both the
spelling the router exports (`250000`) and the one Prometheus 3 stores (`250000.0`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tritonab.backends._routing import LATENCY_BUCKETS_US
from tritonab.errors import MonitoringError

RULES_DIR = Path(__file__).resolve().parent / "rules"
CONFIG_PREFIX = "tritonab:config:"
SLO_BUCKET = "latency_slo_bucket"


def rule_files(folder: str | os.PathLike[str] = RULES_DIR) -> list[Path]:
    """Every `*.rules.yaml` in `folder`, sorted by name."""
    return sorted(Path(folder).glob("*.rules.yaml"))


def read_rule_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rule groups of one Prometheus rule file.

    Raises:
        MonitoringError: unreadable, not YAML, or without a `groups` list.
    """
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MonitoringError(f"rule file `{source}`: {exc}") from exc
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise MonitoringError(f"rule file `{source}`: expected a `groups` list of rule groups")
    return groups


def load_rule_groups(
    folder: str | os.PathLike[str] = RULES_DIR, *, thresholds: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """The rule groups of every rule file in `folder`, in file order, with thresholds set.

    Args:
        folder: where the `*.rules.yaml` files are (default: the ones shipped).
        thresholds: `tritonab:config:<name>` values to set, by `<name>`.

    Raises:
        MonitoringError: a file is unreadable, two files define a group of the same name,
            or a threshold names no config record.
    """
    groups: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in rule_files(folder):
        for group in read_rule_file(path):
            name = str(group.get("name"))
            if name in seen:
                raise MonitoringError(f"rule group `{name}` is defined in `{seen[name]}` and `{path}`")
            seen[name] = path
            groups.append(group)
    return set_thresholds(groups, thresholds or {})


def config_records(groups: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The `tritonab:config:*` recording rules of `groups` (the rule dicts themselves), by
    threshold name."""
    found: dict[str, list[dict[str, Any]]] = {}
    for group in groups:
        for rule in group.get("rules", []):
            record = str(rule.get("record", ""))
            if record.startswith(CONFIG_PREFIX):
                found.setdefault(record.removeprefix(CONFIG_PREFIX), []).append(rule)
    return found


def set_thresholds(
    groups: Sequence[Mapping[str, Any]], thresholds: Mapping[str, float]
) -> list[dict[str, Any]]:
    """A copy of `groups` with the `tritonab:config:<name>` records set to new values.

    Raises:
        MonitoringError: a name has no config record, or the SLO bucket is not one of the
            router's histogram buckets.
    """
    result: list[dict[str, Any]] = copy.deepcopy([dict(g) for g in groups])
    records = config_records(result)
    for name, value in thresholds.items():
        if name not in records:
            raise MonitoringError(f"no threshold `{name}` in the alert rules; there are {sorted(records)}")
        rules = records[name]
        if name == SLO_BUCKET:
            for rule, label in zip(rules, bucket_labels(value)):
                rule["labels"] = {**rule.get("labels", {}), "le": label}
        else:
            for rule in rules:
                rule["expr"] = f"vector({float(value)!r})"
    return result


def bucket_labels(bound_us: float) -> tuple[str, str]:
    """The `le` label of a router histogram bucket as exported (`100000`) and as Prometheus 3
    stores it (`100000.0`; Go's shortest `%g`, so `1e+06` for a second).

    Raises:
        MonitoringError: not one of the router's buckets.
    """
    if bound_us not in LATENCY_BUCKETS_US:
        raise MonitoringError(
            f"latency SLO bucket {bound_us:g} us is not a bucket of the router's histogram "
            f"{list(LATENCY_BUCKETS_US)}"
        )
    exported = str(int(bound_us))
    stored = format(float(bound_us), "g")
    if "." not in stored and "e" not in stored:
        stored += ".0"
    return exported, stored
