"""The perf_analyzer wrapper: find a real binary, run it with `-f`, parse its CSV.

The PyPI package `perf-analyzer` is an empty placeholder, so a `perf_analyzer`
found on PATH is used only when it is a regular executable file that is either
an ELF binary (NVIDIA's SDK build) or a script with a `#!` line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tritonab.errors import PerfError
from tritonab.perf._records import PerfRecord, read_perf_analyzer_csv
from tritonab.perf._target import split_model_spec

_TIMEOUT_FLOOR_S = 120.0


def find_perf_analyzer(path: str | None = None) -> Path | None:
    """The `perf_analyzer` executable on PATH, or None when there is no real one.

    Args:
        path: a search path instead of `$PATH`.

    Returns:
        Its absolute path, or None.
    """
    found = shutil.which("perf_analyzer", path=path)
    if found is None:
        return None
    candidate = Path(found).resolve()
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        return None
    try:
        with open(candidate, "rb") as handle:
            magic = handle.read(4)
    except OSError:
        return None
    return candidate if magic == b"\x7fELF" or magic.startswith(b"#!") else None


def _range(levels: tuple[float, ...], integer: bool) -> str:
    """`START:END:STEP` covering `levels` (an arithmetic sweep)."""
    fmt = (lambda v: str(int(v))) if integer else (lambda v: f"{v:g}")
    step = levels[1] - levels[0] if len(levels) > 1 else 1
    return f"{fmt(levels[0])}:{fmt(levels[-1])}:{fmt(step)}"


def perf_analyzer_command(
    binary: str | os.PathLike[str], model: str, options, csv_path: Path, export_path: Path
) -> list[str]:
    """The perf_analyzer command line for `model` and `options` (a `LoadOptions`).

    Returns:
        argv, with `-f` and `--profile-export-file` pointing at the given paths.
    """
    name, version = split_model_spec(model)
    settings = options.settings
    argv = [
        str(binary),
        "-m",
        name,
        "-u",
        options.url,
        "-i",
        options.protocol,
        "-b",
        str(options.batch_size),
        "--input-data",
        options.input_data,
        "--measurement-interval",
        str(int(settings.measurement_interval_ms)),
        "--stability-percentage",
        f"{settings.stability_percentage:g}",
        "--max-trials",
        str(settings.max_trials),
        "-f",
        str(csv_path),
        "--profile-export-file",
        str(export_path),
    ]
    if version:
        argv += ["-x", version]
    if options.mode == "concurrency":
        argv += ["--concurrency-range", _range(options.levels, True)]
    else:
        argv += [
            "--request-rate-range",
            _range(options.levels, False),
            "--request-distribution",
            settings.schedule,
        ]
    for tensor, dims in options.shapes.items():
        argv += ["--shape", f"{tensor}:{','.join(str(d) for d in dims)}"]
    for key, value in options.parameters.items():
        argv += ["--request-parameter", f"{key}:{value}:string"]
    if settings.percentile is not None:
        argv += ["--percentile", f"{settings.percentile:g}"]
    return argv


def run_perf_analyzer(
    binary: str | os.PathLike[str], model: str, options, work_dir: str | os.PathLike[str] | None = None
) -> list[PerfRecord]:
    """Run perf_analyzer and parse the CSV it writes.

    Args:
        binary: the executable (see `find_perf_analyzer`).
        model: `NAME[:VERSION]`.
        options: a `LoadOptions`.
        work_dir: where the CSV and profile export go (a temporary folder by default).

    Returns:
        One record per load level.

    Raises:
        PerfError: perf_analyzer failed (its last output lines are in the message),
            timed out, or wrote no CSV.
    """
    with tempfile.TemporaryDirectory(prefix="tritonab-pa-") as tmp:
        folder = Path(work_dir) if work_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        csv_path, export_path = folder / "perf_analyzer.csv", folder / "profile_export.json"
        argv = perf_analyzer_command(binary, model, options, csv_path, export_path)
        s = options.settings
        budget = len(options.levels) * s.max_trials * s.measurement_interval_ms / 1e3 * 3
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=max(_TIMEOUT_FLOOR_S, budget))
        except subprocess.TimeoutExpired:
            raise PerfError(
                f"perf_analyzer did not finish within {max(_TIMEOUT_FLOOR_S, budget):.0f} s"
            ) from None
        except OSError as exc:
            raise PerfError(f"perf_analyzer `{binary}` could not start: {exc.strerror}") from None
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise PerfError(f"perf_analyzer exited with {done.returncode}: {tail}")
        if not csv_path.is_file():
            raise PerfError(f"perf_analyzer wrote no CSV at `{csv_path}`")
        return read_perf_analyzer_csv(csv_path)
