"""Offline experiments: each row scored by the variant the router gives its unit (the
router's own assignment code decides the expected variant), for backfills and backtests."""

from __future__ import annotations

import numpy as np
import pytest

from tritonab.backends import Router
from tritonab.bulk import pin_model, repository_models, score
from tritonab.ensembles import load_model
from tritonab.ensembles.config import get_parameter
from tritonab.errors import BulkError, SpecError
from tritonab.splitter.spec import spec_from_json


def _router(kit) -> Router:
    config = load_model(kit.REPOSITORY / "demo_ab").config
    return Router(spec_from_json(get_parameter(config, "experiment") or ""), ["input"], 64)


def test_each_row_gets_the_routers_variant_and_that_variants_outputs(kit, input_folder, features, tmp_path):
    out = tmp_path / "out"
    result = score(
        kit.REPOSITORY,
        experiment="demo_ab",
        unit_column="user",
        keep=["user"],
        input=input_folder,
        output=out,
    )
    assert [m.name for m in result.models] == ["demo_logreg_pipeline", "demo_gbt"]
    table = kit.read_output(out)
    assert table.column_names == [
        "_row",
        "user",
        "label",
        "probabilities",
        "variant",
        "_model",
        "_version",
        "_sha256",
    ]
    router = _router(kit)
    users = table.column("user").to_pylist()
    row = {"input": np.zeros((1, 30), np.float32)}
    expected = [router.names[router.assign(row, {"unit_id": u}, 1)] for u in users]  # type: ignore[index]
    variants = table.column("variant").to_pylist()
    assert variants == expected
    assert {"control", "treatment"} <= set(variants)
    models = repository_models(kit.REPOSITORY)
    by_variant = {"control": "demo_logreg_pipeline", "treatment": "demo_gbt"}
    for variant, model in by_variant.items():
        rows = np.flatnonzero(np.asarray(variants) == variant)
        reference = pin_model(models, model).load().run({"input": features[rows]})
        np.testing.assert_array_equal(table.column("label").to_numpy()[rows], reference["label"].ravel())
        np.testing.assert_array_equal(kit.probabilities(table)[rows], reference["probabilities"])
        assert set(np.asarray(table.column("_model").to_pylist())[rows]) == {model}
        sha = pin_model(models, model).sha256
        assert set(np.asarray(table.column("_sha256").to_pylist())[rows]) == {sha}


def test_a_spec_file_and_an_integer_unit_column_assign_as_the_router_does(kit, input_folder, tmp_path):
    spec_file = tmp_path / "exp.yaml"
    spec_file.write_text(
        "name: backtest\nsalt: demo_ab-2026-11\nvariants:\n"
        "  - {name: control, model: demo_logreg_pipeline, version: 1, weight: 0.7}\n"
        "  - {name: treatment, model: demo_gbt, version: 1, weight: 0.3}\n"
    )
    out = tmp_path / "out"
    score(kit.REPOSITORY, experiment=spec_file, unit_column="id", keep=["id"], input=input_folder, output=out)
    table = kit.read_output(out)
    from tritonab.splitter import load_spec

    router = Router(load_spec(spec_file), ["input"], 64)
    ids = table.column("id").to_pylist()
    row = {"input": np.zeros((1, 30), np.float32)}
    expected = [router.names[router.assign(row, {"unit_id": str(i)}, 1)] for i in ids]  # type: ignore[index]
    assert table.column("variant").to_pylist() == expected


def test_an_experiment_is_refused_without_units_or_with_a_version(kit, input_folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(BulkError, match="experiment `demo_ab` needs a unit column"):
        score(kit.REPOSITORY, experiment="demo_ab", input=input_folder, output=out)
    with pytest.raises(BulkError, match=r"`version` applies to a model"):
        score(
            kit.REPOSITORY,
            experiment="demo_ab",
            unit_column="user",
            version=1,
            input=input_folder,
            output=out,
        )
    with pytest.raises(
        BulkError, match=r"experiment `nope` is neither a spec file nor a router .*\['demo_ab'\]"
    ):
        score(kit.REPOSITORY, experiment="nope", unit_column="user", input=input_folder, output=out)
    with pytest.raises(BulkError, match=r"column `who` \(unit ids\) is not in the input"):
        score(kit.REPOSITORY, experiment="demo_ab", unit_column="who", input=input_folder, output=out)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvariants:\n  - {name: a, model: missing, weight: 1}\n")
    with pytest.raises(SpecError, match=r"variants\[0\].model: unknown model `missing`"):
        score(kit.REPOSITORY, experiment=bad, unit_column="user", input=input_folder, output=out)
