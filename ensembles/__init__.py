"""Model repository tools: `config.pbtxt` I/O, router/ensemble building, validation."""

from tritonab.ensembles.build import (
    build_chain,
    build_router,
    build_transform,
    check_spec,
    router_config,
)
from tritonab.ensembles.config import (
    ModelConfig,
    TensorSpec,
    format_config,
    parse_config,
    read_config,
    write_config,
)
from tritonab.ensembles.repository import ModelEntry, load_model, load_repository
from tritonab.ensembles.validate import Problem, validate_repository

__all__ = [
    "ModelConfig",
    "ModelEntry",
    "Problem",
    "TensorSpec",
    "build_chain",
    "build_router",
    "build_transform",
    "check_spec",
    "format_config",
    "load_model",
    "load_repository",
    "parse_config",
    "read_config",
    "router_config",
    "validate_repository",
    "write_config",
]
