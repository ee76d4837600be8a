"""`tritonab serve`: run the embedded Triton on a model repository until stopped.

With `--log-dir DIR`, DIR holds `tritonserver.log` and the routers' exposure and payload
logs (passed to the Python-backend stubs as `$TRITONAB_LOG_DIR`). Before starting,
every router's spec is checked: a log sink outside the spec's `allowed_regions` is
refused (and the refusal written to DIR's audit log).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tritonab.errors import SpecError


def register(subparsers) -> None:
    """Add `serve`."""
    p = subparsers.add_parser(
        "serve",
        help="run the embedded tritonserver on a model repository",
        description="Run the real tritonserver of the nvidia-pytriton wheel; stop with Ctrl-C.",
    )
    p.add_argument("--repository", required=True, help="model repository folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument(
        "--model-control-mode",
        choices=["none", "explicit"],
        default="explicit",
        help="explicit (default): every model loads at start, and models load, unload and "
        "take live weights through the API; none: the repository as it was at start",
    )
    p.add_argument(
        "--log-dir",
        help="folder for tritonserver.log and the experiments' exposure/"
        "payload logs (default: a temporary one, no experiment logs)",
    )
    p.add_argument("--startup-timeout", type=float, default=120.0)
    p.set_defaults(func=_serve)


def check_residency(repository: str | os.PathLike[str], log_dir: str | os.PathLike[str]) -> None:
    """Refuse routers whose log sink lies outside their allowed regions (audited).

    Raises:
        SpecError: the first router spec that is invalid, with its field path.
    """
    from tritonab.ensembles.config import get_parameter
    from tritonab.ensembles.repository import ROUTER_PARAMETER, load_repository
    from tritonab.monitoring.router_log import audit_rejection
    from tritonab.splitter.spec import spec_from_json

    for name, entry in load_repository(repository).items():
        raw = get_parameter(entry.config, ROUTER_PARAMETER)
        if not raw:
            continue
        try:
            spec_from_json(raw)
        except SpecError as exc:
            if "logging.sink.region" in str(exc):
                audit_rejection(log_dir, f"router `{name}`", str(exc))
            raise SpecError(f"router `{name}`: {exc}") from None


def _serve(args: argparse.Namespace) -> int:
    from tritonab.deploy.server import TritonServer, main_loop
    from tritonab.monitoring.router_log import LOG_DIR_ENV

    env = {}
    if args.log_dir:
        log_dir = Path(args.log_dir).resolve()
        log_dir.mkdir(parents=True, exist_ok=True)
        check_residency(args.repository, log_dir)
        env[LOG_DIR_ENV] = str(log_dir)
    server = TritonServer(
        args.repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        model_control_mode=args.model_control_mode,
        log_dir=args.log_dir,
        env=env,
        startup_timeout=args.startup_timeout,
    )
    return main_loop(server)
