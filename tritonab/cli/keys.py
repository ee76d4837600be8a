"""`tritonab keys generate|rotate`: 256-bit key files for encryption at rest and the audit chain.

    tritonab keys generate model.key                      # a data key (artifacts, logs)
    tritonab keys generate audit.key --purpose audit      # the audit chain's key
    tritonab keys rotate model_repository --old-key-file old.key --new-key-file new.key
    tritonab keys rotate model_repository --old-key-file old.key --new-key-file new.key --logs logs/

A key is never printed: only its public id.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add `keys generate` and `keys rotate`."""
    p = subparsers.add_parser("keys", help="generate or rotate encryption and audit keys")
    sub = p.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)

    gen = sub.add_parser("generate", help="write a new 256-bit key file (mode 0600)")
    gen.add_argument("file", help="the key file to create")
    gen.add_argument(
        "--purpose",
        choices=("data", "audit"),
        default="data",
        help="data: artifacts and logs (default); audit: the audit chain (kept apart)",
    )
    gen.add_argument("--force", action="store_true", help="replace an existing key file (its key is lost)")
    gen.set_defaults(func=_generate)

    rot = sub.add_parser("rotate", help="re-encrypt a repository's versions (and logs) under a new key")
    rot.add_argument("repository", help="model repository folder")
    rot.add_argument("--old-key-file", required=True)
    rot.add_argument("--new-key-file", required=True)
    rot.add_argument("--logs", metavar="DIR", help="also re-encrypt the sealed log segments under DIR")
    rot.set_defaults(func=_rotate)


def _generate(args: argparse.Namespace) -> int:
    from tritonab.security import generate_key

    key = generate_key(args.file, purpose=args.purpose, force=args.force)
    print(f"wrote {key.purpose} key {key.id} to `{args.file}` (mode 0600)")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from tritonab.converters import rotate_repository
    from tritonab.errors import SecurityError
    from tritonab.monitoring.segments import rotate_segments
    from tritonab.security import load_key

    old = load_key(args.old_key_file, purpose="data")
    new = load_key(args.new_key_file, purpose="data")
    if old.id == new.id:
        raise SecurityError(f"`{args.new_key_file}` holds the same key as `{args.old_key_file}` ({old.id})")
    for folder in rotate_repository(args.repository, old, new):
        print(f"re-encrypted {folder} under key {new.id}")
    if args.logs:
        segments = rotate_segments(args.logs, old, new)
        print(f"re-encrypted {len(segments)} log segment(s) under key {new.id}")
    return 0
