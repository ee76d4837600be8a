from tritonab.backends.transform import TritonPythonModel  # noqa: F401
