"""Atomic file and folder writes: nothing half-written is ever visible.

Files and folders follow the process umask (0644 and 0755 under the usual 022), as
`open` and `mkdir` would make them, so a server running as another user (the non-root
container) can read what tritonab wrote; `private=True` makes them 0600 / 0700 (keys,
state locks). The temporary files and folders that `tempfile` creates are 0600 / 0700
whatever the umask: the mode is set before the rename makes them visible.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it (Linux `/proc`), else by setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: the brief set-and-restore is the only portable way
    os.umask(mask)
    return mask


def file_mode(*, private: bool = False) -> int:
    """The mode a new file gets: 0600 when private, else 0666 less the umask."""
    return 0o600 if private else 0o666 & ~current_umask()


def dir_mode(*, private: bool = False) -> int:
    """The mode a new folder gets: 0700 when private, else 0777 less the umask."""
    return 0o700 if private else 0o777 & ~current_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write `data` to a temporary sibling of `path`, fsync it, then rename over `path`.

    Args:
        path: the file.
        data: its new content.
        private: 0600 (a key) instead of the umask's mode.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, file_mode(private=private))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, private: bool = False) -> None:
    """Text (UTF-8) form of `atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), private=private)


@contextlib.contextmanager
def staged_dir(
    final: str | os.PathLike[str], *, replace: bool = False, private: bool = False
) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success it is renamed to `final`.

    On any exception the temporary folder is removed and `final` is untouched.
    With `replace`, an existing `final` is swapped out only after the new one is
    complete. The folder gets the umask's mode (0700 when `private`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        os.chmod(stage, dir_mode(private=private))
        yield stage
        if final.exists():
            if not replace:
                raise FileExistsError(f"`{final}` already exists")
            old = final.with_name(f".{final.name}.old.{os.getpid()}")
            os.replace(final, old)
            os.replace(stage, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
