from tritonab.backends.router import TritonPythonModel  # noqa: F401
