"""Files a user writes (experiment, rollout, transform and gate specs): YAML in, pydantic out.

Every room that reads such a file goes through these three helpers, so every bad file
gives the same kind of error: one line per problem, `source: field.path: message`,
raised as the calling room's own error type.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tritonab.errors import SpecError, TritonABError

M = TypeVar("M", bound=BaseModel)


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: `source: variants[1].weight: message`."""
    lines = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {path}: {message}" if path else f"{source}: {message}")
    return "\n".join(lines)


def validate_mapping(model: type[M], data: Any, *, source: str, error: type[TritonABError] = SpecError) -> M:
    """Validate parsed YAML/JSON `data` as the pydantic `model`.

    Args:
        model: the pydantic model to validate against.
        data: the parsed document.
        source: how messages name the document (a file in backticks, a parameter).
        error: the error type to raise.

    Returns:
        The validated model.

    Raises:
        `error`: not a mapping, or every problem, each with its field path.
    """
    if not isinstance(data, dict):
        raise error(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_error(exc, source)) from exc


def read_yaml(path: str | os.PathLike[str], *, error: type[TritonABError] = SpecError) -> Any:
    """Parse a YAML (or JSON) file.

    Args:
        path: the file.
        error: the error type to raise.

    Returns:
        The parsed document (any YAML value).

    Raises:
        `error`: unreadable file or bad YAML, naming the file.
    """
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"`{target}`: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"`{target}`: not UTF-8 text: {exc.reason}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"`{target}`: not valid YAML: {yaml_problem(exc)}") from exc


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's complaint on one line: `line 2, column 1: expected ...`."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"
