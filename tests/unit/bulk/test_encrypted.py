"""Bulk scoring of a model encrypted at rest: the ciphertext is checked against the
manifest, then decrypted in memory where it runs (`--key-file` or
`$TRITONAB_MODEL_KEY_FILE`); without the key, or with another one, it exits 2 naming
the file, and writes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from tritonab.cli import main
from tritonab.security import MODEL_KEY_ENV, generate_key


@pytest.fixture
def encrypted_repo(tmp_path, encrypted_conversion):
    made = encrypted_conversion(tmp_path, "enc", max_batch_size=64)
    assert not list((made.repo / "enc" / "1").glob("*.onnx"))  # ciphertext only
    return made.repo, made.estimator


def _argv(repo, input_folder, out):
    return [
        "score",
        "--repository",
        str(repo),
        "--model",
        "enc",
        "--input",
        str(input_folder),
        "--output",
        str(out),
    ]


def test_scores_with_the_key_and_equals_the_estimator(
    encrypted_repo, input_folder, features, tmp_path, monkeypatch, kit
):
    repo, estimator = encrypted_repo
    monkeypatch.delenv(MODEL_KEY_ENV, raising=False)
    out = tmp_path / "out"
    argv = [*_argv(repo, input_folder, out), "--quiet"]
    assert main([*argv, "--key-file", str(tmp_path / "model.key")]) == 0
    table = kit.read_output(out)
    assert table.num_rows == len(features)
    np.testing.assert_array_equal(table.column("label").to_numpy().reshape(-1), estimator.predict(features))


def test_without_the_key_or_with_another_it_exits_2_naming_the_file(
    encrypted_repo, input_folder, tmp_path, monkeypatch, capsys
):
    repo, _ = encrypted_repo
    monkeypatch.delenv(MODEL_KEY_ENV, raising=False)
    out = tmp_path / "out"
    argv = [*_argv(repo, input_folder, out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "enc/1/model.onnx.enc` is encrypted" in err and MODEL_KEY_ENV in err
    generate_key(tmp_path / "other.key")
    assert main([*argv, "--key-file", str(tmp_path / "other.key")]) == 2
    assert "enc/1/model.onnx.enc" in capsys.readouterr().err
    assert not out.exists() or not list(out.glob("part-*.parquet"))
