"""Run an ONNX model with onnxruntime, batched over several requests (no Triton here).

An artifact encrypted at rest (`model.onnx.enc`, see `tritonab.converters`) is
decrypted in memory with the data key named by `$TRITONAB_MODEL_KEY_FILE` and handed to
onnxruntime as bytes: the plaintext graph never touches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tritonab.backends._batching import concat_rows, split_rows
from tritonab.errors import SecurityError, TritonABError
from tritonab.security import ARTIFACT_CONTEXT, MODEL_KEY_ENV, is_sealed, key_from_env, open_sealed


def gpu_available() -> bool:
    """True when an NVIDIA GPU is visible (onnxruntime lists CUDA even without one)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvidiactl"))


def default_providers(device_id: int = 0, *, use_gpu: bool | None = None) -> list:
    """CUDA then CPU where a GPU is present, CPU alone otherwise."""
    import onnxruntime as ort

    if use_gpu is None:
        use_gpu = gpu_available()
    if use_gpu and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxModel:
    """An onnxruntime session whose outputs are reshaped to the Triton config's dims."""

    def __init__(
        self,
        path: str | os.PathLike[str] | bytes,
        *,
        providers: list | None = None,
        intra_op_threads: int = 1,
        output_dims: dict[str, tuple[int, ...]] | None = None,
        config_inputs: list[str] | None = None,
        source: str | None = None,
    ) -> None:
        """`path` is the model file, or its bytes already read (and verified) by the caller,
        named `source` in messages; `intra_op_threads=0` lets onnxruntime use every core."""
        import onnxruntime as ort

        label = source or ("<model bytes>" if isinstance(path, bytes) else os.fspath(path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        # A file is read through `model_bytes`; an encrypted graph, read here or handed
        # over as bytes (bulk scoring verifies the ciphertext first), is decrypted in memory.
        model = unseal_model(path, label) if isinstance(path, bytes) else model_bytes(path)
        try:
            self.session = ort.InferenceSession(
                model, sess_options=options, providers=providers or default_providers()
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise TritonABError(f"`{label}`: onnxruntime cannot load the model: {exc}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.output_dims = dict(output_dims or {})
        self.feed = _feed_map(config_inputs or self.input_names, self.input_names, label)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One batched run; outputs reshaped to `(batch, *dims)` where dims are known."""
        values = self.session.run(self.output_names, {g: inputs[c] for c, g in self.feed.items()})
        outputs = dict(zip(self.output_names, values))
        batch = len(next(iter(inputs.values()))) if inputs else 0
        for name, dims in self.output_dims.items():
            if name in outputs:
                outputs[name] = np.asarray(outputs[name]).reshape((batch, *dims))
        return outputs

    def run_requests(
        self, per_request: Sequence[dict[str, np.ndarray]]
    ) -> list[dict[str, np.ndarray] | Exception]:
        """Run many requests as one batch; a failing batch is retried request by request
        so that one bad request fails alone."""
        if len(per_request) == 1:
            return [self._run_one(per_request[0])]
        try:
            batch, offsets = concat_rows(per_request)
            return list(split_rows(self.run(batch), offsets))
        except Exception:  # isolate the culprit
            return [self._run_one(r) for r in per_request]

    def _run_one(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray] | Exception:
        try:
            return self.run(inputs)
        except Exception as exc:  # one request's failure is its own response
            return exc


def model_bytes(path: str | os.PathLike[str]) -> bytes:
    """The ONNX graph at `path`, decrypted in memory when it is encrypted at rest.

    Raises:
        TritonABError: the file cannot be read.
        SecurityError: encrypted, and no key (`$TRITONAB_MODEL_KEY_FILE`), another key, or
            a file that fails AES-GCM authentication (tampered).
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise TritonABError(f"`{path}`: cannot read the model: {exc.strerror}") from None
    return unseal_model(data, os.fspath(path))


def unseal_model(data: bytes, what: str) -> bytes:
    """`data` itself, or, when it is an encrypted artifact, the graph decrypted in memory
    with the data key named by `$TRITONAB_MODEL_KEY_FILE`.

    Raises:
        SecurityError: encrypted, and no key, another key, or a tampered file (`what`
            names it).
    """
    if not is_sealed(data):
        return data
    key = key_from_env(MODEL_KEY_ENV, purpose="data")
    if key is None:
        raise SecurityError(f"`{what}` is encrypted: set ${MODEL_KEY_ENV} to the data key file")
    return open_sealed(key, data, context=ARTIFACT_CONTEXT, what=what)


def _feed_map(config_inputs: list[str], graph_inputs: list[str], path) -> dict[str, str]:
    """Config input name -> graph input name: by name when they agree, else by position."""
    if set(config_inputs) == set(graph_inputs):
        return {n: n for n in graph_inputs}
    if len(config_inputs) == len(graph_inputs):
        return dict(zip(config_inputs, graph_inputs))
    raise TritonABError(f"`{path}`: the config has inputs {config_inputs} but the graph takes {graph_inputs}")
