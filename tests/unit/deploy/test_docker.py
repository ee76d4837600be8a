"""The container image's promises, read from `deploy/docker/Dockerfile` with
dockerfile-parse (no container engine here): NVIDIA's Triton 2.51 image, tritonab
installed into its Python, `tritonserver` in explicit model-control mode on the mounted
repository, the ports the manifests use, and an unprivileged user. The package stage is
built for real (a wheel from exactly the files the Dockerfile copies), and the image's
closed list of Python packages is checked against what the backends import."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tritonab.deploy.k8s import MODEL_REPOSITORY, PORTS, RUN_AS

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
REQUIREMENTS = ROOT / "deploy" / "docker" / "requirements.txt"
# NGC's release 24.10 is Triton 2.51, the server of the embedded nvidia-pytriton 0.7 wheel.
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


def stage(parser: DockerfileParser, index: int) -> list[dict]:
    """The instructions of build stage `index` (0 = first FROM)."""
    stages: list[list[dict]] = []
    for item in parser.structure:
        if item["instruction"] == "FROM":
            stages.append([])
        if stages and item["instruction"] != "COMMENT":
            stages[-1].append(item)
    return stages[index]


def instructions(items: list[dict], name: str) -> list[str]:
    return [i["value"] for i in items if i["instruction"] == name]


def test_the_image_is_tritons_2_51_release(dockerfile):
    assert dockerfile.baseimage == TRITON_IMAGE
    lock = (ROOT / "requirements.lock").read_text()
    assert re.search(r"^nvidia-pytriton==0\.7\.", lock, re.M), "the embedded server is no longer Triton 2.51"


def test_triton_runs_as_an_unprivileged_numeric_user(dockerfile):
    final = stage(dockerfile, -1)
    users = instructions(final, "USER")
    assert users, "the image must set USER"
    uid, _, gid = users[-1].partition(":")
    assert int(uid) == RUN_AS and int(gid) == RUN_AS  # the manifests' runAsUser
    assert [u for u in users if u.split(":")[0] in ("0", "root")] == []
    assert any(f"--uid {RUN_AS}" in run for run in instructions(final, "RUN"))


def test_the_entrypoint_is_tritonserver_in_explicit_mode_on_the_mounted_repository(dockerfile):
    [entrypoint] = instructions(stage(dockerfile, -1), "ENTRYPOINT")
    argv = json.loads(entrypoint)  # exec form: signals reach tritonserver, not a shell
    assert Path(argv[0]).name == "tritonserver"
    flags = dict(a.split("=", 1) for a in argv[1:])
    assert flags["--model-repository"] == MODEL_REPOSITORY
    assert flags["--model-control-mode"] == "explicit"
    assert flags["--load-model"] == "*"  # a restarted replica loads the current router config
    assert flags["--strict-readiness"] == "true"
    assert {flags["--http-port"], flags["--grpc-port"], flags["--metrics-port"]} == {
        str(p) for p in PORTS.values()
    }
    assert (int(flags["--http-port"]), int(flags["--grpc-port"]), int(flags["--metrics-port"])) == (
        PORTS["http"],
        PORTS["grpc"],
        PORTS["metrics"],
    )


def test_the_ports_are_exposed(dockerfile):
    exposed = {int(p) for value in instructions(stage(dockerfile, -1), "EXPOSE") for p in value.split()}
    assert exposed == set(PORTS.values())


def test_tritonab_and_its_backend_packages_are_installed_into_the_images_python(dockerfile):
    runs = instructions(stage(dockerfile, -1), "RUN")
    assert any("python3 -m pip install --no-deps -r /tmp/tritonab-requirements.txt" in r for r in runs)
    assert any("python3 -m pip install --no-deps /tmp/wheels/tritonab-" in r for r in runs)
    copies = instructions(stage(dockerfile, -1), "COPY")
    assert "--from=wheel /wheels /tmp/wheels" in copies
    assert "deploy/docker/requirements.txt /tmp/tritonab-requirements.txt" in copies


def _copied_sources(parser: DockerfileParser) -> list[str]:
    sources = []
    for value in instructions(parser.structure, "COPY"):
        parts = [p for p in value.split() if not p.startswith("--")]
        if "--from=" in value:
            continue
        sources += parts[:-1]
    return sources


def test_the_wheel_stage_copies_every_room_the_package_links(dockerfile):
    rooms = {
        os.readlink(link).removeprefix("../").rstrip("/")
        for link in (ROOT / "tritonab").iterdir()
        if link.is_symlink()
    }
    missing = rooms - set(_copied_sources(dockerfile))
    assert not missing, f"the Dockerfile's wheel stage must COPY the rooms {sorted(missing)}"


def test_every_copied_path_exists_and_is_not_ignored(dockerfile):
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "tests"} <= ignored
    for source in _copied_sources(dockerfile):
        assert (ROOT / source).exists(), source
        assert source not in ignored, source


def test_the_wheel_stage_builds_a_package_with_every_room_and_the_alert_rules(dockerfile, tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    for source in _copied_sources(dockerfile):
        if source.startswith("deploy/docker/"):
            continue
        target = context / source
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "bench")
            )
        else:
            shutil.copy(ROOT / source, target)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            "w",
            ".",
        ],
        cwd=context,
        check=True,
        capture_output=True,
    )
    [wheel] = (context / "w").glob("tritonab-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = textwrap.dedent("""
        import tritonab.backends._routing, tritonab.deploy.k8s, tritonab.rollout
        from tritonab.monitoring.alerts import load_rule_groups, rule_files
        assert tritonab.__file__.startswith(SITE), tritonab.__file__
        print(len(rule_files()), len(load_rule_groups()))
    """).replace("SITE", repr(str(site)))
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,  # not the checkout: `python -c` puts the working folder first on sys.path
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    files, groups = map(int, done.stdout.split())
    assert files >= 1 and groups >= 1


# The backends import these top-level modules (besides tritonab and the standard library);
# the distributions that provide them must all be in the image's closed list.
IMPORT_PROBE = textwrap.dedent("""
    import importlib.metadata, json, sys, types
    sys.modules["triton_python_backend_utils"] = types.ModuleType("triton_python_backend_utils")
    before = set(sys.modules)
    import tritonab.backends.router, tritonab.backends.transform, tritonab.backends.onnx_runner
    import onnxruntime  # the ONNX runner imports it when a model initializes
    tops = {m.split(".")[0] for m in set(sys.modules) - before}
    third = sorted(t for t in tops if t not in sys.stdlib_module_names and not t.startswith("_")
                   and t not in ("tritonab", "triton_python_backend_utils")
                   and getattr(sys.modules[t], "__file__", None))  # not Cython's cython_runtime
    owners = importlib.metadata.packages_distributions()
    print(json.dumps({t: owners.get(t, []) for t in third}))
""")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"`{line}` is not pinned"
            pins[_normalise(name)] = version
    return pins


def test_the_images_package_list_covers_every_import_of_the_backends():
    done = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    pins = _requirements()
    for module, distributions in json.loads(done.stdout).items():
        names = {_normalise(d) for d in distributions} | (
            {"onnxruntime-gpu"} if module == "onnxruntime" else set()
        )
        assert names & set(pins), (
            f"`{module}` (from {distributions}) is imported but not in {REQUIREMENTS.name}"
        )


def test_the_images_package_list_is_closed_and_matches_the_lock_where_it_can():
    from importlib.metadata import PackageNotFoundError, distribution

    pins = _requirements()
    lock = {
        _normalise(m.group(1)): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (ROOT / "requirements.lock").read_text(), re.M)
    }
    for name, version in pins.items():
        if name == "onnxruntime-gpu":
            assert version.startswith("1.23.")  # the last release built for the image's Python 3.10
            continue
        if name in lock:
            assert lock[name] == version, f"{name}: image {version}, lock {lock[name]}"
    # Closed: every dependency of a listed package (as installed here) is listed too.
    for name in pins:
        if name == "onnxruntime-gpu":
            continue
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement:
                continue
            dependency = _normalise(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0])
            assert dependency in pins, f"{name} needs {dependency}, which the image does not install"
