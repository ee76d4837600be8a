"""Parity comparisons and manifest verification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonab.converters import DEFAULT_TOLERANCES, Tolerance, verify_manifest
from tritonab.converters._manifest import build_manifest, dump_manifest
from tritonab.converters._parity import compare, compare_output, tolerance_for

TOL = Tolerance(atol=1e-4, rtol=1e-3)


def test_numeric_within_and_beyond_tolerance():
    ref = np.array([[1.0, 100.0], [0.0, -2.0]])
    ok = compare_output("y", ref, (ref + np.array([[5e-5, 0.05], [0, 0]])).astype(np.float32), TOL)
    assert ok.ok and ok.max_abs == pytest.approx(0.05, rel=1e-3)
    assert ok.max_rel == pytest.approx(5e-4, rel=1e-2)
    bad = compare_output("y", ref, ref + 1e-3, TOL)
    assert not bad.ok and bad.max_abs == pytest.approx(1e-3)


def test_shape_column_vector_matches_flat():
    assert compare_output("v", np.arange(4.0), np.arange(4.0).reshape(4, 1), TOL).ok


def test_shape_mismatch_fails():
    out = compare_output("v", np.zeros((4, 2)), np.zeros((4, 3)), TOL)
    assert not out.ok and "shape [4, 3] != source [4, 2]" in out.note


def test_labels_exact_with_mismatch_rate():
    ref = np.array([0, 1, 1, 0])
    got = np.array([0, 1, 0, 0])
    assert compare_output("label", ref, got, TOL).mismatch_rate == 0.25
    assert not compare_output("label", ref, got, TOL).ok
    assert compare_output("label", ref, got, Tolerance(0, 0, max_mismatch=0.25)).ok


def test_string_labels_compare_as_text():
    ref = np.array(["a", "b"])
    got = np.array([b"a", b"b"], dtype=object)
    assert compare_output("label", ref, got, TOL).ok


def test_nan_in_both_is_equal():
    ref = np.array([np.nan, 1.0])
    assert compare_output("y", ref, ref.copy(), TOL).ok
    assert not compare_output("y", ref, np.array([0.0, 1.0]), TOL).ok


def test_missing_output_and_table():
    report = compare({"a": np.zeros(3), "b": np.zeros(3)}, {"a": np.zeros(3)}, TOL, rows=3, data="sample")
    assert not report.ok
    table = report.table()
    assert "b" in table and "not produced" in table and "3 rows of sample data" in table
    assert report.to_dict()["outputs"][1]["mode"] == "missing"


def test_default_tolerances_per_precision():
    assert DEFAULT_TOLERANCES["fp32"].atol < DEFAULT_TOLERANCES["fp16"].atol < DEFAULT_TOLERANCES["int8"].atol
    assert tolerance_for("fp16", rtol=0.5) == Tolerance(1e-2, 0.5, 0.01)


@pytest.fixture
def version_dir(tmp_path):
    folder = tmp_path / "m" / "1"
    folder.mkdir(parents=True)
    data = b"onnx bytes"
    (folder / "model.onnx").write_bytes(data)
    manifest = build_manifest(
        name="m",
        version=1,
        artifact="model.onnx",
        artifact_bytes=data,
        source={"kind": "onnx"},
        conversion={},
        parity={"ok": True},
    )
    (folder / "manifest.json").write_bytes(dump_manifest(manifest))
    return folder


def test_manifest_ok(version_dir):
    assert verify_manifest(version_dir) == []


def test_manifest_tampering(version_dir):
    (version_dir / "model.onnx").write_bytes(b"other bytes")
    (problem,) = verify_manifest(version_dir)
    assert "model.onnx`: sha256" in problem and "tampering" in problem


def test_manifest_missing_artifact(version_dir):
    (version_dir / "model.onnx").unlink()
    assert verify_manifest(version_dir) == [
        f"`{version_dir / 'model.onnx'}`: artifact named by the manifest is missing"
    ]


def test_manifest_unreadable(version_dir):
    (version_dir / "manifest.json").write_text("{not json")
    (problem,) = verify_manifest(version_dir)
    assert problem.startswith(f"`{version_dir / 'manifest.json'}`: unreadable manifest")


def test_manifest_missing_and_incomplete(version_dir):
    (version_dir / "manifest.json").write_text(json.dumps({"format": 1}))
    assert "lacks `artifact`, `source`, `created`" in verify_manifest(version_dir)[0]
    (version_dir / "manifest.json").unlink()
    assert verify_manifest(version_dir) == [f"`{version_dir / 'manifest.json'}`: missing manifest"]


def test_manifest_artifact_outside_folder(version_dir):
    manifest = json.loads((version_dir / "manifest.json").read_text())
    manifest["artifact"]["file"] = "../evil.onnx"
    (version_dir / "manifest.json").write_text(json.dumps(manifest))
    assert "must be a file name in the folder" in verify_manifest(version_dir)[0]
