"""Atomic writes leave files the umask allows (readable by a server running as another
user) and private files 0600; a converted model is readable by others under umask 022."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tritonab._io import atomic_write_text, current_umask, staged_dir
from tritonab.converters import convert
from tritonab.rollout.state import state_lock


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: os.PathLike[str] | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_umask_is_read_without_changing_it(umask_022):
    assert current_umask() == 0o022
    os.umask(0o027)
    assert current_umask() == 0o027


def test_files_and_folders_follow_the_umask(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_text(tmp_path / "key", "secret", private=True)
    with staged_dir(tmp_path / "folder") as stage:
        (stage / "inside.txt").write_text("y")
    with staged_dir(tmp_path / "secrets", private=True):
        pass
    assert mode(tmp_path / "a.txt") == 0o644 and mode(tmp_path / "key") == 0o600
    assert mode(tmp_path / "folder") == 0o755 and mode(tmp_path / "secrets") == 0o700
    os.umask(0o077)
    atomic_write_text(tmp_path / "b.txt", "x")
    assert mode(tmp_path / "b.txt") == 0o600


def test_a_state_lock_is_private(tmp_path, umask_022):
    with state_lock(tmp_path / "rollout.state.json"):
        assert mode(tmp_path / "rollout.state.json.lock") == 0o600


def test_a_converted_model_is_readable_by_others(tmp_path, umask_022):
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    convert(model, name="m", repository=tmp_path / "repo", sample_input=x)
    entries = sorted((tmp_path / "repo").rglob("*"))
    assert entries
    for entry in entries:
        readable = stat.S_IROTH | (stat.S_IXOTH if entry.is_dir() else 0)
        assert mode(entry) & readable == readable, f"{entry} is {oct(mode(entry))}"
