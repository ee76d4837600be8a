"""Feature-transform model for the Python backend: `<version>/transform.json` applied to
its single input; used as the first step of an ensemble `transform -> model`."""

from __future__ import annotations

import numpy as np

from tritonab.backends import _triton as tb
from tritonab.backends._batching import concat_rows, split_rows
from tritonab.backends._transform import load_transform


class TritonPythonModel:
    """Triton entry point; the transform's `model.py` re-exports this class."""

    def initialize(self, args: dict) -> None:
        config = tb.model_config(args)
        params = tb.config_parameters(config)
        self.spec = load_transform(tb.version_dir(args) / params.get("transform_file", "transform.json"))
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        self.dtypes = tb.output_dtypes(config)

    def execute(self, requests):
        inputs = [tb.request_inputs(r, [self.input_name]) for r in requests]
        try:
            batch, offsets = concat_rows(inputs)
            outputs = split_rows({self.output_name: self.spec.apply(batch[self.input_name])}, offsets)
        except Exception:  # one bad request must fail alone: redo them one by one
            outputs = [self._one(i) for i in inputs]
        return [
            tb.error_response(str(o), invalid_argument=True)
            if isinstance(o, Exception)
            else tb.ok_response(o, self.dtypes)
            for o in outputs
        ]

    def _one(self, inputs: dict[str, np.ndarray]):
        try:
            return {self.output_name: self.spec.apply(inputs[self.input_name])}
        except Exception as exc:  # reported in this request's own response
            return exc
