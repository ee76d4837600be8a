"""`convert --reference`: the drift profile travels in the version's one staged write."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonab.cli import main
from tritonab.converters import convert, verify_manifest
from tritonab.ensembles import validate_repository
from tritonab.errors import DriftError
from tritonab.monitoring.drift import reference_for


def test_convert_with_reference_writes_a_manifested_profile(tmp_path, classifier, cancer):
    X, _ = cancer
    result = convert(classifier, name="churn", repository=tmp_path, sample_input=X[:64], reference=X)
    profile_file = result.version_dir / "reference.json"
    assert profile_file.is_file()
    entry = result.manifest["attachments"]["reference"]
    assert entry["file"] == "reference.json" and entry["bytes"] == profile_file.stat().st_size
    assert verify_manifest(result.version_dir) == []
    profile = reference_for(tmp_path, "churn")
    # an unnamed array takes the graph's input name, one feature per column
    input_name = result.manifest["conversion"]["inputs"][0]
    assert list(profile.features)[:2] == [f"{input_name}[0]", f"{input_name}[1]"]
    assert profile.rows == len(X) and len(profile.sample) == len(X)
    assert profile.features[f"{input_name}[0]"].mean == pytest.approx(X[:, 0].mean())


def test_bad_reference_data_writes_nothing(tmp_path, classifier, cancer, listing):
    X, _ = cancer
    (tmp_path / "repo").mkdir()
    missing = tmp_path / "nope.csv"
    with pytest.raises(DriftError, match="does not exist"):
        convert(classifier, name="m", repository=tmp_path / "repo", sample_input=X[:16], reference=missing)
    assert listing(tmp_path / "repo") == []


def test_cli_reference_and_tampering_is_caught(tmp_path, classifier, cancer, capsys):
    import joblib

    X, _ = cancer
    model, data = tmp_path / "model.joblib", tmp_path / "train.npz"
    joblib.dump(classifier, model)
    np.savez(data, X[:200].astype(np.float32))
    repo = tmp_path / "repo"
    assert (
        main(["convert", str(model), "--name", "m", "--repository", str(repo), "--reference", str(data)]) == 0
    )
    assert "wrote the drift reference profile" in capsys.readouterr().out
    profile = repo / "m" / "1" / "reference.json"
    document = json.loads(profile.read_text())
    assert document["rows"] == 200 and document["kind"] == "tritonab.reference_profile"
    document["rows"] = 201
    profile.write_text(json.dumps(document))
    (problem,) = verify_manifest(repo / "m" / "1")
    assert "reference.json`: sha256" in problem and "tampering" in problem
    assert any("reference.json" in p.message for p in validate_repository(repo))
