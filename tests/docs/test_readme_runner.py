"""The README runner's own parts (tests/docs/readme.py), without a server: what it
collects, skips, rewrites and compares. `make test` runs the README itself with it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).with_name("readme.py")
_SPEC = importlib.util.spec_from_file_location("readme_runner", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
readme = importlib.util.module_from_spec(_SPEC)
sys.modules["readme_runner"] = readme
_SPEC.loader.exec_module(readme)

TEXT = """# Title

```bash
echo one
```

<!-- readme: skip (needs docker) -->

```bash
docker build .
```

```python continuation
print(2)
```
"""


def test_blocks_have_language_options_line_and_skip_reason() -> None:
    found = readme.blocks(TEXT)
    assert [(b.language, b.line, b.skip) for b in found] == [
        ("bash", 3, None),
        ("bash", 9, "needs docker"),
        ("python", 13, None),
    ]
    assert found[2].options == frozenset({"continuation"})
    assert found[1].source == "docker build .\n"


def test_substitute_rewrites_only_the_documented_addresses() -> None:
    table = {
        "127.0.0.1:8000": "127.0.0.1:41000",
        "127.0.0.1:8001": "127.0.0.1:41001",
        "127.0.0.1:8002": "127.0.0.1:41002",
        "http://127.0.0.1:9090": "http://127.0.0.1:42000",
    }
    source = "a 127.0.0.1:8001 b http://127.0.0.1:8002/metrics c http://127.0.0.1:9090 d 10.0.0.1:8001"
    assert readme.substitute(source, table) == (
        "a 127.0.0.1:41001 b http://127.0.0.1:41002/metrics c http://127.0.0.1:42000 d 10.0.0.1:8001"
    )
    assert readme.needs_servers(source)
    assert not readme.needs_servers("tritonab stats srm --counts 1,2")


def test_serve_commands_become_a_readiness_check_of_the_session_server() -> None:
    script = "tritonab serve --repository r \\\n    --log-dir logs &\ntritonab experiment show x\n"
    out = readme.drop_serve_commands(script).splitlines()
    assert out[0].startswith("# (the session server stands in) tritonab serve")
    assert out[1].startswith("# (the session server stands in) --log-dir logs")
    assert out[2] == readme.SERVER_READY
    assert out[3] == "tritonab experiment show x"


def test_a_changed_excerpt_of_a_shipped_file_is_found() -> None:
    path = readme.ROOT / "examples" / "experiment.yaml"
    text = path.read_text("utf8")
    whole = readme.Block("yaml", frozenset(), "# examples/experiment.yaml\n" + text, 1, None)
    assert readme.excerpt_of(whole) == (path, False)
    assert readme.excerpt_problem(whole, path, False) is None
    changed = readme.Block("yaml", frozenset(), whole.source.replace("0.5", "0.4", 1), 1, None)
    assert "differs" in readme.excerpt_problem(changed, path, False)


def test_an_abridged_excerpt_may_leave_keys_out_but_not_change_them() -> None:
    path = readme.ROOT / "examples" / "deploy.yaml"
    good = readme.Block(
        "yaml", frozenset(), "# examples/deploy.yaml (abridged)\nreplicas: {min: 2}\n", 1, None
    )
    assert readme.excerpt_problem(good, path, True) is None
    bad = readme.Block(
        "yaml", frozenset(), "# examples/deploy.yaml (abridged)\nreplicas: {min: 3}\n", 1, None
    )
    assert (
        readme.excerpt_problem(bad, path, True)
        == "says something `examples/deploy.yaml` does not, at `.replicas.min`"
    )


def test_every_skip_in_the_readme_gives_its_reason() -> None:
    skipped = [b for b in readme.blocks(readme.README.read_text("utf8")) if b.skip is not None]
    assert skipped, "the README marks the blocks that need docker, a cluster or a GPU"
    assert all(b.skip.startswith("needs ") or "`make" in b.skip or "benchmarks" in b.skip for b in skipped)


@pytest.mark.parametrize("outcome", ["passes", "fails"])
def test_the_runner_runs_bash_blocks_and_reports_a_failing_one(tmp_path: Path, outcome: str) -> None:
    """A README with one bash block, run by the plugin in a pytest of its own."""
    command = "true" if outcome == "passes" else "false"
    (tmp_path / "README.md").write_text(f"```bash\necho hello\n{command}\n```\n")
    (tmp_path / "model_repository").mkdir()
    (tmp_path / "examples").mkdir()
    plugin = tmp_path / "readme_plugin.py"
    plugin.write_text(
        _PATH.read_text("utf8").replace(
            "ROOT = Path(__file__).resolve().parents[2]", f"ROOT = Path({str(tmp_path)!r})"
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "readme_plugin", "-p", "no:cacheprovider", "README.md"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    expected = "1 passed" if outcome == "passes" else "1 failed"
    assert expected in result.stdout, result.stdout + result.stderr
