"""Planning a scoring run: what to score with, from which columns, and which parts remain.

Everything that can be refused is refused here, before any batch is scored: unknown
models, artifacts that differ from their manifests, columns that do not fit the model,
an output folder holding parts of another run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonab.bulk._columns import bind_inputs, check_columns, check_unit_column
from tritonab.bulk._input import Fragment, InputSet
from tritonab.bulk._model import PinnedModel, identity_digest, pin_model
from tritonab.bulk._output import existing_parts, make_layout, part_key, part_name
from tritonab.bulk._scorer import Job
from tritonab.ensembles.config import get_parameter
from tritonab.ensembles.repository import ROUTER_PARAMETER, ModelEntry, load_repository
from tritonab.errors import BulkError, RepositoryError
from tritonab.splitter.spec import Experiment, load_spec, spec_from_json

KEY_FORMAT = 1

Features = Sequence[str] | Mapping[str, Sequence[str]]


def repository_models(repository: str | os.PathLike[str]) -> dict[str, ModelEntry]:
    """Every model of the repository.

    Raises:
        BulkError: the repository cannot be read.
    """
    try:
        return load_repository(repository)
    except RepositoryError as exc:
        raise BulkError(str(exc)) from exc


def load_experiment(
    source: str | os.PathLike[str] | Experiment, models: Mapping[str, ModelEntry]
) -> Experiment:
    """An experiment spec: given, read from a YAML file, or the spec a router of the
    repository serves (its `experiment` config parameter), so offline assignment is
    the router's own.

    Raises:
        SpecError: an invalid spec file.
        BulkError: neither a file nor a router of the repository.
    """
    if isinstance(source, Experiment):
        return source
    if Path(source).is_file():
        return load_spec(source)
    entry = models.get(str(source))
    if entry is not None and entry.kind == "router":
        return spec_from_json(get_parameter(entry.config, ROUTER_PARAMETER) or "")
    routers = sorted(name for name, e in models.items() if e.kind == "router")
    raise BulkError(
        f"experiment `{source}` is neither a spec file nor a router of the repository (routers: {routers})"
    )


def pin_targets(
    models: Mapping[str, ModelEntry],
    model: str | None,
    version: int,
    experiment: Experiment | None,
    *,
    served: bool = False,
) -> tuple[PinnedModel, ...]:
    """The pinned model, or one per experiment variant (spec order); `served` when a
    server scores them (see `pin_model`).

    Raises:
        BulkError: see `pin_model`; variants whose signatures differ.
        SpecError: variants that do not fit the repository (field paths).
    """
    if experiment is None:
        if model is None:
            raise BulkError("name a model to score, or an experiment")
        return (pin_model(models, model, version, served=served),)
    from tritonab.ensembles.build import check_spec

    check_spec(experiment, {k: v for k, v in models.items() if k != experiment.name})
    return tuple(pin_model(models, v.model, v.version, served=served) for v in experiment.variants)


def features_by_input(features: Features | None, model: PinnedModel) -> dict[str, tuple[str, ...]]:
    """`features` as input name -> columns (a plain list feeds the model's only input).

    Raises:
        BulkError: a plain list for a model with several inputs.
    """
    if not features:
        return {}
    if isinstance(features, Mapping):
        return {name: tuple(columns) for name, columns in features.items()}
    if len(model.inputs) != 1:
        names = [t.name for t in model.inputs]
        raise BulkError(
            f"model `{model.name}` has inputs {names}: name the input of each feature list (INPUT=COL,...)"
        )
    return {model.inputs[0].name: tuple(features)}


def make_job(
    targets: tuple[PinnedModel, ...],
    experiment: Experiment | None,
    unit_column: str | None,
    inputs: InputSet,
    features: Features | None,
    keep: Sequence[str],
    batch_size: int,
) -> tuple[Job, tuple[str, ...]]:
    """The job, and the input columns it reads (in order, each once).

    Raises:
        BulkError: columns that do not fit (see `_columns`), clashing output names.
    """
    if batch_size < 1:
        raise BulkError(f"batch size must be at least 1, got {batch_size}")
    first = targets[0]
    bindings = bind_inputs(first.inputs, inputs.schema, features_by_input(features, first))
    kept = check_columns(inputs.schema, keep, "to keep")
    if experiment is not None:
        if not unit_column:
            raise BulkError(f"experiment `{experiment.name}` needs a unit column (one unit id per row)")
        check_unit_column(inputs.schema, unit_column)
    layout = make_layout([inputs.schema.field(k) for k in kept], first.outputs, experiment is not None)
    job = Job(
        targets=targets,
        experiment=experiment,
        unit_column=unit_column if experiment is not None else None,
        bindings=bindings,
        layout=layout,
        batch_size=batch_size,
        part_starts=tuple(f.first_row for f in inputs.fragments),
        part_labels=tuple(f"part `{part_name(f.index)}` (input `{f.name}`)" for f in inputs.fragments),
    )
    wanted = [c for b in bindings for c in b.columns] + list(kept)
    if job.unit_column:
        wanted.append(job.unit_column)
    return job, tuple(dict.fromkeys(wanted))


def job_identity(job: Job, input_format: str) -> dict[str, Any]:
    """What determines a part's content besides its input fragment (not the engine: every
    engine gives the same predictions)."""
    experiment = job.experiment
    return {
        "format": KEY_FORMAT,
        "models": [t.identity() for t in job.targets],
        "experiment": None
        if experiment is None
        else {
            "name": experiment.name,
            "salt": experiment.effective_salt,
            "variants": [v.model_dump(mode="json") for v in experiment.variants],
            "unit_column": job.unit_column,
        },
        "inputs": [b.describe() for b in job.bindings],
        "keep": [f.name for f in job.layout.keep],
        "batch_size": job.batch_size,
        "input_format": input_format,
    }


def fragment_key(job_digest: str, fragment: Fragment) -> dict[str, Any]:
    """The key a part's footer carries."""
    return {"job": job_digest, "part": fragment.index, "input": fragment.describe()}


@dataclass(frozen=True)
class ResumePlan:
    """Which parts are done (their key matches) and which remain, in input order."""

    done: tuple[Fragment, ...]
    pending: tuple[Fragment, ...]
    replaced: tuple[Path, ...]


def plan_resume(folder: Path, inputs: InputSet, job_digest: str, *, overwrite: bool) -> ResumePlan:
    """Compare the parts already in `folder` with what this run would write.

    Raises:
        BulkError: without `overwrite`, a part written by another run (another model,
            input or options), or more parts than the input has fragments.
    """
    existing = existing_parts(folder)
    done, pending, replaced = [], [], []
    for fragment in inputs.fragments:
        path = existing.pop(fragment.index, None)
        if path is None:
            pending.append(fragment)
        elif part_key(path) == fragment_key(job_digest, fragment):
            done.append(fragment)
        elif overwrite:
            pending.append(fragment)
            replaced.append(path)
        else:
            raise BulkError(
                f"`{path}` was written by another run (another model, input or options): score "
                "into a new output folder, or replace what differs (`--overwrite`)"
            )
    if existing and not overwrite:
        raise BulkError(
            f"output folder `{folder}` holds parts {sorted(p.name for p in existing.values())} beyond "
            f"the input's {len(inputs.fragments)} file(s): another input wrote them; use a new folder "
            "or `--overwrite`"
        )
    replaced += existing.values()
    return ResumePlan(tuple(done), tuple(pending), tuple(replaced))


def digest(value: Any) -> str:
    """sha256 of a JSON value's canonical form."""
    return identity_digest(value)
