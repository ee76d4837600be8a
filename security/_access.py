"""Keyed access to Triton's APIs: keys read from a file or an environment variable, the
headers a client sends, and the restricted-protocol flags a server starts with.

Triton 2.51 restricts groups of its APIs to requests carrying a header with a given
value (`--grpc-restricted-protocol` and `--http-restricted-api`). tritonab uses two
keys under two header names, so one caller can hold both:

- the **operator key** (`tritonab-operator-key`) guards model-repository (load,
  unload), model-config, statistics, trace, logging and shared-memory;
- the **client key** (`tritonab-client-key`), when given, guards inference.

Health and metadata stay open: readiness probes and load balancers use them.

Triton 2.51 checks the header as given on HTTP, but on gRPC it looks for the metadata
key `triton-grpc-protocol-<key>` (seen: "This protocol is restricted, expecting header
'triton-grpc-protocol-tritonab-operator-key'"), so `ClientAccess.headers` spells the
header for the protocol it is sent over.

A key is a secret: `AccessKey` never shows its value in `repr`, `str` or an error
message (it shows where it came from and a short fingerprint instead); only
`reveal()` gives it, to build a header or Triton's command line.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tritonab._io import atomic_write_text
from tritonab._transport import Endpoint, TLSFiles, WireProtocol
from tritonab.errors import SecurityError

OPERATOR_HEADER = "tritonab-operator-key"
CLIENT_HEADER = "tritonab-client-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
AUTH_KEY_ENV = "TRITONAB_AUTH_KEY"
"""The operator key itself, when no `--auth-key-file` is given."""
CLIENT_KEY_ENV = "TRITONAB_CLIENT_KEY"
"""The client (inference) key itself, when no `--client-key-file` is given."""

OPERATOR_PROTOCOLS = ("model-repository", "model-config", "statistics", "trace", "logging", "shared-memory")
CLIENT_PROTOCOLS = ("inference",)

# Triton splits its flag on `,` `:` and `=`, and an HTTP header value must be visible
# ASCII: a key is letters, digits and `-._~+/` (what `token_urlsafe` and base64 give).
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/")
MIN_KEY_LENGTH = 16


class AccessKey:
    """A secret access key that does not show itself.

    Args:
        value: the key.
        source: where it came from (a file path or an environment variable), for messages.

    Raises:
        SecurityError: the key is shorter than 16 characters or holds a character
            outside letters, digits and `-._~+/` (the value is never quoted).
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        if len(value) < MIN_KEY_LENGTH:
            raise SecurityError(
                f"access key from `{source}` is {len(value)} characters long: expected at least "
                f"{MIN_KEY_LENGTH} (make one with `tritonab certs access-key FILE`)"
            )
        if not set(value) <= _KEY_CHARS:
            raise SecurityError(
                f"access key from `{source}` holds a character Triton's flag or an HTTP header "
                "cannot carry: expected letters, digits and -._~+/"
            )
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The key itself: only to build a header or Triton's command line."""
        return self._value

    @property
    def fingerprint(self) -> str:
        """The first 8 hex digits of the key's sha256: enough to tell keys apart in a log."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"AccessKey(source={self.source!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AccessKey) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self.fingerprint)


def generate_access_key() -> str:
    """A new random key: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def write_access_key(path: str | os.PathLike[str], *, force: bool = False) -> AccessKey:
    """Write a new random key to `path` (mode 0600, atomically).

    Raises:
        SecurityError: `path` exists and `force` is not set.
    """
    target = Path(path)
    if target.exists() and not force:
        raise SecurityError(f"`{target}` already exists: choose another file or pass --force")
    value = generate_access_key()
    atomic_write_text(target, value + "\n", private=True)
    return AccessKey(value, str(target))


def read_access_key(
    path: str | os.PathLike[str] | None = None,
    *,
    env: str | None = AUTH_KEY_ENV,
    environ: Mapping[str, str] | None = None,
) -> AccessKey | None:
    """The key in `path`, or else in the environment variable `env`; None when neither.

    The file holds the key on its first line (surrounding whitespace is ignored).

    Raises:
        SecurityError: the file cannot be read, is empty, or the key is malformed.
    """
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecurityError(f"access key file `{path}` cannot be read: {exc.__class__.__name__}") from exc
        lines = text.strip().splitlines()
        if not lines:
            raise SecurityError(f"access key file `{path}` is empty")
        return AccessKey(lines[0].strip(), str(path))
    if env is None:
        return None
    value = (os.environ if environ is None else environ).get(env, "").strip()
    return AccessKey(value, f"${env}") if value else None


@dataclass(frozen=True)
class ClientAccess:
    """How a tritonab client reaches a secured server: TLS files and access keys.

    Attributes:
        tls: the CA that signed the server (and a client certificate and key for
            mutual TLS); None for plaintext.
        operator_key: sent as `tritonab-operator-key` (model control, configs, statistics).
        client_key: sent as `tritonab-client-key` (inference).
    """

    tls: TLSFiles | None = None
    operator_key: AccessKey | None = field(default=None, repr=False)
    client_key: AccessKey | None = field(default=None, repr=False)

    def headers(self, protocol: WireProtocol = "grpc") -> dict[str, str]:
        """The headers every call carries over `protocol` (empty without keys)."""
        prefix = GRPC_HEADER_PREFIX if protocol == "grpc" else ""
        found: dict[str, str] = {}
        if self.operator_key is not None:
            found[prefix + OPERATOR_HEADER] = self.operator_key.reveal()
        if self.client_key is not None:
            found[prefix + CLIENT_HEADER] = self.client_key.reveal()
        return found

    def endpoint(self, url: str, protocol: WireProtocol = "grpc", timeout_s: float = 30.0) -> Endpoint:
        """An `Endpoint` for `url` with these TLS files and keys."""
        return Endpoint(url, protocol, timeout_s, self.tls, self.headers(protocol))


def client_access(
    *,
    tls_ca: str | os.PathLike[str] | None = None,
    tls_cert: str | os.PathLike[str] | None = None,
    tls_key: str | os.PathLike[str] | None = None,
    auth_key_file: str | os.PathLike[str] | None = None,
    client_key_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientAccess:
    """Client credentials from files (or `$TRITONAB_AUTH_KEY` / `$TRITONAB_CLIENT_KEY`).

    Example:
        >>> access = client_access(tls_ca="certs/ca.crt", auth_key_file="operator.key")  # doctest: +SKIP
        >>> ModelControl(access.endpoint("127.0.0.1:8001"))  # doctest: +SKIP

    Raises:
        SecurityError: a file is missing or a key is malformed; a client certificate
            without its key (or the reverse).
    """
    tls = None
    if tls_ca or tls_cert or tls_key:
        if (tls_cert is None) != (tls_key is None):
            raise SecurityError("TLS: give both --tls-cert and --tls-key (mutual TLS), or neither")
        for label, path in (("--tls-ca", tls_ca), ("--tls-cert", tls_cert), ("--tls-key", tls_key)):
            if path is not None and not Path(path).is_file():
                raise SecurityError(f"TLS file `{path}` ({label}) does not exist")
        tls = TLSFiles(
            None if tls_ca is None else str(tls_ca),
            None if tls_cert is None else str(tls_cert),
            None if tls_key is None else str(tls_key),
        )
    return ClientAccess(
        tls,
        read_access_key(auth_key_file, env=AUTH_KEY_ENV, environ=environ),
        read_access_key(client_key_file, env=CLIENT_KEY_ENV, environ=environ),
    )


@dataclass(frozen=True)
class ServerAccess:
    """Which keys a server asks for: the operator key for every control API, and
    optionally a client key for inference."""

    operator_key: AccessKey = field(repr=False)
    client_key: AccessKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.client_key is not None and self.client_key == self.operator_key:
            raise SecurityError(
                f"the client key (`{self.client_key.source}`) is the operator key "
                f"(`{self.operator_key.source}`): give inference clients a key of their own"
            )

    def groups(self) -> list[tuple[tuple[str, ...], str, AccessKey]]:
        """`(protocols, header, key)` for each restricted group."""
        found: list[tuple[tuple[str, ...], str, AccessKey]] = [
            (OPERATOR_PROTOCOLS, OPERATOR_HEADER, self.operator_key)
        ]
        if self.client_key is not None:
            found.append((CLIENT_PROTOCOLS, CLIENT_HEADER, self.client_key))
        return found

    def triton_args(self, *, http: bool = True) -> list[str]:
        """Triton's flags: `--grpc-restricted-protocol` (and `--http-restricted-api`) per group.

        These hold the keys: Triton reads them only from its command line.
        """
        args = []
        for protocols, header, key in self.groups():
            rule = f"{','.join(protocols)}:{header}={key.reveal()}"
            args.append(f"--grpc-restricted-protocol={rule}")
            if http:
                args.append(f"--http-restricted-api={rule}")
        return args
