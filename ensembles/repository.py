"""Read a Triton model repository: models, their configs, versions and signatures."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

from tritonab.ensembles.config import ModelConfig, TensorSpec, get_parameter, io_specs, read_config
from tritonab.errors import RepositoryError

CONFIG_FILE = "config.pbtxt"
ROUTER_PARAMETER = "experiment"

# The file Triton looks for in a version folder, per backend or platform.
DEFAULT_MODEL_FILES = {
    "python": "model.py",
    "onnxruntime": "model.onnx",
    "onnxruntime_onnx": "model.onnx",
    "tensorrt_plan": "model.plan",
    "tensorrt": "model.plan",
    "pytorch": "model.pt",
    "pytorch_libtorch": "model.pt",
    "tensorflow_savedmodel": "model.savedmodel",
    "openvino": "model.xml",
}


# Files a tritonab Python backend reads from its version folder: (config parameter, default).
BACKEND_FILES = {
    "tritonab.backends.onnx_runner": ("onnx_file", "model.onnx"),
    "tritonab.backends.transform": ("transform_file", "transform.json"),
}


@dataclass(frozen=True)
class ModelEntry:
    """One model folder of a repository."""

    name: str
    path: Path
    config: ModelConfig
    versions: tuple[int, ...]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return io_specs(self.config.input)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return io_specs(self.config.output)

    @property
    def kind(self) -> str:
        """`router`, `ensemble`, or the backend/platform name."""
        if self.config.platform == "ensemble":
            return "ensemble"
        if self.config.backend == "python" and get_parameter(self.config, ROUTER_PARAMETER):
            return "router"
        return self.config.backend or self.config.platform or "unknown"

    @property
    def model_file(self) -> str | None:
        """The file each version folder must hold (None for ensembles)."""
        if self.config.platform == "ensemble":
            return None
        if self.config.default_model_filename:
            return self.config.default_model_filename
        return DEFAULT_MODEL_FILES.get(self.config.backend or self.config.platform)

    def version_dir(self, version: int) -> Path:
        return self.path / str(version)

    def has_version(self, version: int) -> bool:
        """`version == -1` means the latest, which exists when any version does."""
        return bool(self.versions) if version == -1 else version in self.versions

    def served_versions(self) -> tuple[int, ...]:
        """The versions Triton loads under the config's `version_policy` (default: the latest)."""
        policy = self.config.version_policy
        kind = policy.WhichOneof("policy_choice")
        if kind == "all":
            return self.versions
        if kind == "specific":
            return tuple(v for v in self.versions if v in set(policy.specific.versions))
        count = policy.latest.num_versions if kind == "latest" else 1
        return self.versions[-max(1, count) :] if self.versions else ()

    def resolve_version(self, version: int) -> int:
        """The version a request for `version` reaches: `-1` is the highest served version.

        Raises:
            RepositoryError: no such version folder (or none served for `-1`).
        """
        if version == -1:
            served = self.served_versions()
            if not served:
                raise RepositoryError(f"model `{self.name}` has no version its version_policy serves")
            return served[-1]
        if version not in self.versions:
            raise RepositoryError(f"model `{self.name}` has no version {version} (has {list(self.versions)})")
        return version

    def backend_module(self, version: int) -> str | None:
        """The `tritonab.*` module a Python-backend version's `model.py` shim re-exports its
        model from (`tritonab.backends.onnx_runner`, ...); None for other backends or code.

        Raises:
            RepositoryError: the `model.py` does not parse.
        """
        if self.config.backend != "python":
            return None
        path = self.version_dir(version) / (self.model_file or "model.py")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:
            raise RepositoryError(f"`{path}`: cannot read the model's shim: {exc}") from None
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tritonab."):
                return node.module
        return None

    def backend_file(self, module: str) -> str:
        """The file a tritonab backend `module` reads from the version folder (its config
        parameter, or the default name)."""
        key, default = BACKEND_FILES[module]
        return get_parameter(self.config, key, default) or default


def version_folders(model_dir: Path) -> tuple[int, ...]:
    """Numeric sub-folders of a model folder, ascending (Triton ignores the others)."""
    found = []
    for child in model_dir.iterdir():
        if child.is_dir() and child.name.isdigit() and int(child.name) > 0:
            found.append(int(child.name))
    return tuple(sorted(found))


def model_dirs(repository: str | os.PathLike[str]) -> list[Path]:
    """Folders of a repository that Triton would treat as models (hidden ones skipped)."""
    root = Path(repository)
    if not root.is_dir():
        raise RepositoryError(f"model repository `{root}` is not a folder")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_model(model_dir: str | os.PathLike[str]) -> ModelEntry:
    """Read one model folder.

    Raises:
        RepositoryError: no `config.pbtxt`, or it does not parse.
    """
    model_dir = Path(model_dir)
    config_path = model_dir / CONFIG_FILE
    if not config_path.is_file():
        raise RepositoryError(f"`{config_path}` is missing")
    config = read_config(config_path)
    return ModelEntry(model_dir.name, model_dir, config, version_folders(model_dir))


def load_repository(repository: str | os.PathLike[str]) -> dict[str, ModelEntry]:
    """Every model of a repository by name.

    Raises:
        RepositoryError: the first unreadable model (use `validate` to see them all).
    """
    return {p.name: load_model(p) for p in model_dirs(repository)}


def signature_mismatches(
    expected: tuple[TensorSpec, ...], actual: tuple[TensorSpec, ...], what: str
) -> list[str]:
    """Differences between two tensor lists, by name: missing, extra, dtype or dims."""
    problems = []
    left = {t.name: t for t in expected}
    right = {t.name: t for t in actual}
    for name in sorted(left.keys() - right.keys()):
        problems.append(f"{what} `{name}` is missing")
    for name in sorted(right.keys() - left.keys()):
        problems.append(f"{what} `{name}` is not in the others")
    for name in sorted(left.keys() & right.keys()):
        a, b = left[name], right[name]
        if a.data_type != b.data_type or a.dims != b.dims:
            problems.append(f"{what} differs: expected {a.describe()}, got {b.describe()}")
    return problems
