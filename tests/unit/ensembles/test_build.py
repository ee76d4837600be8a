"""Building routers and ensembles from specs, with errors that carry the field path."""

from __future__ import annotations

import json

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.ensembles import build_chain, build_router, load_model, validate_repository
from tritonab.ensembles.config import TensorSpec, get_parameter
from tritonab.errors import SpecError
from tritonab.splitter import load_spec_dict

FEATURES = TensorSpec("input", mc.TYPE_FP32, (4,))
LABEL = TensorSpec("label", mc.TYPE_INT64, (1,))
PROBS = TensorSpec("probabilities", mc.TYPE_FP32, (2,))


def experiment(**overrides):
    data = {
        "name": "ab",
        "variants": [
            {"name": "control", "model": "m1", "version": 1, "weight": 0.5},
            {"name": "treatment", "model": "m2", "version": 2, "weight": 0.5},
        ],
    }
    data.update(overrides)
    return load_spec_dict(data)


def test_router_config_follows_the_variants(repo):
    path = build_router(experiment(unit_input="user"), repo)
    router = load_model(path)
    assert router.kind == "router"
    assert [t.name for t in router.inputs] == ["input", "user"]
    assert router.config.input[1].data_type == mc.TYPE_STRING
    assert router.config.input[1].optional
    assert [t.name for t in router.outputs] == ["label", "probabilities", "AB_VARIANT"]
    assert router.config.max_batch_size == 16
    assert router.config.HasField("dynamic_batching")
    stored = json.loads(get_parameter(router.config, "experiment"))
    assert stored["variants"][1]["model"] == "m2"
    assert (
        (path / "1" / "model.py")
        .read_text()
        .startswith("from tritonab.backends.router import TritonPythonModel")
    )
    assert validate_repository(repo) == []


def test_rebuilding_gives_the_same_bytes(repo):
    path = build_router(experiment(), repo)
    first = (path / "config.pbtxt").read_bytes()
    build_router(experiment(), repo)
    assert (path / "config.pbtxt").read_bytes() == first


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "variants": [
                    {"name": "a", "model": "m1", "weight": 0.5},
                    {"name": "b", "model": "nope", "weight": 0.5},
                ]
            },
            r"variants\[1\]\.model: unknown model `nope`",
        ),
        (
            {"variants": [{"name": "a", "model": "m1", "version": 3, "weight": 1}]},
            r"variants\[0\]\.version: model `m1` has no version 3 \(has \[1\]\)",
        ),
        ({"max_batch_size": 64}, "exceeds the variants' smallest max_batch_size 16"),
        ({"shadow": {"model": "ghost"}}, r"shadow\[0\]\.model: unknown model `ghost`"),
        ({"unit_input": "input"}, "unit_input: `input` clashes with a variant input"),
    ],
)
def test_spec_errors_name_the_field(repo, overrides, message):
    with pytest.raises(SpecError, match=message):
        build_router(experiment(**overrides), repo)
    assert not (repo / "ab").exists()


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        (
            (TensorSpec("input", mc.TYPE_FP64, (4,)),),
            (LABEL, PROBS),
            r"input differs: expected input: TYPE_FP32\[4\], got input: TYPE_FP64\[4\]",
        ),
        ((TensorSpec("input", mc.TYPE_FP32, (5,)),), (LABEL, PROBS), r"TYPE_FP32\[5\]"),
        ((TensorSpec("other", mc.TYPE_FP32, (4,)),), (LABEL, PROBS), "input `input` is missing"),
        ((FEATURES,), (LABEL,), "output `probabilities` is missing"),
    ],
)
def test_variants_with_different_signatures_are_refused(models, repo, inputs, outputs, message):
    models.add(repo, "odd", inputs, outputs)
    spec = experiment(
        variants=[{"name": "a", "model": "m1", "weight": 0.5}, {"name": "b", "model": "odd", "weight": 0.5}]
    )
    with pytest.raises(SpecError, match=message):
        build_router(spec, repo)


def test_non_batching_variants_get_a_non_batching_router(models, repo):
    models.add(repo, "flat1", max_batch_size=0)
    models.add(repo, "flat2", max_batch_size=0)
    spec = experiment(
        variants=[
            {"name": "a", "model": "flat1", "weight": 0.5},
            {"name": "b", "model": "flat2", "weight": 0.5},
        ],
        unit_input="user",
    )
    router = load_model(build_router(spec, repo))
    assert router.config.max_batch_size == 0
    assert not router.config.HasField("dynamic_batching")  # Triton batches only with max_batch_size >= 1
    assert [(t.name, t.dims) for t in router.outputs][-1] == ("AB_VARIANT", (1,))
    assert [(t.name, t.dims) for t in router.inputs] == [("input", (4,)), ("user", (1,))]
    assert validate_repository(repo) == []


def test_mixed_batching_and_non_batching_variants_are_refused_naming_them(models, repo):
    models.add(repo, "flat", max_batch_size=0)
    spec = experiment(
        variants=[{"name": "a", "model": "m1", "weight": 0.5}, {"name": "b", "model": "flat", "weight": 0.5}]
    )
    with pytest.raises(
        SpecError,
        match=r"variants: batching and non-batching models cannot share a router: "
        r"`m1` \(max_batch_size 16\), `flat` \(max_batch_size 0\)",
    ):
        build_router(spec, repo)
    assert not (repo / "ab").exists()


def test_a_batching_shadow_cannot_mirror_non_batching_variants(models, repo):
    models.add(repo, "flat", max_batch_size=0)
    spec = experiment(variants=[{"name": "a", "model": "flat", "weight": 1}], shadow={"model": "m1"})
    with pytest.raises(SpecError, match=r"`flat` \(max_batch_size 0\), `m1` \(max_batch_size 16\)"):
        build_router(spec, repo)


def test_a_non_batching_router_refuses_a_max_batch_size(models, repo):
    models.add(repo, "flat", max_batch_size=0)
    spec = experiment(variants=[{"name": "a", "model": "flat", "weight": 1}], max_batch_size=4)
    with pytest.raises(SpecError, match=r"max_batch_size: the variants do not batch"):
        build_router(spec, repo)


def test_validate_flags_a_router_whose_batching_no_longer_fits_its_variants(models, repo):
    build_router(experiment(), repo)
    models.add(repo, "m1_flat", max_batch_size=0)
    for name in ("m1", "m2"):  # the variants become non-batching under the router's feet
        (repo / name / "config.pbtxt").write_text(
            (repo / "m1_flat" / "config.pbtxt").read_text().replace("m1_flat", name)
        )
    (repo / "m2" / "2").mkdir(exist_ok=True)
    problems = [p.message for p in validate_repository(repo)]
    assert any("router max_batch_size 16 does not fit its variants'" in p for p in problems), problems


def test_chain_feeds_outputs_to_inputs_by_position(models, repo):
    models.add(
        repo,
        "scaler",
        (FEATURES,),
        (TensorSpec("scaled", mc.TYPE_FP32, (4,)),),
        module="transform",
        files=("transform.json",),
    )
    path = build_chain("pipeline", ["scaler", "m1"], repo)
    steps = load_model(path).config.ensemble_scheduling.step
    assert dict(steps[0].output_map) == {"scaled": "scaler__scaled"}
    assert dict(steps[1].input_map) == {"input": "scaler__scaled"}
    assert (path / "1").is_dir()
    assert validate_repository(repo) == []
    with pytest.raises(SpecError, match=r"unknown models \['ghost'\]"):
        build_chain("bad", ["scaler", "ghost"], repo)


def test_cli_transform_and_chain(models, repo, tmp_path, capsys):
    from tritonab.cli import main

    spec = tmp_path / "transform.json"
    spec.write_text('{"input_width": 4, "steps": [{"op": "clip", "low": -3, "high": 3}]}')
    assert (
        main(["transform", "clip4", "--spec", str(spec), "--repository", str(repo), "--output-name", "input"])
        == 0
    )
    assert "wrote transform `clip4` (4 -> 4 columns)" in capsys.readouterr().out
    assert main(["chain", "clipped_m1", "clip4", "m1", "--repository", str(repo)]) == 0
    assert "clip4 -> m1" in capsys.readouterr().out
    assert validate_repository(repo) == []
    spec.write_text('{"input_width": 0, "steps": []}')
    assert main(["transform", "bad", "--spec", str(spec), "--repository", str(repo)]) == 2  # bad input
    assert "input_width: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert not (repo / "bad").exists()


def test_cli_build_names_the_mixed_models_and_exits_2(models, repo, tmp_path, capsys):
    from tritonab.cli import main

    models.add(repo, "flat", max_batch_size=0)
    spec = tmp_path / "mixed.yaml"
    spec.write_text(
        "name: ab\nvariants:\n"
        "  - {name: a, model: m1, weight: 0.5}\n"
        "  - {name: b, model: flat, weight: 0.5}\n"
    )
    assert main(["build", str(spec), "--repository", str(repo)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: experiment `ab`:")
    assert "`m1` (max_batch_size 16), `flat` (max_batch_size 0)" in err
    assert not (repo / "ab").exists()
    models.add(repo, "flat2", max_batch_size=0)
    spec.write_text(spec.read_text().replace("model: m1", "model: flat2"))
    assert main(["build", str(spec), "--repository", str(repo)]) == 0
    assert load_model(repo / "ab").config.max_batch_size == 0
