"""Residency that binds: a region policy maps each region to the storage roots allowed
for it, and every write is checked by its real path.

A policy file (YAML)::

    regions:
      eu-west:
        roots: [/srv/data/eu, /mnt/eu-logs]
      us-east:
        roots: [/srv/data/us]

Relative roots are read from the policy file's folder. A path is inside a region when
`os.path.realpath` of it (every symlink on the way resolved, also for a file that does
not exist yet) lies under the real path of one of the region's roots: a symlink from
an allowed folder into another region's storage is refused, whatever the declared
region string says. A refusal raises `ResidencyError` and is appended to the audit log
named by the caller.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tritonab._specfile import read_yaml, validate_mapping
from tritonab.errors import SecurityError

POLICY_ENV = "TRITONAB_REGION_POLICY"
REGION_ENV = "TRITONAB_REGION"


class ResidencyError(SecurityError):
    """A write (or a file found) lies outside the storage roots of its region."""

    exit_code = 1


class Region(BaseModel):
    """The storage roots a region's data may be written under."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    roots: list[str] = Field(min_length=1)


class RegionPolicy(BaseModel):
    """Region name -> allowed storage roots."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    regions: dict[str, Region] = Field(min_length=1)

    def roots(self, region: str) -> tuple[str, ...]:
        """The real paths of a region's roots.

        Raises:
            ResidencyError: the region is not in the policy.
        """
        if region not in self.regions:
            raise ResidencyError(
                f"region `{region}` is not in the region policy (known: {sorted(self.regions)})"
            )
        return tuple(os.path.realpath(root) for root in self.regions[region].roots)

    def allows(self, path: str | os.PathLike[str], region: str) -> bool:
        """True when the real path of `path` lies under one of `region`'s roots."""
        real = os.path.realpath(path)
        return any(
            real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots(region)
        )

    def region_of(self, path: str | os.PathLike[str]) -> str | None:
        """The region whose roots hold the real path of `path` (None when none does)."""
        for name in self.regions:
            if self.allows(path, name):
                return name
        return None


def load_policy(path: str | os.PathLike[str]) -> RegionPolicy:
    """Read a region policy file; relative roots are taken from the file's folder.

    Raises:
        SecurityError: unreadable file, bad YAML, or a bad field (`file: field.path: problem`).
    """
    target = Path(path)
    data = read_yaml(target, error=SecurityError)
    policy = validate_mapping(RegionPolicy, data, source=f"`{target}`", error=SecurityError)
    base = target.resolve().parent
    return RegionPolicy(
        regions={
            name: Region(roots=[str(base / root) for root in region.roots])
            for name, region in policy.regions.items()
        }
    )


def check_write(
    path: str | os.PathLike[str],
    policy: RegionPolicy,
    region: str,
    *,
    audit_log: str | os.PathLike[str] | None = None,
    writer: str = "",
) -> Path:
    """Refuse a write of `region`'s data to `path` unless its real path is inside the region.

    The one check every writer makes where it opens its output (router logs, outcomes,
    bulk-scoring results).

    Args:
        path: the file (or folder) about to be written; it need not exist yet.
        policy: the region policy.
        region: the region the data belongs to.
        audit_log: an audit log to record a refusal in (`residency.refused`).
        writer: who writes (for the message and the audit record).

    Returns:
        The real path that was checked.

    Raises:
        ResidencyError: the real path lies outside the region's roots, or the region is
            unknown; the refusal is audited first when `audit_log` is given.
    """
    real = Path(os.path.realpath(path))
    try:
        if policy.allows(real, region):
            return real
        found = policy.region_of(real)
        where = f"in region `{found}`" if found else "in no region of the policy"
        message = (
            f"`{path}` resolves to `{real}`, {where}: region `{region}` may write only under "
            f"{list(policy.roots(region))}"
        )
    except ResidencyError as exc:
        message = f"`{path}`: {exc}"
    if audit_log is not None:
        from tritonab.monitoring import audit  # here: monitoring imports security

        audit.append(
            audit_log, "residency.refused", writer=writer, region=region, target=str(real), reason=message
        )
    raise ResidencyError(f"{writer + ': ' if writer else ''}{message}")


@dataclass(frozen=True)
class Guard:
    """A policy, a region and where refusals are audited: `guard(path)` checks one write."""

    policy: RegionPolicy
    region: str
    audit_log: Path | None = None
    writer: str = ""

    def __call__(self, path: str | os.PathLike[str]) -> Path:
        return check_write(path, self.policy, self.region, audit_log=self.audit_log, writer=self.writer)


def guard_from_env(
    region: str | None = None, *, audit_log: str | os.PathLike[str] | None = None, writer: str = ""
) -> Guard | None:
    """The guard set up by `$TRITONAB_REGION_POLICY` (and `region`, else `$TRITONAB_REGION`).

    Returns None when no policy is set.

    Raises:
        SecurityError: a policy is set but unreadable, or no region is known.
    """
    policy_file = os.environ.get(POLICY_ENV)
    if not policy_file:
        return None
    region = region or os.environ.get(REGION_ENV)
    if not region:
        raise ResidencyError(f"a region policy is set (`{policy_file}`) but no region: set ${REGION_ENV}")
    return Guard(load_policy(policy_file), region, Path(audit_log) if audit_log else None, writer)


@dataclass(frozen=True)
class Misplaced:
    """A file found outside the storage of its region."""

    path: Path
    real: Path
    region: str | None
    found_in: str | None

    def __str__(self) -> str:
        if self.region is None:
            return f"`{self.path}`: no region known for it (no --region, no spec.json above it)"
        where = f"region `{self.found_in}`" if self.found_in else "no region"
        return f"`{self.path}` -> `{self.real}` lies in {where}, not in region `{self.region}`"


def _declared_region(path: Path, top: Path) -> str | None:
    """The sink region of the experiment whose `spec.json` is nearest above `path` (within `top`)."""
    for folder in path.parents:
        spec = folder / "spec.json"
        if spec.is_file():
            try:
                region = json.loads(spec.read_text(encoding="utf-8"))["logging"]["sink"]["region"]
            except (OSError, ValueError, KeyError, TypeError):
                return None
            return str(region)
        if folder == top:
            return None
    return None


def _files(top: Path) -> Iterator[Path]:
    for folder, _dirs, names in os.walk(top, followlinks=True):
        for name in names:
            yield Path(folder) / name


def scan(
    directory: str | os.PathLike[str], policy: RegionPolicy, region: str | None = None
) -> list[Misplaced]:
    """Every file under `directory` whose real path lies outside its region's roots.

    Args:
        directory: the folder to scan (symlinks followed).
        policy: the region policy.
        region: the region every file belongs to; default: per experiment folder, the
            sink region of its `spec.json`.

    Raises:
        ResidencyError: `region` is not in the policy.
    """
    top = Path(directory)
    if region is not None:
        policy.roots(region)
    found = []
    for path in sorted(_files(top)):
        wanted = region or _declared_region(path, top)
        if wanted is not None and wanted in policy.regions and policy.allows(path, wanted):
            continue
        real = Path(os.path.realpath(path))
        found.append(Misplaced(path, real, wanted, policy.region_of(real)))
    return found
