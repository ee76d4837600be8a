"""Arguments every client command shares: TLS files and access keys, added in one line.

    add_client_security(parser)          # --tls-ca --tls-cert --tls-key --auth-key-file --client-key-file
    endpoint = client_endpoint(args, args.url, args.protocol)

Keys come from the files named, or else from `$TRITONAB_AUTH_KEY` (operator) and
`$TRITONAB_CLIENT_KEY` (inference); a key is never printed.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tritonab._transport import Endpoint, WireProtocol
    from tritonab.security import ClientAccess


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text}")
    return value


def add_client_security(parser: argparse.ArgumentParser) -> None:
    """Add `--tls-ca`, `--tls-cert`, `--tls-key`, `--auth-key-file` and `--client-key-file`."""
    group = parser.add_argument_group(
        "TLS and access keys",
        "for a server started with `tritonab serve --tls-cert ... [--mtls] [--auth-key-file ...]`",
    )
    group.add_argument("--tls-ca", metavar="FILE", help="CA certificate that signed the server's (PEM)")
    group.add_argument("--tls-cert", metavar="FILE", help="client certificate for mutual TLS (PEM)")
    group.add_argument("--tls-key", metavar="FILE", help="the client certificate's private key (PEM)")
    group.add_argument(
        "--auth-key-file",
        metavar="FILE",
        help="operator key for model control, configs and statistics (default: $TRITONAB_AUTH_KEY)",
    )
    group.add_argument(
        "--client-key-file",
        metavar="FILE",
        help="client key for inference (default: $TRITONAB_CLIENT_KEY)",
    )


def access_from_args(args: argparse.Namespace) -> ClientAccess:
    """The TLS files and keys the command line (or the environment) gives."""
    from tritonab.security import client_access

    return client_access(
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        auth_key_file=args.auth_key_file,
        client_key_file=args.client_key_file,
    )


def client_endpoint(args: argparse.Namespace, url: str, protocol: WireProtocol = "grpc") -> Endpoint:
    """An `Endpoint` for `url` with the command line's TLS files and keys."""
    return access_from_args(args).endpoint(url, protocol)
