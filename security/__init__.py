"""Security: TLS material, keyed access, encryption at rest, keyed audit, residency.

In transit (this part): `write_dev_certs` makes a development CA and server and client
certificates; `ServerTLS` and `ServerAccess` are the TLS and restricted-API settings a
Triton server starts with; `client_access` reads a client's TLS files and access keys
(from files or `$TRITONAB_AUTH_KEY` / `$TRITONAB_CLIENT_KEY`) into a `ClientAccess`,
whose `endpoint(url)` every tritonab client takes. An `AccessKey` never shows its value.

The public surface of the room is listed in ``__all__``; the implementation lives in
private modules.
"""

from __future__ import annotations

from tritonab.security._access import (
    AUTH_KEY_ENV,
    CLIENT_HEADER,
    CLIENT_KEY_ENV,
    CLIENT_PROTOCOLS,
    OPERATOR_HEADER,
    OPERATOR_PROTOCOLS,
    AccessKey,
    ClientAccess,
    ServerAccess,
    client_access,
    generate_access_key,
    read_access_key,
    write_access_key,
)
from tritonab.security._certs import DEV_FILES, LOOPBACK_NAMES, DevCerts, write_dev_certs
from tritonab.security._tls import ServerTLS

__all__: list[str] = [
    "AUTH_KEY_ENV",
    "CLIENT_HEADER",
    "CLIENT_KEY_ENV",
    "CLIENT_PROTOCOLS",
    "DEV_FILES",
    "LOOPBACK_NAMES",
    "OPERATOR_HEADER",
    "OPERATOR_PROTOCOLS",
    "AccessKey",
    "ClientAccess",
    "DevCerts",
    "ServerAccess",
    "ServerTLS",
    "client_access",
    "generate_access_key",
    "read_access_key",
    "write_access_key",
    "write_dev_certs",
]
