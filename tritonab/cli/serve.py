"""`tritonab serve`: run the embedded Triton on a model repository until stopped."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add `serve`."""
    p = subparsers.add_parser(
        "serve", help="run the embedded tritonserver on a model repository",
        description="Run the real tritonserver of the nvidia-pytriton wheel; stop with Ctrl-C.",
    )
    p.add_argument("--repository", required=True, help="model repository folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--model-control-mode", choices=["none", "explicit"], default="none",
                   help="explicit: models load/unload through the API (all loaded at start)")
    p.add_argument("--log-dir", help="folder for tritonserver.log (default: a temporary one)")
    p.add_argument("--startup-timeout", type=float, default=120.0)
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from tritonab.deploy.server import TritonServer, main_loop

    server = TritonServer(
        args.repository, host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
        metrics_port=args.metrics_port, model_control_mode=args.model_control_mode,
        log_dir=args.log_dir, startup_timeout=args.startup_timeout,
    )
    return main_loop(server)
