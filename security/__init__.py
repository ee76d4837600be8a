"""Security: TLS material, keyed access, encryption at rest, keyed audit, residency.

The public surface of the room is listed in ``__all__``; the implementation lives in
private modules:

- `_keys`: 256-bit key files (0600) with a purpose (`data` or `audit`) and a public id;
- `_crypto`: AES-256-GCM on whole byte strings (encrypted model artifacts);
- `_envelope`: per-segment data keys wrapped by a master key, chunked AES-GCM (logs);
- `_residency`: region policies and the write check by real path.
"""

from __future__ import annotations

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
]
