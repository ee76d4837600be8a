"""Bulk scoring: pinned model versions over Parquet or CSV, offline.

The same artifacts and transforms the server runs, evaluated by the same code
(`backends`), each artifact's sha256 checked against its manifest first. Output:
one Parquet part per input file, resumable, byte-identical across runs, plus
`_manifest.json`. Engines: `local` (in-process, the default), `ray` (Ray Data, past
one machine), `triton` (a live server).

Example:
    >>> from tritonab.bulk import score  # doctest: +SKIP
    >>> result = score("model_repository", "demo_gbt", input="x.parquet", output="out")
    >>> result.rows, result.parts_written, result.rows_per_second
"""

from tritonab.bulk._artifacts import Artifact
from tritonab.bulk._engines import ENGINES, Engine, EngineName, LocalEngine
from tritonab.bulk._input import FORMATS, Format, Fragment, InputSet, open_input
from tritonab.bulk._model import EnsembleStep, PinnedModel, Runner, pin_model
from tritonab.bulk._output import MANIFEST
from tritonab.bulk._plan import repository_models
from tritonab.bulk._score import DEFAULT_BATCH_SIZE, PartResult, ScoreResult, score

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ENGINES",
    "FORMATS",
    "MANIFEST",
    "Artifact",
    "Engine",
    "EngineName",
    "EnsembleStep",
    "Format",
    "Fragment",
    "InputSet",
    "LocalEngine",
    "PartResult",
    "PinnedModel",
    "Runner",
    "ScoreResult",
    "open_input",
    "pin_model",
    "repository_models",
    "score",
]
