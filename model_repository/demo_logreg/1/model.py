from tritonab.backends.onnx_runner import TritonPythonModel  # noqa: F401
