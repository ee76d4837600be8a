"""`tritonab certs dev|access-key`: development TLS material and access keys."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add `certs dev` and `certs access-key`."""
    p = subparsers.add_parser("certs", help="development TLS certificates and access keys")
    sub = p.add_subparsers(dest="certs_command", metavar="COMMAND", required=True)

    dev = sub.add_parser(
        "dev",
        help="write a development CA, server and client certificates",
        description="Write ca.crt, server.crt, server.key, client.crt and client.key (PEM; keys 0600). "
        "The server certificate names localhost, 127.0.0.1 and ::1, and every --host.",
    )
    dev.add_argument("--out", required=True, metavar="DIR", help="folder to create")
    dev.add_argument(
        "--host", action="append", default=[], metavar="NAME", help="another server name or IP (repeatable)"
    )
    dev.add_argument("--days", type=int, default=30, help="validity (default %(default)s days)")
    dev.add_argument("--client-name", default="tritonab-client", help="client certificate common name")
    dev.add_argument("--force", action="store_true", help="replace an existing folder")
    dev.set_defaults(func=_dev)

    key = sub.add_parser(
        "access-key",
        help="write a new random access key (for serve --auth-key-file / --client-key-file)",
    )
    key.add_argument("file", help="the key file to create (mode 0600)")
    key.add_argument("--force", action="store_true", help="replace an existing file")
    key.set_defaults(func=_access_key)


def _dev(args: argparse.Namespace) -> int:
    from tritonab.security import write_dev_certs

    certs = write_dev_certs(
        args.out, args.host, days=args.days, client_name=args.client_name, force=args.force
    )
    print(f"wrote {certs.folder}/{{ca.crt,server.crt,server.key,client.crt,client.key}}")
    print(f"server names: {', '.join(certs.hosts)}; valid until {certs.not_after:%Y-%m-%d %H:%M} UTC")
    return 0


def _access_key(args: argparse.Namespace) -> int:
    from tritonab.security import write_access_key

    key = write_access_key(args.file, force=args.force)
    print(f"wrote a new access key to {args.file} (fingerprint {key.fingerprint})")
    return 0
