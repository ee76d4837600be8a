"""The checked-in `model_repository/` is exactly what `examples/train_demo.py` writes."""

from __future__ import annotations

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


def test_rebuilding_the_demo_repository_gives_no_diff(tmp_path):
    out = tmp_path / "model_repository"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_demo.py"), "--repository", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    shipped, rebuilt = files(ROOT / "model_repository"), files(out)
    assert sorted(rebuilt) == sorted(shipped)
    differing = [name for name in shipped if shipped[name] != rebuilt[name]]
    assert differing == []
