"""Runs README.md's code blocks: a pytest plugin, loaded by `make test` as

    python -m pytest -p tests.docs.readme --markdown-docs README.md

Python blocks are collected and run by pytest-markdown-docs (options after the fence's
language: `continuation` continues the block before, `notest` is never run). Bash blocks
are collected here and run with `bash -euo pipefail`, the venv's `bin` first on PATH.

Every block runs in one session work folder: a copy of the checkout's user-facing files
(`model_repository/`, `examples/`, `.venv` as a link to this interpreter's environment),
in README order, so a block that writes files never touches the checkout, and a block
that says it continues another finds that block's files.

Blocks that talk to "a server you started with `tritonab serve`" get the session's own
servers instead, started on free loopback ports the first time a block names one of the
README's documented addresses, and always stopped at the end. The block's text is
rewritten before it runs by this table (and only by it):

    127.0.0.1:8000         -> the session Triton's HTTP `host:port`
    127.0.0.1:8001         -> the session Triton's gRPC `host:port`
    127.0.0.1:8002         -> the session Triton's metrics `host:port`
    http://127.0.0.1:9090  -> the session Prometheus (scraping that Triton every second)

The session Triton is `tritonab serve --repository model_repository --log-dir logs
--model-control-mode explicit` with every model loaded, so in bash blocks the lines that
start that server (a `tritonab serve ...` command, its continuation lines, a trailing
`&`) are not run: the session server stands in for them.

A block that truly needs something absent here (docker, a Kubernetes cluster, a GPU,
remote replicas, or minutes of benchmarking) carries a visible reason in an HTML comment
on the line before its fence, and is reported as skipped with it:

    <!-- readme: skip (needs docker) -->
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# What a reader of the README has in the checkout and the blocks read.
COPIED = ("model_repository", "examples")
SHELL_LANGUAGES = ("bash", "sh", "shell")
SHELL_TIMEOUT_S = 120

_SKIP = re.compile(r"^\s*<!--\s*readme:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)\s*(?P<info>\S*)")
# The documented addresses, in the order they are rewritten.
DOCUMENTED = ("http://127.0.0.1:9090", "127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002")


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file."""

    language: str
    options: frozenset[str]
    source: str
    line: int  # 1-based line of the opening fence
    skip: str | None  # the reason given by a `<!-- readme: skip (...) -->` line


def blocks(text: str) -> list[Block]:
    """Every fenced block of `text`, parsed by markdown-it (as pytest-markdown-docs does)."""
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    found = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type != "fence" or not token.map:
            continue
        info = token.info.split()
        found.append(
            Block(
                language=info[0] if info else "",
                options=frozenset(info[1:]),
                source=token.content,
                line=token.map[0] + 1,
                skip=skip_reason(lines, token.map[0]),
            )
        )
    return found


def skip_reason(lines: list[str], fence_index: int) -> str | None:
    """The reason of a skip comment on the nearest non-blank line before the fence."""
    index = fence_index - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    match = _SKIP.match(lines[index]) if index >= 0 else None
    return match["reason"].strip() if match else None


def substitute(source: str, addresses: dict[str, str]) -> str:
    """`source` with each documented address replaced by the session's."""
    for documented in DOCUMENTED:
        if documented in addresses:
            source = source.replace(documented, addresses[documented])
    return source


def needs_servers(source: str) -> bool:
    """Whether a block names one of the documented addresses."""
    return any(address in source for address in DOCUMENTED)


# What runs instead of a `tritonab serve` command: a check that the session server is
# ready at the documented HTTP address (rewritten to the session's like any other).
SERVER_READY = (
    "python -c \"import urllib.request as r; r.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=10)\""
)


def drop_serve_commands(script: str) -> str:
    """`script` with each `tritonab serve ...` command (continuation lines included)
    commented out and followed by `SERVER_READY`: the session server stands in for it."""
    kept: list[str] = []
    continuing = False
    for line in script.splitlines():
        starts = re.match(r"^\s*(\S*/)?tritonab serve\b", line) is not None
        if starts or continuing:
            continuing = line.rstrip().endswith("\\")
            kept.append("# (the session server stands in) " + line.strip())
            if not continuing:
                kept.append(SERVER_READY)
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


# --- the session: work folder, Triton, Prometheus ----------------------------------------


@pytest.fixture(scope="session")
def readme_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout's user-facing files, where every block runs."""
    work = tmp_path_factory.mktemp("readme")
    for name in COPIED:
        shutil.copytree(ROOT / name, work / name, symlinks=True)
    (work / ".venv").symlink_to(sys.prefix)
    return work


@pytest.fixture(scope="session")
def readme_addresses(readme_workdir: Path) -> Iterator[dict[str, str]]:
    """One explicit-mode Triton on the work folder's repository, logging routers under
    `logs/`, and one Prometheus scraping it; the substitution table to their addresses."""
    from tritonab.deploy.prometheus_server import PrometheusServer
    from tritonab.deploy.server import TritonServer
    from tritonab.monitoring.router_log import LOG_DIR_ENV

    logs = readme_workdir / "logs"
    logs.mkdir(exist_ok=True)
    server = TritonServer(
        readme_workdir / "model_repository",
        model_control_mode="explicit",
        env={LOG_DIR_ENV: str(logs)},
        log_dir=readme_workdir.parent / "readme-triton-log",
    )
    with server, PrometheusServer([server.urls.metrics], interval_s=1.0) as prometheus:
        metrics = server.urls.metrics.removeprefix("http://").removesuffix("/metrics")
        yield {
            "127.0.0.1:8000": server.urls.http,
            "127.0.0.1:8001": server.urls.grpc,
            "127.0.0.1:8002": metrics,
            "http://127.0.0.1:9090": prometheus.url,
        }


def _session_source(request: pytest.FixtureRequest, source: str) -> str:
    """Chdir to the work folder; start the servers if `source` needs them; rewrite it."""
    workdir: Path = request.getfixturevalue("readme_workdir")
    os.chdir(workdir)
    if not needs_servers(source):
        return source
    return substitute(source, request.getfixturevalue("readme_addresses"))


@pytest.fixture(autouse=True)
def _readme_python_block(request: pytest.FixtureRequest) -> Iterator[None]:
    """For pytest-markdown-docs items of README.md: the work folder and the addresses."""
    node = request.node
    definition = getattr(node, "test_definition", None)
    if definition is None or Path(definition.source_path) != README:
        yield
        return
    before = Path.cwd()
    node.test_definition = dataclasses.replace(definition, source=_session_source(request, definition.source))
    try:
        yield
    finally:
        os.chdir(before)


# --- collection ---------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if Path(file_path) == README:
        return ShellBlocks.from_parent(parent, path=Path(file_path))
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run README blocks in README order, and honour `<!-- readme: skip (...) -->` for the
    Python blocks as well."""
    skips = {block.line: block.skip for block in blocks(README.read_text("utf8")) if block.skip}
    positions, lines = [], []
    for index, item in enumerate(items):
        line = _readme_line(item)
        if line is None:
            continue
        positions.append(index)
        lines.append((line, item))
        reason = skips.get(line)
        if reason and not isinstance(item, ShellBlock):
            item.add_marker(pytest.mark.skip(reason=f"README: {reason}"))
    for index, (_, item) in zip(positions, sorted(lines, key=lambda pair: pair[0])):
        items[index] = item


def _readme_line(item: pytest.Item) -> int | None:
    """The opening fence's line of a README item (pytest-markdown-docs' `start_line` is it)."""
    if isinstance(item, (ShellBlock, Excerpt, SpecExcerpt)):
        return item.block.line
    definition = getattr(item, "test_definition", None)
    if definition is None or Path(definition.source_path) != README:
        return None
    return int(definition.start_line)


class ShellBlocks(pytest.File):
    """The bash blocks of README.md, one item each, and its excerpts of shipped files."""

    def collect(self) -> Iterator[pytest.Item]:
        for block in blocks(self.path.read_text("utf8")):
            if block.language in SHELL_LANGUAGES:
                yield ShellBlock.from_parent(self, name=f"[bash][line:{block.line}]", block=block)
            elif block.language == "yaml" and block.source.startswith(SPEC_EXCERPT):
                yield SpecExcerpt.from_parent(self, name=f"[yaml][line:{block.line}]", block=block)
            elif excerpt_of(block) is not None:
                yield Excerpt.from_parent(self, name=f"[{block.language}][line:{block.line}]", block=block)


SPEC_EXCERPT = "# in the experiment spec"


class SpecExcerpt(pytest.Item):
    """A block of experiment-spec fields: with `examples/experiment.yaml`'s other fields,
    it must make a spec that loads."""

    def __init__(self, *, block: Block, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.block = block

    def runtest(self) -> None:
        import yaml

        from tritonab.splitter import load_spec_dict

        spec = yaml.safe_load((ROOT / "examples" / "experiment.yaml").read_text("utf8"))
        spec.update(yaml.safe_load(self.block.source))
        load_spec_dict(spec)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.block.line, self.name


_EXCERPT = re.compile(r"^#\s+(?P<path>[\w./-]+\.\w+)(?P<abridged>\s+\(abridged\))?")


def excerpt_of(block: Block) -> tuple[Path, bool] | None:
    """The shipped file a block quotes (its first line is `# path`, or `# path (abridged)`)
    and whether it is abridged; None for other blocks."""
    match = _EXCERPT.match(block.source)
    if match is None or not (ROOT / match["path"]).is_file():
        return None
    return ROOT / match["path"], match["abridged"] is not None


def excerpt_problem(block: Block, path: Path, abridged: bool) -> str | None:
    """Why `block` is not a true copy of `path`: the whole file, text for text, or
    (abridged) YAML whose every value is the file's (some keys left out)."""
    import yaml

    text = path.read_text("utf8")
    name = path.relative_to(ROOT)
    if not abridged:  # the `# path` line, then the file
        return (
            None
            if block.source.split("\n", 1)[1] == text
            else f"differs from `{name}`: paste the file as it is"
        )
    where = _not_within(yaml.safe_load(block.source), yaml.safe_load(text), "")
    return None if where is None else f"says something `{name}` does not, at `{where or '.'}`"


def _not_within(shown: object, actual: object, where: str) -> str | None:
    """The first path at which `shown` is not `actual` with keys left out, or None."""
    if isinstance(shown, dict) and isinstance(actual, dict):
        for key, value in shown.items():
            if key not in actual:
                return f"{where}.{key}"
            found = _not_within(value, actual[key], f"{where}.{key}")
            if found is not None:
                return found
        return None
    return None if shown == actual else where


class Excerpt(pytest.Item):
    """A block that quotes a shipped file: it must say what the file says."""

    def __init__(self, *, block: Block, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.block = block

    def runtest(self) -> None:
        path, abridged = excerpt_of(self.block) or (ROOT, False)
        problem = excerpt_problem(self.block, path, abridged)
        if problem:
            raise AssertionError(f"README line {self.block.line}: the excerpt {problem}")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.block.line, self.name


class ShellBlock(pytest.Item):
    """One bash block, run with `bash -euo pipefail` in the session work folder."""

    def __init__(self, *, block: Block, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.block = block
        self.script = ""
        if block.skip:
            self.add_marker(pytest.mark.skip(reason=f"README: {block.skip}"))

    def setup(self) -> None:
        from _pytest.fixtures import TopRequest

        self.funcargs: dict[str, Any] = {}
        self._fixtureinfo = self.session._fixturemanager.getfixtureinfo(node=self, func=None, cls=None)
        self.fixturenames = self._fixtureinfo.names_closure
        request = TopRequest(self, _ispytest=True)  # type: ignore[arg-type]
        self.workdir: Path = request.getfixturevalue("readme_workdir")
        self.script = drop_serve_commands(self.block.source)
        if needs_servers(self.script):
            self.script = substitute(self.script, request.getfixturevalue("readme_addresses"))

    def runtest(self) -> None:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        # Its own process group: a timeout ends the block and everything it started.
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", self.script],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=SHELL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            stderr += f"\n(killed after {SHELL_TIMEOUT_S} s)"
        self.add_report_section("call", "stdout", stdout)
        if process.returncode != 0:
            raise ShellBlockFailed(self.script, process.returncode, stdout, stderr)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ShellBlockFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.block.line, self.name


class ShellBlockFailed(Exception):
    """A bash block exited non-zero."""

    def __init__(self, script: str, code: int, stdout: str, stderr: str) -> None:
        super().__init__(
            f"README bash block exited {code}:\n{script}\n--- stdout ---\n{stdout[-4000:]}"
            f"\n--- stderr ---\n{stderr[-4000:]}"
        )
