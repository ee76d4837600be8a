"""Security: TLS material, keyed access, encryption at rest, keyed audit, residency.

The public surface of the room is listed in ``__all__``; the implementation lives in
private modules.
"""

from __future__ import annotations

__all__: list[str] = []
