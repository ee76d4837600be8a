"""`tritonab score`: the done-when run from the shell, the rerun, and exit code 2 for a
modified artifact or bad input."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from tritonab import bulk
from tritonab.cli import main
from tritonab.cli import score as score_cli


def test_score_writes_parts_and_a_rerun_skips_them(kit, input_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["score", "--repository", str(kit.REPOSITORY), "--model", "demo_gbt", "--input", str(input_folder)]
    argv += ["--output", str(out), "--keep", "id", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "scored 569 of 569 rows with demo_gbt v1 (sha256 532c4cfcd8a1) on the local engine" in printed
    assert "3 part(s) written, 0 finished part(s) skipped" in printed
    assert pq.read_table(out / "part-00000.parquet").column_names[:3] == ["_row", "id", "label"]
    assert main(argv) == 0
    assert "scored 0 of 569 rows" in capsys.readouterr().out
    assert json.loads((out / "_manifest.json").read_text())["run"]["parts_written"] == 3  # not rewritten


def test_a_modified_artifact_exits_2_naming_it(kit, repo_copy, input_folder, tmp_path, capsys):
    model = repo_copy / "demo_gbt" / "1" / "model.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    argv = ["score", "--repository", str(repo_copy), "--model", "demo_gbt", "--input", str(input_folder)]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model `demo_gbt` version 1 is not the version its manifest pins")
    assert "demo_gbt/1/model.onnx`: sha256" in err


def test_feature_lists_and_bad_input_exit_2(kit, input_folder, tmp_path, capsys):
    argv = [
        "score",
        "--repository",
        str(kit.REPOSITORY),
        "--model",
        "demo_gbt",
        "--output",
        str(tmp_path / "o"),
    ]
    assert main([*argv, "--input", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*argv, "--input", str(input_folder), "--features", "input=a,b", "--features", "c"]) == 2
    assert "name the input of every list" in capsys.readouterr().err
    assert main([*argv, "--input", str(input_folder), "--features", "id,id"]) == 2
    assert "takes 30 values per row" in capsys.readouterr().err


def test_the_cli_choices_are_the_bulk_rooms():
    assert score_cli.ENGINES == bulk.ENGINES
    assert score_cli.FORMATS == bulk.FORMATS
    assert score_cli.DEFAULT_BATCH_SIZE == bulk.DEFAULT_BATCH_SIZE
    assert score_cli._features(["f1,f2", "f3"]) == ["f1", "f2", "f3"]
    assert score_cli._features(["a=f1,f2", "b=f3"]) == {"a": ["f1", "f2"], "b": ["f3"]}
