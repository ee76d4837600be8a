"""`tritonab serve`'s at-rest options: each file is loaded before the server starts, and
only paths (never keys) go into the server's environment."""

from __future__ import annotations

import argparse

import pytest

from tritonab.cli.serve import at_rest_env
from tritonab.errors import SecurityError
from tritonab.security import AUDIT_KEY_ENV, LOG_KEY_ENV, MODEL_KEY_ENV, POLICY_ENV, generate_key, write_key


def _args(**values) -> argparse.Namespace:
    fields = ("model_key_file", "log_key_file", "audit_key_file", "region_policy")
    return argparse.Namespace(**{name: values.get(name) for name in fields})


def test_paths_not_keys_reach_the_environment(tmp_path):
    model = generate_key(tmp_path / "m.key")
    generate_key(tmp_path / "l.key")
    generate_key(tmp_path / "a.key", purpose="audit")
    (tmp_path / "p.yaml").write_text("regions:\n  local: {roots: [.]}\n")
    env = at_rest_env(
        _args(
            model_key_file=str(tmp_path / "m.key"),
            log_key_file=str(tmp_path / "l.key"),
            audit_key_file=str(tmp_path / "a.key"),
            region_policy=str(tmp_path / "p.yaml"),
        )
    )
    assert env == {
        MODEL_KEY_ENV: str(tmp_path / "m.key"),
        LOG_KEY_ENV: str(tmp_path / "l.key"),
        AUDIT_KEY_ENV: str(tmp_path / "a.key"),
        POLICY_ENV: str(tmp_path / "p.yaml"),
    }
    assert model.material.hex() not in repr(env)


def test_bad_files_stop_serve_before_it_starts(tmp_path):
    generate_key(tmp_path / "a.key", purpose="audit")
    with pytest.raises(SecurityError, match="purpose `audit`: expected purpose `data`"):
        at_rest_env(_args(model_key_file=str(tmp_path / "a.key")))
    data = generate_key(tmp_path / "d.key")
    write_key(tmp_path / "same.key", data.material, purpose="audit")
    with pytest.raises(SecurityError, match="must be kept apart"):
        at_rest_env(_args(log_key_file=str(tmp_path / "d.key"), audit_key_file=str(tmp_path / "same.key")))
