"""Locate the `tritonserver` of the `nvidia-pytriton` wheel and lay out its backend folder.

The wheel ships the binary, `libtriton_python.so` and one Python-backend stub per
Python version. Triton looks for the stub beside the backend library, so the
backend folder is copied once to a cache folder with the stub for the running
Python put next to it.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from tritonab._io import staged_dir
from tritonab.errors import ServerError

_STUB = "triton_python_backend_stub"


@dataclass(frozen=True)
class TritonRuntime:
    """Paths of a runnable Triton: binary, backend folder, caches and shared libraries."""

    binary: Path
    backend_dir: Path
    cache_dir: Path
    lib_dir: Path

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` plus the library path and a PATH whose first `python` is this one."""
        env = dict(base)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(self.lib_dir), _libpython_dir(), env.get("LD_LIBRARY_PATH", "")) if p
        )
        # The stub resolves its interpreter (and so site-packages) from PATH.
        env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p)
        return env


def _libpython_dir() -> str:
    """The folder of this interpreter's shared libpython, when it has one ("" otherwise).

    The stub links `libpython3.X.so.1.0` and then loads this interpreter's extension
    modules (`lib-dynload`); found first on the library path, the interpreter's own
    build matches them, where the system's (another 3.X patch release) may not: a
    Python 3.11.7 `_ssl` asks for symbols Debian's 3.11.2 libpython lacks, so `import
    ssl` (and Feast, which needs it) failed inside the stub.
    """
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return ""
    folder, name = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if not folder or not name or not (Path(folder) / name).is_file():
        return ""
    return str(folder)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tritonab"


@lru_cache(maxsize=1)
def find_runtime() -> TritonRuntime:
    """The Triton runtime of the installed `nvidia-pytriton` wheel.

    Raises:
        ServerError: the wheel is missing, or has no stub for this Python.
    """
    try:
        import pytriton
    except ImportError:
        raise ServerError("`nvidia-pytriton` is not installed: pip install nvidia-pytriton") from None
    root = Path(pytriton.__file__).parent / "tritonserver"
    binary = root / "bin" / "tritonserver"
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / pyver / _STUB
    if not binary.is_file():
        raise ServerError(f"`{binary}` is missing from the nvidia-pytriton wheel")
    if not stub.is_file():
        raise ServerError(f"nvidia-pytriton has no Python-backend stub for Python {pyver}")
    lib_dir = root.parent.parent / "nvidia_pytriton.libs"
    version = metadata.version("nvidia-pytriton")
    backend_dir = _cache_root() / f"backends-pytriton{version}-py{pyver}"
    if not (backend_dir / "python" / _STUB).is_file():
        with staged_dir(backend_dir, replace=True) as stage:
            shutil.copytree(
                root / "backends" / "python", stage / "python", ignore=shutil.ignore_patterns("__pycache__")
            )
            shutil.copy2(stub, stage / "python" / _STUB)
    return TritonRuntime(binary=binary, backend_dir=backend_dir, cache_dir=root / "caches", lib_dir=lib_dir)
