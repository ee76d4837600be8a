"""Server-side TLS for Triton's gRPC endpoint (Triton's HTTP endpoint has no TLS).

`ServerTLS` holds the PEM files and turns them into Triton 2.51's flags:
`--grpc-use-ssl` (or `--grpc-use-ssl-mutual`, which asks every client for a
certificate signed by `ca`), `--grpc-server-cert`, `--grpc-server-key`, `--grpc-root-cert`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tritonab.errors import SecurityError


@dataclass(frozen=True)
class ServerTLS:
    """TLS on Triton's gRPC endpoint.

    Args:
        cert: the server certificate (PEM).
        key: its private key (PEM).
        ca: the CA that signs client certificates (needed for `mutual`).
        mutual: refuse clients without a certificate signed by `ca`.

    Raises:
        SecurityError: a file is missing, or `mutual` without `ca`.
    """

    cert: str
    key: str
    ca: str | None = None
    mutual: bool = False

    def __post_init__(self) -> None:
        if self.mutual and self.ca is None:
            raise SecurityError("mutual TLS needs the CA that signs client certificates (--tls-ca)")
        for label, path in (("certificate", self.cert), ("key", self.key), ("CA", self.ca)):
            if path is not None and not Path(path).is_file():
                raise SecurityError(f"TLS {label} file `{path}` does not exist")
        # Triton runs with its own working directory in mind: give it absolute paths.
        object.__setattr__(self, "cert", str(Path(self.cert).resolve()))
        object.__setattr__(self, "key", str(Path(self.key).resolve()))
        if self.ca is not None:
            object.__setattr__(self, "ca", str(Path(self.ca).resolve()))

    @classmethod
    def from_files(
        cls,
        cert: str | os.PathLike[str],
        key: str | os.PathLike[str],
        ca: str | os.PathLike[str] | None = None,
        *,
        mutual: bool = False,
    ) -> ServerTLS:
        """The same, from any path-like values."""
        return cls(str(cert), str(key), None if ca is None else str(ca), mutual)

    def triton_args(self) -> list[str]:
        """Triton's gRPC SSL flags."""
        args = [
            "--grpc-use-ssl-mutual=true" if self.mutual else "--grpc-use-ssl=true",
            f"--grpc-server-cert={self.cert}",
            f"--grpc-server-key={self.key}",
        ]
        if self.ca is not None:
            args.append(f"--grpc-root-cert={self.ca}")
        return args
