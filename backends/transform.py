"""Feature-transform model for the Python backend: `<version>/transform.json` applied to
its first input; used as the first step of an ensemble `transform -> model`.

A spec with `feast_lookup` steps opens its feature stores once per model instance, here
in `initialize` (Feast is imported only then), and reads the entity ids from the
inputs the steps name or from the request's `unit_id` parameter; a lookup that fails
fails only its request (`tritonab.backends._feast.FeatureJoin`).
"""

from __future__ import annotations

import numpy as np

from tritonab.backends import _triton as tb
from tritonab.backends._batching import concat_rows, split_rows
from tritonab.backends._routing import RequestError
from tritonab.backends._transform import load_transform


class TritonPythonModel:
    """Triton entry point; the transform's `model.py` re-exports this class."""

    def initialize(self, args: dict) -> None:
        config = tb.model_config(args)
        params = tb.config_parameters(config)
        folder = tb.version_dir(args)
        self.spec = load_transform(folder / params.get("transform_file", "transform.json"))
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        self.dtypes = tb.output_dtypes(config)
        self.join = None
        if self.spec.lookups:
            from tritonab.backends._feast import FeatureJoin

            self.join = FeatureJoin(self.spec, folder)

    def execute(self, requests):
        if self.join is not None:
            outputs = self._with_features(requests)
        else:
            outputs = self._plain(requests)
        return [
            tb.error_response(o.message, invalid_argument=o.invalid_argument)
            if isinstance(o, RequestError)
            else tb.ok_response(o, self.dtypes)
            for o in outputs
        ]

    def _plain(self, requests):
        inputs = [tb.request_inputs(r, [self.input_name]) for r in requests]
        try:
            batch, offsets = concat_rows(inputs)
            return split_rows({self.output_name: self.spec.apply(batch[self.input_name])}, offsets)
        except Exception:  # one bad request must fail alone: redo them one by one
            return [self._one(i) for i in inputs]

    def _one(self, inputs: dict[str, np.ndarray]):
        try:
            return {self.output_name: self.spec.apply(inputs[self.input_name])}
        except Exception as exc:  # reported in this request's own response
            return RequestError(str(exc), invalid_argument=True)

    def _with_features(self, requests):
        from tritonab.backends._feast import TransformRequest

        assert self.join is not None  # execute calls this only with lookups

        names = [self.input_name, *self.spec.entity_inputs]
        items = []
        for request in requests:
            arrays = tb.request_inputs(request, names)
            unit = tb.request_parameters(request).get("unit_id")
            items.append(
                TransformRequest(
                    matrix=arrays.get(self.input_name, np.zeros((0, 0), dtype=np.float32)),
                    entities={n: arrays[n] for n in self.spec.entity_inputs if n in arrays},
                    unit_id=None if unit is None else str(unit),
                )
            )
        return [
            o if isinstance(o, RequestError) else {self.output_name: o} for o in self.join.transform(items)
        ]
