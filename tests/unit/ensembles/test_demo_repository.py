"""The checked-in `model_repository/` is exactly what `examples/train_demo.py` writes, in any
process: whatever the hash seed and the BLAS/OpenMP thread count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def build(out: Path, seed: str, threads: str) -> dict[str, bytes]:
    threads_env = {k: threads for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {**os.environ, "PYTHONHASHSEED": seed, **threads_env}
    script = str(ROOT / "examples" / "train_demo.py")
    subprocess.run(
        [sys.executable, script, "--repository", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
        env=env,
    )
    return files(out)


def test_rebuilds_in_different_processes_give_the_shipped_bytes(tmp_path):
    shipped = files(ROOT / "model_repository")
    first = build(tmp_path / "a", seed="1", threads="1")
    second = build(tmp_path / "b", seed="2", threads="2")
    assert sorted(first) == sorted(second) == sorted(shipped)
    assert [name for name in shipped if first[name] != second[name]] == []
    assert [name for name in shipped if shipped[name] != first[name]] == []
