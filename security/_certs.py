"""Development TLS material: a private CA and the server and client certificates it signs.

`write_dev_certs` writes `ca.crt`, `server.crt`, `server.key`, `client.crt` and
`client.key` (PEM) with the `cryptography` library. Keys are ECDSA P-256 (gRPC's
BoringSSL and OpenSSL both accept them, and they are small and fast to make); private
keys are 0600. The server certificate names the loopback addresses (`localhost`,
`127.0.0.1`, `::1`) and every `--host` given, as subject alternative names, which is
what gRPC checks; the client certificate carries the `clientAuth` extended key usage
that a mutual-TLS server asks for. For production, use certificates from your own PKI
(cert-manager, Vault): these are for tests, demos and a developer's machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tritonab._io import staged_dir
from tritonab.errors import SecurityError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""Names the server certificate always carries."""

DEV_FILES = ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")


@dataclass(frozen=True)
class DevCerts:
    """The files `write_dev_certs` wrote."""

    folder: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    hosts: tuple[str, ...]
    not_after: datetime.datetime


def _general_name(host: str) -> x509.GeneralName:
    """A DNS name or an IP address as an X.509 subject alternative name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or any(c.isspace() for c in host) or len(host) > 253:
        raise SecurityError(f"host `{host}` is neither an IP address nor a DNS name")
    return x509.DNSName(host)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tritonab development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    days: int,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """One certificate: serial, validity, extensions, signed with SHA-256."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def _hosts(extra: Sequence[str]) -> tuple[str, ...]:
    """Loopback names first, then the extra ones, without repeats."""
    seen: dict[str, None] = {}
    for host in (*LOOPBACK_NAMES, *extra):
        seen.setdefault(host.strip(), None)
    return tuple(seen)


def write_dev_certs(
    out: str | os.PathLike[str],
    hosts: Sequence[str] = (),
    *,
    days: int = 30,
    client_name: str = "tritonab-client",
    force: bool = False,
) -> DevCerts:
    """Write a development CA and a server and a client certificate signed by it.

    Args:
        out: the folder to create (`ca.crt`, `server.crt`, `server.key`, `client.crt`,
            `client.key`).
        hosts: names or addresses the server is reached by, beside the loopback ones.
        days: validity of every certificate.
        client_name: the client certificate's common name.
        force: replace an existing folder.

    Returns:
        The paths written.

    Raises:
        SecurityError: `out` exists (without `force`), a host is not a name or an
            address, or `days` is not positive.
    """
    if days <= 0:
        raise SecurityError(f"certificate validity `{days}` days: expected a positive number")
    folder = Path(out)
    if folder.exists() and not force:
        raise SecurityError(f"`{folder}` already exists: choose another folder or pass --force")
    names = _hosts(hosts)
    alt_names = x509.SubjectAlternativeName([_general_name(h) for h in names])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("tritonab development CA")
    ca_usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    ca_extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (ca_usage, True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
    ]
    ca = _issue(ca_name, ca_name, ca_key.public_key(), ca_key, now, days, ca_extensions)
    leaf_usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())

    def leaf(
        common_name: str, purpose: x509.ObjectIdentifier, sans: x509.SubjectAlternativeName | None
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        extensions: list[tuple[x509.ExtensionType, bool]] = [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (leaf_usage, True),
            (x509.ExtendedKeyUsage([purpose]), False),
            (authority, False),
        ]
        if sans is not None:
            extensions.append((sans, False))
        return key, _issue(_name(common_name), ca_name, key.public_key(), ca_key, now, days, extensions)

    server_key, server = leaf(names[0], ExtendedKeyUsageOID.SERVER_AUTH, alt_names)
    client_key, client = leaf(client_name, ExtendedKeyUsageOID.CLIENT_AUTH, None)
    with staged_dir(folder, replace=force) as stage:
        for name, data, private in (
            ("ca.crt", _cert_pem(ca), False),
            ("server.crt", _cert_pem(server), False),
            ("server.key", _key_pem(server_key), True),
            ("client.crt", _cert_pem(client), False),
            ("client.key", _key_pem(client_key), True),
        ):
            # Created with its final mode: a key is never readable by others, even briefly.
            fd = os.open(stage / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
    return DevCerts(
        folder,
        folder / "ca.crt",
        folder / "server.crt",
        folder / "server.key",
        folder / "client.crt",
        folder / "client.key",
        names,
        now + datetime.timedelta(days=days),
    )
