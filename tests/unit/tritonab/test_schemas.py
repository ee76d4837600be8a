"""Every user-written format has a JSON Schema, and a commented example that both its
loader and its schema accept."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tritonab.cli import main
from tritonab.schemas import SCHEMAS, schema

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_each_schema_is_valid_json_schema_with_an_example_on_disk(name):
    document = schema(name)
    jsonschema.Draft202012Validator.check_schema(document)
    assert (ROOT / SCHEMAS[name].example).is_file()


@pytest.mark.parametrize(
    ("name", "example", "key"),
    [
        ("experiment", "examples/experiment.yaml", None),
        ("rollout", "examples/rollout.yaml", None),
        ("rollout", "examples/bandit.yaml", None),
        ("transform", "examples/transform.yaml", None),
        ("gate", "examples/gate.yaml", "gate"),
        ("region-policy", "examples/regions.yaml", None),
        ("drift", "examples/drift.yaml", None),
        ("deploy", "examples/deploy.yaml", None),
        ("deploy", "examples/deploy-small.yaml", None),
    ],
)
def test_the_yaml_examples_match_their_schemas(name, example, key):
    data = yaml.safe_load((ROOT / example).read_text())
    jsonschema.validate(data[key] if key else data, schema(name))


def test_the_examples_load_with_their_readers(tmp_path, capsys):
    from tritonab.backends import load_transform
    from tritonab.monitoring.outcomes import parse_outcomes
    from tritonab.perf import load_thresholds
    from tritonab.rollout import load_rollout_spec
    from tritonab.splitter import load_spec

    assert load_spec(ROOT / "examples/experiment.yaml").name == "demo_ab"
    assert load_rollout_spec(ROOT / "examples/rollout.yaml").strategy == "canary"
    assert load_transform(ROOT / "examples/transform.yaml").output_width == 5
    assert len(parse_outcomes(ROOT / "examples/outcomes.csv")) == 4
    assert load_thresholds(ROOT / "examples/gate.yaml").max_error_rate == 0.001
    assert main(["stats", "compare", str(ROOT / "examples/stats.csv"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["comparisons"]) == 3


def test_the_cli_lists_and_writes_schemas(tmp_path, capsys):
    assert main(["schema"]) == 0
    assert "experiment" in capsys.readouterr().out
    assert main(["schema", "experiment", "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["$id"] == "tritonab:experiment"
    assert main(["schema", "nope"]) == 2
    assert "no schema `nope`" in capsys.readouterr().err
