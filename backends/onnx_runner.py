"""Python-backend model that serves `model.onnx` with onnxruntime.

For servers without the native `onnxruntime` backend (the embedded Triton). All
requests of a dynamic batch run as one onnxruntime call. Config parameters:
`onnx_file` (default `model.onnx`), `intra_op_threads` (default 1),
`use_gpu` (`auto`|`true`|`false`). An encrypted artifact (`model.onnx.enc`) is
decrypted in memory with the key file named by `$TRITONAB_MODEL_KEY_FILE` (set in the
server's environment); a wrong key or a tampered file fails the load, naming the file.
A version folder holding the other form (`model.onnx` where the config names
`model.onnx.enc`, or the reverse: versions converted with and without encryption) is
served from the file it has.
"""

from __future__ import annotations

from tritonab.backends import _triton as tb
from tritonab.backends._onnx import OnnxModel, default_providers


class TritonPythonModel:
    """Triton entry point; the repository's `model.py` re-exports this class."""

    def initialize(self, args: dict) -> None:
        config = tb.model_config(args)
        params = tb.config_parameters(config)
        path = tb.version_dir(args) / params.get("onnx_file", "model.onnx")
        if not path.exists():
            other = path.with_name(path.name[:-4] if path.name.endswith(".enc") else f"{path.name}.enc")
            path = other if other.exists() else path
        use_gpu = {"true": True, "false": False}.get(params.get("use_gpu", "auto").lower())
        if args.get("model_instance_kind") == "CPU":
            use_gpu = False
        device = int(args.get("model_instance_device_id", 0) or 0)
        self.input_names = [i["name"] for i in config.get("input", [])]
        self.dtypes = tb.output_dtypes(config)
        self.model = OnnxModel(
            path,
            providers=default_providers(device, use_gpu=use_gpu),
            intra_op_threads=int(params.get("intra_op_threads", "1")),
            output_dims=tb.output_dims(config),
            config_inputs=self.input_names,
        )

    def execute(self, requests):
        inputs = [tb.request_inputs(r, self.input_names) for r in requests]
        results = self.model.run_requests(inputs)
        return [
            tb.error_response(f"onnxruntime: {r}")
            if isinstance(r, Exception)
            else tb.ok_response(r, self.dtypes)
            for r in results
        ]
