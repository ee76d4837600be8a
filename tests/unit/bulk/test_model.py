"""Pinning a repository model for offline scoring: versions as Triton resolves them,
artifacts verified against manifests, ensembles in dependency order, and the models that
cannot run offline refused with the way to score them."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from tritonab.backends import load_transform
from tritonab.bulk import pin_model, repository_models
from tritonab.ensembles import load_model, write_config
from tritonab.errors import BulkError


def test_a_converted_model_pins_to_its_manifest_digest(kit):
    model = pin_model(repository_models(kit.REPOSITORY), "demo_gbt")
    manifest = json.loads((kit.REPOSITORY / "demo_gbt" / "1" / "manifest.json").read_text())
    assert (model.name, model.version, model.kind, model.threads) == ("demo_gbt", 1, "onnx", 1)
    assert model.sha256 == manifest["artifact"]["sha256"]
    assert [(a.path, a.manifest) for a in model.artifacts] == [("demo_gbt/1/model.onnx", True)]
    assert model.identity()["configs"] == {
        "demo_gbt/1": hashlib.sha256(
            (kit.REPOSITORY / "demo_gbt" / "config.pbtxt").read_text().encode()
        ).hexdigest()
    }


def test_an_ensemble_pins_its_steps_and_runs_them_as_triton_does(kit, features):
    model = pin_model(repository_models(kit.REPOSITORY), "demo_logreg_pipeline")
    assert model.kind == "ensemble"
    assert [s.model.name for s in model.steps] == ["demo_scaler", "demo_logreg"]
    assert [(a.path, a.manifest) for a in model.artifacts] == [
        ("demo_scaler/1/transform.json", False),  # no manifest covers it: recorded, not verified
        ("demo_logreg/1/model.onnx", True),
    ]
    lines = "".join(f"{a.path} {a.sha256}\n" for a in model.artifacts)
    assert model.sha256 == hashlib.sha256(lines.encode()).hexdigest()
    outputs = model.load().run({"input": features[:5]})
    scaled = load_transform(kit.REPOSITORY / "demo_scaler" / "1" / "transform.json").apply(features[:5])
    label, probabilities = kit.run_onnx("demo_logreg", scaled)
    assert outputs["label"].shape == (5, 1) and outputs["label"].dtype == np.int64
    np.testing.assert_array_equal(outputs["label"].ravel(), label)
    np.testing.assert_array_equal(outputs["probabilities"], probabilities)


def test_latest_follows_the_version_policy(kit, repo_copy):
    shutil.copytree(repo_copy / "demo_gbt" / "1", repo_copy / "demo_gbt" / "2")
    assert pin_model(repository_models(repo_copy), "demo_gbt").version == 2
    entry = load_model(repo_copy / "demo_gbt")
    entry.config.version_policy.specific.versions[:] = [1]
    write_config(repo_copy / "demo_gbt" / "config.pbtxt", entry.config)
    models = repository_models(repo_copy)
    assert pin_model(models, "demo_gbt").version == 1
    assert pin_model(models, "demo_gbt", 2).version == 2  # an explicit version scores even if not served


def test_a_step_whose_manifest_digest_differs_is_refused(kit, repo_copy):
    manifest_path = repo_copy / "demo_logreg" / "1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["artifact"]["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(
        BulkError, match=r"`demo_logreg` version 1 is not the version its manifest pins.*0000000000"
    ):
        pin_model(repository_models(repo_copy), "demo_logreg_pipeline")


def test_models_that_cannot_run_offline_are_refused_with_the_way_to_score_them(kit, repo_copy):
    models = repository_models(repo_copy)
    with pytest.raises(BulkError, match=r"`demo_ab` is an experiment router.*--experiment demo_ab"):
        pin_model(models, "demo_ab")
    (repo_copy / "demo_gbt" / "1" / "model.py").write_text("class TritonPythonModel:\n    pass\n")
    with pytest.raises(BulkError, match=r"Python-backend code of its own.*--engine triton"):
        pin_model(repository_models(repo_copy), "demo_gbt")
    entry = load_model(repo_copy / "demo_logreg")
    entry.config.backend = ""
    entry.config.platform = "tensorrt_plan"
    write_config(repo_copy / "demo_logreg" / "config.pbtxt", entry.config)
    with pytest.raises(BulkError, match=r"backend `tensorrt_plan`\) cannot run offline.*--engine triton"):
        pin_model(repository_models(repo_copy), "demo_logreg")
    with pytest.raises(BulkError, match=r"unknown model `nope`; the repository has \['demo_ab'"):
        pin_model(models, "nope")


def test_a_served_only_model_is_pinned_for_a_server_and_refused_offline(kit, repo_copy):
    """For the triton engine, custom code and TensorRT plans pin by config and model file."""
    code = repo_copy / "demo_gbt" / "1" / "model.py"
    code.write_text("class TritonPythonModel:\n    pass\n")
    model = pin_model(repository_models(repo_copy), "demo_gbt", served=True)
    assert (model.kind, model.artifact.file, model.artifact.manifest) == ("served", "model.py", False)
    assert model.sha256 == hashlib.sha256(code.read_bytes()).hexdigest()
    with pytest.raises(BulkError, match=r"`demo_gbt` \(model.py\) runs only on a server: .*--engine triton"):
        model.load()
    entry = load_model(repo_copy / "demo_logreg")
    entry.config.backend, entry.config.platform = "", "tensorrt_plan"
    write_config(repo_copy / "demo_logreg" / "config.pbtxt", entry.config)
    plan = pin_model(repository_models(repo_copy), "demo_logreg", served=True)
    assert (plan.kind, plan.artifact) == ("served", None)  # no model.plan here: built on the server
    assert plan.identity()["configs"]["demo_logreg/1"] == plan.config_sha256


def test_a_model_without_batching_is_refused(kit, repo_copy):
    entry = load_model(repo_copy / "demo_gbt")
    entry.config.max_batch_size = 0
    entry.config.ClearField("dynamic_batching")
    write_config(repo_copy / "demo_gbt" / "config.pbtxt", entry.config)
    with pytest.raises(BulkError, match=r"`demo_gbt` does not batch \(max_batch_size 0\)"):
        pin_model(repository_models(repo_copy), "demo_gbt")


def test_the_pinned_model_carries_the_bytes_it_checked(kit, repo_copy):
    """What runs is what was verified: changing the file after pinning changes nothing."""
    models = repository_models(repo_copy)
    model = pin_model(models, "demo_gbt")
    (repo_copy / "demo_gbt" / "1" / "model.onnx").write_bytes(b"not a model any more")
    outputs = model.load().run({"input": np.zeros((2, 30), np.float32)})
    assert outputs["probabilities"].shape == (2, 2)
