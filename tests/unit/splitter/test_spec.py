"""The experiment spec: parsing, field-path errors, weights."""

from __future__ import annotations

import pytest

from tritonab.errors import SpecError
from tritonab.splitter import load_spec, load_spec_dict
from tritonab.splitter.spec import spec_from_json


def spec(**overrides):
    data = {
        "name": "exp",
        "variants": [
            {"name": "control", "model": "m1", "version": 1, "weight": 0.9},
            {"name": "treatment", "model": "m2", "version": 2, "weight": 0.1},
        ],
    }
    data.update(overrides)
    return data


def test_a_valid_spec_has_defaults():
    experiment = load_spec_dict(spec())
    assert experiment.effective_salt == "exp"
    assert experiment.require_unit is True
    assert experiment.allow_override is False
    assert experiment.weights == {"control": 0.9, "treatment": 0.1}
    assert experiment.shadow == []


def test_round_trip_through_the_router_parameter():
    experiment = load_spec_dict(spec(salt="s1", shadow={"model": "m3", "sample_rate": 0.2}))
    assert spec_from_json(experiment.to_json()) == experiment
    assert experiment.shadow[0].model == "m3"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "variants": [
                    {"name": "a", "model": "m", "weight": 0.5},
                    {"name": "b", "model": "m", "weight": 0.4},
                ]
            },
            r"^experiment spec: variants: weights must sum to 1, got 0.9$",
        ),
        (
            {
                "variants": [
                    {"name": "a", "model": "m", "weight": 0.5},
                    {"name": "a", "model": "m", "weight": 0.5},
                ]
            },
            r"duplicate variant names \['a'\]",
        ),
        (
            {"variants": [{"name": "a", "model": "m", "weight": 1.5}]},
            r"variants\[0\]\.weight: Input should be less than or equal to 1",
        ),
        (
            {"variants": [{"name": "a", "model": "m", "weight": 1, "colour": "red"}]},
            r"variants\[0\]\.colour: Extra inputs are not permitted",
        ),
        (
            {"variants": [{"name": "a", "model": "m", "weight": 1, "version": 0}]},
            r"variants\[0\]\.version: version must be a positive number",
        ),
        ({"variants": []}, r"variants: List should have at least 1 item"),
        ({"name": "bad name!"}, r"name: experiment name `bad name!` must be"),
        ({"shadow": {"model": "m", "sample_rate": 0}}, r"shadow\[0\]\.sample_rate"),
    ],
)
def test_errors_carry_the_field_path(overrides, message):
    with pytest.raises(SpecError, match=message):
        load_spec_dict(spec(**overrides))


def test_load_spec_from_yaml(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: e\nvariants:\n  - {name: a, model: m, weight: 1}\n")
    assert load_spec(path).variants[0].model == "m"


def test_load_spec_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: e\nvariants:\n  - {name: a, model: m, weight: 0.3}\n")
    with pytest.raises(SpecError, match=r"bad.yaml`: variants: weights must sum to 1"):
        load_spec(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")
    path.write_text("- a list\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_spec(path)


def test_with_weights_validates_like_a_fresh_spec():
    experiment = load_spec_dict(spec())
    assert experiment.with_weights({"control": 0.5, "treatment": 0.5}).weights["treatment"] == 0.5
    with pytest.raises(SpecError, match=r"has no variants \['other'\]"):
        experiment.with_weights({"control": 1.0, "other": 0.0})
    with pytest.raises(SpecError, match=r"missing \['treatment'\]"):
        experiment.with_weights({"control": 1.0})
    with pytest.raises(SpecError, match="must sum to 1"):
        experiment.with_weights({"control": 0.5, "treatment": 0.2})


def test_variant_lookup():
    experiment = load_spec_dict(spec())
    assert experiment.variant("treatment").version == 2
    with pytest.raises(SpecError, match="has no variant `nope`"):
        experiment.variant("nope")
