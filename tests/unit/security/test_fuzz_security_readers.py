"""The security room's readers on arbitrary input: a key file, a region policy, a sealed
blob and an encrypted segment either read or raise a `SecurityError`, never anything
else (the CLI then prints one line and exits 2)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritonab.cli import main
from tritonab.errors import SecurityError
from tritonab.security import Key, load_key, load_policy, open_sealed, open_segment

KEY = Key(bytes(range(32)))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=300))
def test_blobs_and_segments(data):
    for reader in (lambda: open_sealed(KEY, data), lambda: open_segment(KEY, data)):
        try:
            reader()
        except SecurityError:
            pass


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_key_files(tmp_path, data):
    path = tmp_path / "k"
    path.write_bytes(data)
    try:
        load_key(path)
    except SecurityError as exc:
        assert f"`{path}`" in str(exc)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=200),
        yaml_values.map(repr),
        st.dictionaries(st.text(max_size=8), yaml_values).map(str),
    )
)
def test_region_policies(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    try:
        load_policy(path)
    except SecurityError as exc:
        assert f"`{path}`" in str(exc)


@pytest.mark.parametrize("content", ["regions: 3\n", "regions:\n  eu: {roots: [a], extra: 1}\n", "{{"])
def test_a_bad_policy_is_exit_2_on_the_command_line(tmp_path, content, capsys):
    (tmp_path / "p.yaml").write_text(content)
    assert main(["logs", "verify-residency", str(tmp_path), "--policy", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `") and "Traceback" not in err
