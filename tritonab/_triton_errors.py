"""Text of tritonclient errors, the same over gRPC and HTTP."""

from __future__ import annotations


def error_text(exc: Exception) -> str:
    """tritonclient's message with its status, e.g. `[StatusCode.INVALID_ARGUMENT] ...`."""
    message = getattr(exc, "message", None)
    text = message() if callable(message) else str(exc)
    status = getattr(exc, "status", None)
    code = status() if callable(status) else None
    if code and str(code) not in (text or ""):
        return f"[{code}] {text}"
    return text or type(exc).__name__
