"""Security: TLS material, keyed access, encryption at rest, keyed audit, residency.

In transit (this part): `write_dev_certs` makes a development CA and server and client
certificates; `ServerTLS` and `ServerAccess` are the TLS and restricted-API settings a
Triton server starts with; `client_access` reads a client's TLS files and access keys
(from files or `$TRITONAB_AUTH_KEY` / `$TRITONAB_CLIENT_KEY`) into a `ClientAccess`,
whose `endpoint(url)` every tritonab client takes. An `AccessKey` never shows its value.

The public surface of the room is listed in ``__all__``; the implementation lives in
private modules:

- `_keys`: 256-bit key files (0600) with a purpose (`data` or `audit`) and a public id;
- `_crypto`: AES-256-GCM on whole byte strings (encrypted model artifacts);
- `_envelope`: per-segment data keys wrapped by a master key, chunked AES-GCM (logs);
- `_residency`: region policies and the write check by real path.
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
from tritonab.security._crypto import (
    ARTIFACT_CONTEXT,
    ENCRYPTION,
    TamperedError,
    is_sealed,
    open_sealed,
    seal,
    sealed_key_id,
)
from tritonab.security._envelope import (
    EnvelopeWriter,
    Opened,
    complete_length,
    is_envelope,
    open_segment,
    rewrap,
)
from tritonab.security._keys import (
    AUDIT_KEY_ENV,
    KEY_BYTES,
    LOG_KEY_ENV,
    MODEL_KEY_ENV,
    Key,
    Purpose,
    generate_key,
    key_from_env,
    key_id,
    load_key,
    require_distinct,
    resolve_key,
    write_key,
)
from tritonab.security._residency import (
    POLICY_ENV,
    REGION_ENV,
    Guard,
    Misplaced,
    Region,
    RegionPolicy,
    ResidencyError,
    check_write,
    guard_from_env,
    load_policy,
    scan,
)
from tritonab.security._tls import ServerTLS

__all__ = [
    "ARTIFACT_CONTEXT",
    "ENCRYPTION",
    "AUDIT_KEY_ENV",
    "KEY_BYTES",
    "LOG_KEY_ENV",
    "MODEL_KEY_ENV",
    "POLICY_ENV",
    "REGION_ENV",
    "EnvelopeWriter",
    "Guard",
    "Key",
    "Misplaced",
    "Opened",
    "Purpose",
    "Region",
    "RegionPolicy",
    "ResidencyError",
    "TamperedError",
    "check_write",
    "complete_length",
    "generate_key",
    "guard_from_env",
    "is_envelope",
    "is_sealed",
    "key_from_env",
    "key_id",
    "load_key",
    "load_policy",
    "open_sealed",
    "open_segment",
    "require_distinct",
    "resolve_key",
    "rewrap",
    "scan",
    "seal",
    "sealed_key_id",
    "write_key",
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
