"""Small helpers shared by the Python-backend adapters; imported only inside Triton."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from tritonab.backends._batching import as_config_dtypes
from tritonab.backends._routing import parse_parameters, read_text


def model_config(args: dict) -> dict:
    """The model's config as a dict (Triton passes it as JSON)."""
    return json.loads(args["model_config"])


def config_parameters(config: dict) -> dict[str, str]:
    """`parameters { key ... value { string_value } }` as a plain dict."""
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


def version_dir(args: dict) -> Path:
    """The folder of the version being loaded (`<repository>/<version>`)."""
    return Path(args["model_repository"]) / str(args["model_version"])


def output_dtypes(config: dict) -> dict[str, np.dtype]:
    """numpy dtype per output name, read once in `initialize`."""
    return {o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in config.get("output", [])}


def output_dims(config: dict) -> dict[str, tuple[int, ...]]:
    """Config dims per output (without the batch dim)."""
    return {o["name"]: tuple(int(d) for d in o.get("dims", [])) for o in config.get("output", [])}


def request_inputs(request, names) -> dict[str, np.ndarray]:
    """The named input tensors of a request as numpy arrays (missing ones skipped)."""
    arrays = {}
    for name in names:
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is not None:
            arrays[name] = tensor.as_numpy()
    return arrays


def request_parameters(request) -> dict:
    """Request parameters (tritonclient `parameters=`), always a dict; undecodable ones
    give a dict the router refuses (`_routing.parse_parameters`)."""
    return parse_parameters(request.parameters)


def request_id(request) -> str:
    """The request's id ("" when it is not valid UTF-8)."""
    return read_text(request.request_id)


def ok_response(outputs: dict[str, np.ndarray], dtypes: dict[str, np.dtype]):
    """An InferenceResponse with each output cast to its configured dtype."""
    tensors = [pb_utils.Tensor(name, value) for name, value in as_config_dtypes(outputs, dtypes).items()]
    return pb_utils.InferenceResponse(output_tensors=tensors)


def error_response(message: str, *, invalid_argument: bool = False):
    """An InferenceResponse carrying an error (INVALID_ARG for bad input)."""
    code = pb_utils.TritonError.INVALID_ARG if invalid_argument else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
