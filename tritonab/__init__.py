"""tritonab: A/B experiments, canary and blue-green rollouts on NVIDIA Triton."""

from tritonab._version import __version__
from tritonab.errors import TritonABError

__all__ = ["TritonABError", "__version__"]
