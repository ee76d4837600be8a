"""The exception hierarchy: one root, a family per room.

Messages name the object in backticks and say what was expected. Third-party
errors (tritonclient, protobuf, onnx, subprocess) are translated into these at
the boundary of the room that calls them.
"""

from __future__ import annotations


class TritonABError(Exception):
    """Root of every error tritonab raises on purpose."""

    exit_code: int = 1


class SpecError(TritonABError, ValueError):
    """An experiment spec (YAML/JSON) is invalid; the message carries the field path."""

    exit_code = 2


class AssignmentError(TritonABError, ValueError):
    """Assignment was asked for something it cannot do (no unit id, bad weights)."""


class RepositoryError(TritonABError):
    """A model repository or one of its `config.pbtxt` files is invalid."""


class ConversionError(TritonABError):
    """A model could not be converted, or the converted model failed its parity check."""


class VariantError(ConversionError):
    """A runtime-config variant cannot be derived as asked (unknown source, no intact
    manifest, a name taken, settings the artifact cannot serve)."""

    exit_code = 2


class FeatureStoreError(TritonABError):
    """A feature store (Feast) could not be opened or read, or lacks what a transform asks."""


class ServerError(TritonABError):
    """The embedded Triton server could not start, or stopped unexpectedly."""


class ClientError(TritonABError):
    """A request to a Triton server failed (unreachable, unknown model, bad input)."""


class PerfError(TritonABError):
    """A measurement could not be taken (unreachable server, bad input data)."""

    exit_code = 2


class RolloutError(TritonABError):
    """A rollout could not proceed."""

    exit_code = 2


class StatsError(TritonABError, ValueError):
    """The statistics engine was misused (negative counts, mismatched lengths, bad weights)."""

    exit_code = 2


class SecurityError(TritonABError):
    """Keys, certificates, encrypted files or a residency policy refused an operation."""

    exit_code = 2


class MonitoringError(TritonABError):
    """Metrics, logs or Prometheus queries could not be read."""

    exit_code = 2


class DeployError(TritonABError):
    """A deploy spec is invalid, manifests could not be rendered, or replicas could not be found."""

    exit_code = 2


class FleetError(DeployError):
    """A change could not be applied to every replica of a fleet (the ones named refused or
    could not be reached); nothing the caller relies on moved."""


class BulkError(TritonABError):
    """Offline scoring could not run: a bad input or output folder, a model that cannot
    run offline, an artifact that differs from its manifest, a failed batch (named by its
    part and rows)."""

    exit_code = 2


class DriftError(MonitoringError):
    """Drift could not be measured: unreadable data or profile, no reference, bad thresholds."""

    exit_code = 2


class AutoscaleError(TritonABError):
    """An autoscaling plan, run or simulation could not be made (no history, bad trace or capacity)."""

    exit_code = 2


class LogFormatError(MonitoringError):
    """A log segment or an outcomes file holds something that is not a record (bad input)."""

    exit_code = 2
