"""The perf_analyzer wrapper: find a real binary, run it with `-f`, parse its CSV.

The PyPI package `perf-analyzer` is an empty placeholder, so a `perf_analyzer`
found on PATH is used only when it is a regular executable file that is either
an ELF binary (NVIDIA's SDK build) or a script with a `#!` line.

perf_analyzer's CSV has no error column. So that a gate on the error rate has
something true to check, the wrapper runs perf_analyzer once per load level and reads
Triton's statistics of the model before and after each run: the level's requests are
the difference in success plus failure counts, its errors the difference in failures.
Where the statistics cannot say (unreachable, or a backend that counts error responses
as successes, as Triton 2.51's Python backend does: see `perf/_run.py`), both stay
unknown (None), and a gate on the error rate fails rather than passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tritonab.errors import PerfError
from tritonab.perf._records import PerfRecord, read_perf_analyzer_csv
from tritonab.perf._server_stats import ServerStats
from tritonab.perf._target import split_model_spec

StatsSnapshot = Callable[[], "ServerStats | None"]
"""A snapshot of the model's cumulative statistics on the server (None: unavailable)."""

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


def _security_args(options) -> list[str]:
    """perf_analyzer's gRPC TLS flags; access keys are refused (they would sit on its
    command line, readable by every user of the host in /proc)."""
    if options.headers:
        raise PerfError(
            "perf_analyzer would take the access key on its command line: "
            "use the built-in generator (--backend builtin) against a keyed server"
        )
    tls = options.tls
    if tls is None:
        return []
    if options.protocol != "grpc":
        raise PerfError("TLS with perf_analyzer is for gRPC (Triton's HTTP has no TLS)")
    argv = ["--ssl-grpc-use-ssl"]
    if tls.ca:
        argv.append(f"--ssl-grpc-root-certifications-file={tls.ca}")
    if tls.cert and tls.key:
        argv += [f"--ssl-grpc-private-key-file={tls.key}", f"--ssl-grpc-certificate-chain-file={tls.cert}"]
    return argv


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
    argv += _security_args(options)
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
    binary: str | os.PathLike[str],
    model: str,
    options,
    work_dir: str | os.PathLike[str] | None = None,
    server_stats: StatsSnapshot | None = None,
) -> list[PerfRecord]:
    """Run perf_analyzer once per load level and parse the CSVs it writes.

    Args:
        binary: the executable (see `find_perf_analyzer`).
        model: `NAME[:VERSION]`.
        options: a `LoadOptions`.
        work_dir: where the CSVs and profile exports go (a temporary folder by default).
        server_stats: snapshots the model's statistics; each level's `count` and
            `errors` come from the difference around its run (None: left unknown).

    Returns:
        One record per load level.

    Raises:
        PerfError: perf_analyzer failed (its last output lines are in the message),
            timed out, or wrote no CSV.
    """
    with tempfile.TemporaryDirectory(prefix="tritonab-pa-") as tmp:
        folder = Path(work_dir) if work_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        records: list[PerfRecord] = []
        for index, level in enumerate(options.levels, start=1):
            before = server_stats() if server_stats else None
            rows = _run_level(binary, model, replace(options, levels=(level,)), folder, index)
            after = server_stats() if server_stats else None
            if before is not None and after is not None:
                delta = after - before
                counted = delta.success_count + delta.fail_count
                rows = [replace(r, count=counted, errors=delta.fail_count) for r in rows]
            records.extend(rows)
        return records


def _run_level(
    binary: str | os.PathLike[str], model: str, options, folder: Path, index: int
) -> list[PerfRecord]:
    """One perf_analyzer run (one load level); its CSV rows."""
    csv_path = folder / f"perf_analyzer-{index}.csv"
    export_path = folder / f"profile_export-{index}.json"
    argv = perf_analyzer_command(binary, model, options, csv_path, export_path)
    s = options.settings
    budget = max(_TIMEOUT_FLOOR_S, s.max_trials * s.measurement_interval_ms / 1e3 * 3)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=budget)
    except subprocess.TimeoutExpired as exc:
        raise PerfError(f"perf_analyzer did not finish within {budget:.0f} s") from exc
    except OSError as exc:
        raise PerfError(f"perf_analyzer `{binary}` could not start: {exc.strerror}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise PerfError(f"perf_analyzer exited with {done.returncode}: {tail}")
    if not csv_path.is_file():
        raise PerfError(f"perf_analyzer wrote no CSV at `{csv_path}`")
    return read_perf_analyzer_csv(csv_path)
