"""`tritonab validate`: every problem, each with its path; exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from tritonab.cli import main
from tritonab.ensembles import build_chain, build_router, validate_repository
from tritonab.ensembles.config import TensorSpec, read_config, set_parameter, write_config
from tritonab.splitter import load_spec_dict

ROOT = Path(__file__).resolve().parents[3]


def messages(repo):
    return [f"{p.path.relative_to(repo)}: {p.message}" for p in validate_repository(repo)]


def test_the_shipped_repository_is_valid(capsys):
    assert validate_repository(ROOT / "model_repository") == []
    assert main(["validate", str(ROOT / "model_repository")]) == 0
    assert "valid" in capsys.readouterr().out


def test_every_problem_is_reported_with_its_path(models, repo, capsys):
    (repo / "broken").mkdir()
    (repo / "broken" / "config.pbtxt").write_text("name: [")
    (repo / "m1" / "1" / "model.onnx").unlink()
    shutil.rmtree(repo / "m2" / "2")
    (repo / "m2" / "2").mkdir()
    (repo / "m2" / "2" / "model.py").write_text("from tritonab.backends.nothing import X\n")
    (repo / "m2" / "2" / "model.onnx").write_bytes(b"")
    models.add(repo, "empty", versions=())
    config = read_config(repo / "empty" / "config.pbtxt")
    config.name = "other"
    write_config(repo / "empty" / "config.pbtxt", config)
    found = messages(repo)
    assert any(m.startswith("broken/config.pbtxt: `") for m in found)
    assert "m1/1: `model.onnx` is missing" in found
    assert "m2/2/model.py: imports `tritonab.backends.nothing`, which does not exist" in found
    assert "empty: has no version folder (1/, 2/, ...)" in found
    assert "empty/config.pbtxt: name `other` differs from its folder `empty`" in found
    assert main(["validate", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "5 problem(s)" in err


def test_ensemble_steps_are_checked(models, repo):
    models.add(
        repo,
        "scaler",
        outputs=(TensorSpec("scaled", mc.TYPE_FP64, (4,)),),
        module="transform",
        files=("transform.json",),
    )
    build_chain("pipeline", ["scaler", "m1"], repo)
    config = read_config(repo / "pipeline" / "config.pbtxt")
    config.ensemble_scheduling.step[1].model_name = "m2"
    config.ensemble_scheduling.step.add().model_name = "ghost"
    write_config(repo / "pipeline" / "config.pbtxt", config)
    found = "\n".join(messages(repo))
    assert "step 1 (`m2`): input `input` is TYPE_FP32 but `scaler__scaled` is TYPE_FP64" in found
    assert "step 2 (`ghost`): unknown model `ghost`" in found


def test_routers_are_checked_against_their_variants(repo):
    spec = load_spec_dict(
        {
            "name": "ab",
            "variants": [
                {"name": "a", "model": "m1", "weight": 0.5},
                {"name": "b", "model": "m2", "weight": 0.5},
            ],
        }
    )
    build_router(spec, repo)
    config = read_config(repo / "ab" / "config.pbtxt")
    config.output[0].dims[0] = 7
    write_config(repo / "ab" / "config.pbtxt", config)
    assert any("do not match its variants" in m for m in messages(repo))
    set_parameter(config, "experiment", spec.to_json().replace('"m2"', '"gone"'))
    write_config(repo / "ab" / "config.pbtxt", config)
    assert any("variants[1].model: unknown model `gone`" in m for m in messages(repo))


def test_a_missing_repository_is_one_problem(tmp_path):
    problems = validate_repository(tmp_path / "nope")
    assert len(problems) == 1 and "is not a folder" in problems[0].message


def test_a_target_flags_backends_it_lacks(tmp_path, capsys):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "model_repository" / "demo_gbt", repo / "demo_gbt")
    assert validate_repository(repo, target="embedded") == []
    config = read_config(repo / "demo_gbt" / "config.pbtxt")
    config.backend = "onnxruntime"  # what `convert --runtime native` writes
    write_config(repo / "demo_gbt" / "config.pbtxt", config)
    (repo / "demo_gbt" / "1" / "model.py").unlink()
    assert validate_repository(repo) == []
    assert validate_repository(repo, target="container") == []
    (problem,) = validate_repository(repo, target="embedded")
    assert "backend `onnxruntime` is not available on the embedded server" in problem.message
    assert main(["validate", str(repo), "--target", "embedded"]) == 1
    assert "not available on the embedded server" in capsys.readouterr().err
