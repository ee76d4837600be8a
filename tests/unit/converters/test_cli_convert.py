"""`tritonab convert` exit codes and output."""

from __future__ import annotations

import joblib
import numpy as np
import pytest

from tritonab.cli import main


def _main(argv: list[str]) -> int:
    """The `tritonab` command line, as the console script runs it."""
    return main(argv)


@pytest.fixture
def model_file(tmp_path, regressor, diabetes):
    path = tmp_path / "gbr.joblib"
    joblib.dump(regressor, path)
    np.savez(tmp_path / "sample.npz", X=diabetes[0][:64])
    return path


def test_convert_ok_then_version_two(tmp_path, model_file, capsys):
    repo = tmp_path / "repo"
    argv = [
        "convert",
        str(model_file),
        "--name",
        "gbr",
        "--repository",
        str(repo),
        "--sample-input",
        str(tmp_path / "sample.npz"),
        "--max-batch-size",
        "8",
    ]
    assert _main(argv) == 0
    out = capsys.readouterr().out
    assert "variable" in out and "(version 1)" in out
    assert _main(argv) == 0
    assert sorted(p.name for p in (repo / "gbr").iterdir()) == ["1", "2", "config.pbtxt"]
    assert "max_batch_size: 8" in (repo / "gbr" / "config.pbtxt").read_text()


def test_existing_version_exit_1(tmp_path, model_file, capsys):
    repo = tmp_path / "repo"
    base = ["convert", str(model_file), "--name", "gbr", "--repository", str(repo)]
    assert _main(base) == 0
    assert _main([*base, "--version", "1"]) == 1
    assert "already exists: use --force" in capsys.readouterr().err
    assert _main([*base, "--version", "1", "--force"]) == 0


def test_corrupt_source_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04\x95garbage")
    repo = tmp_path / "repo"
    assert _main(["convert", str(bad), "--name", "m", "--repository", str(repo)]) == 1
    assert "bad.pkl`: cannot unpickle the model" in capsys.readouterr().err
    assert not repo.exists()


def test_parity_failure_exit_1(tmp_path, model_file, capsys):
    repo = tmp_path / "repo"
    code = _main(
        ["convert", str(model_file), "--name", "m", "--repository", str(repo), "--atol", "0", "--rtol", "0"]
    )
    assert code == 1
    assert "parity check" in capsys.readouterr().err
    assert not repo.exists()


def test_fp16_and_int8_exclusive(tmp_path, model_file):
    with pytest.raises(SystemExit) as info:
        _main(["convert", str(model_file), "--name", "m", "--repository", str(tmp_path), "--fp16", "--int8"])
    assert info.value.code == 2
