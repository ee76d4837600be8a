"""`tritonab serve`: run the embedded Triton on a model repository until stopped.

With `--log-dir DIR`, DIR holds `tritonserver.log` and the routers' exposure and payload
logs (passed to the Python-backend stubs as `$TRITONAB_LOG_DIR`). Before starting,
every router's spec is checked: a log sink outside the spec's `allowed_regions` is
refused (and the refusal written to DIR's audit log).

Security: `--tls-cert/--tls-key` turn on TLS on gRPC (`--tls-ca --mtls`: mutual TLS);
Triton's HTTP endpoint has no TLS, so HTTP and metrics then bind to loopback only (or
`--no-http`). `--auth-key-file` restricts every control API to the operator key, and
`--client-key-file` inference to the client key (Triton takes both on its command line).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tritonab.errors import SecurityError, SpecError

if TYPE_CHECKING:
    from tritonab.security import ServerAccess, ServerTLS


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
    at_rest = p.add_argument_group("encryption at rest, audit and residency (passed to the stubs)")
    at_rest.add_argument(
        "--model-key-file", help="data key of encrypted artifacts ($TRITONAB_MODEL_KEY_FILE)"
    )
    at_rest.add_argument("--log-key-file", help="data key for logging.encrypt ($TRITONAB_LOG_KEY_FILE)")
    at_rest.add_argument("--audit-key-file", help="audit key of the audit chain ($TRITONAB_AUDIT_KEY_FILE)")
    at_rest.add_argument("--region-policy", help="region policy checked on every log write")
    _add_security(p)
    p.set_defaults(func=_serve)


def _add_security(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("TLS and access keys")
    group.add_argument("--tls-cert", metavar="FILE", help="server certificate (PEM): TLS on gRPC")
    group.add_argument("--tls-key", metavar="FILE", help="the server certificate's private key (PEM)")
    group.add_argument("--tls-ca", metavar="FILE", help="CA that signs client certificates (PEM)")
    group.add_argument("--mtls", action="store_true", help="mutual TLS: refuse clients without a certificate")
    group.add_argument("--no-http", action="store_true", help="no HTTP endpoint (Triton's HTTP has no TLS)")
    group.add_argument(
        "--auth-key-file",
        metavar="FILE",
        help="operator key: model control, configs, statistics, trace, logging, shared memory "
        "(default: $TRITONAB_AUTH_KEY when set)",
    )
    group.add_argument(
        "--client-key-file",
        metavar="FILE",
        help="client key for inference (default: $TRITONAB_CLIENT_KEY when set)",
    )


def server_security(args: argparse.Namespace) -> tuple[ServerTLS | None, ServerAccess | None]:
    """The TLS and the keys `serve`'s flags ask for.

    Raises:
        SecurityError: half a certificate, `--mtls` without `--tls-ca`, or a client key
            without an operator key.
    """
    from tritonab.security import (
        AUTH_KEY_ENV,
        CLIENT_KEY_ENV,
        ServerAccess,
        ServerTLS,
        read_access_key,
    )

    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise SecurityError("TLS: give both --tls-cert and --tls-key")
        tls = ServerTLS.from_files(args.tls_cert, args.tls_key, args.tls_ca, mutual=args.mtls)
    elif args.mtls or args.tls_ca:
        raise SecurityError("--tls-ca and --mtls need the server's --tls-cert and --tls-key")
    operator = read_access_key(args.auth_key_file, env=AUTH_KEY_ENV)
    client = read_access_key(args.client_key_file, env=CLIENT_KEY_ENV)
    if client is not None and operator is None:
        raise SecurityError(
            "a client key restricts inference while model control stays open: give --auth-key-file too"
        )
    return tls, None if operator is None else ServerAccess(operator, client)


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


def at_rest_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment naming the key files and the region policy, each loaded once first.

    Raises:
        SecurityError: an unreadable key or policy, a key of the wrong purpose, or an
            audit key that is also one of the data keys.
    """
    from tritonab.security import (
        AUDIT_KEY_ENV,
        LOG_KEY_ENV,
        MODEL_KEY_ENV,
        POLICY_ENV,
        load_key,
        load_policy,
        require_distinct,
    )

    env, data_keys = {}, []
    for path, variable in ((args.model_key_file, MODEL_KEY_ENV), (args.log_key_file, LOG_KEY_ENV)):
        if path:
            data_keys.append(load_key(path, purpose="data"))
            env[variable] = str(Path(path).resolve())
    if args.audit_key_file:
        require_distinct(load_key(args.audit_key_file, purpose="audit"), *data_keys)
        env[AUDIT_KEY_ENV] = str(Path(args.audit_key_file).resolve())
    if args.region_policy:
        load_policy(args.region_policy)
        env[POLICY_ENV] = str(Path(args.region_policy).resolve())
    return env


def _serve(args: argparse.Namespace) -> int:
    from tritonab.deploy.server import TritonServer, main_loop
    from tritonab.monitoring.router_log import LOG_DIR_ENV

    env = at_rest_env(args)
    os.environ.update(env)  # this process's own audit records (refused sinks) use them too
    tls, access = server_security(args)
    if access is not None and tls is None:
        print(
            "warning: access keys over plaintext gRPC/HTTP can be read on the network: "
            "add --tls-cert/--tls-key",
            file=sys.stderr,
        )
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
        tls=tls,
        access=access,
        http=not args.no_http,
    )
    return main_loop(server)
