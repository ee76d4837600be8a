"""`tritonab rollout` (placeholder until it lands)."""


def register(subparsers) -> None:
    """No commands yet."""
