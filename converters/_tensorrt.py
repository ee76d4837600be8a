"""TensorRT: plan builds with the `tensorrt` Python API, plan runs for parity, and the
ONNX Runtime TensorRT execution-accelerator settings.

Written against TensorRT 10 (explicit batch is the default there; FP16 and INT8
are builder flags). TensorRT 11 removed those flags in favour of strongly typed
networks, so there the precision is put into the graph first (`_precision`) and
the network is created STRONGLY_TYPED. INT8 uses Q/DQ nodes calibrated on the
sample in both versions (explicit quantisation), so no device-side calibrator
is needed. `tensorrt` is imported lazily: it needs a GPU and is optional.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from tritonab.backends._onnx import gpu_available
from tritonab.converters._graph import GraphTensor
from tritonab.converters._precision import to_fp16, to_int8_qdq
from tritonab.errors import ConversionError

DEFAULT_WORKSPACE_MB = 1024


@dataclass(frozen=True)
class BuildOptions:
    """Plan build settings: precision, batch profile, workspace and timing cache."""

    precision: str = "fp32"
    max_batch_size: int = 64
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None


def require_tensorrt():
    """The `tensorrt` module, when a GPU and the package are both present.

    Raises:
        ConversionError: no NVIDIA GPU, or the `tensorrt` package is not installed.
    """
    if not gpu_available():
        raise ConversionError(
            "the TensorRT target needs an NVIDIA GPU, and none is visible here: "
            "convert with --to onnx, or run on a GPU machine"
        )
    try:
        import tensorrt
    except ImportError:
        raise ConversionError(
            "the TensorRT target needs the `tensorrt` Python package: pip install tensorrt"
        ) from None
    return tensorrt


def _major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def _strongly_typed(trt) -> bool:
    """TensorRT 11+ has no FP16 builder flag: precision must come from the graph."""
    return not hasattr(trt.BuilderFlag, "FP16")


def prepare_graph(
    model: onnx.ModelProto, precision: str, feeds: dict[str, np.ndarray], label: str
) -> onnx.ModelProto:
    """The graph to parse: Q/DQ for INT8 always; FP16 casts only where TensorRT is typed."""
    if precision == "int8":
        return to_int8_qdq(model, feeds, label)
    trt = require_tensorrt()
    if precision == "fp16" and _strongly_typed(trt):
        return to_fp16(model, label)
    return model


def _parse(trt, builder, logger, model: onnx.ModelProto, label: str):
    flags = 0
    if _strongly_typed(trt):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    elif _major(trt) < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.SerializeToString()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConversionError(f"`{label}`: TensorRT cannot parse the ONNX graph: {errors}")
    return network, parser


def _profile(builder, network, inputs: list[GraphTensor], feeds: dict[str, np.ndarray], max_batch: int):
    """min/opt/max shapes: batch 1 / half of max / max; other dims from the sample."""
    profile = builder.create_optimization_profile()
    specs = {t.name: t for t in inputs}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        sample = feeds[tensor.name].shape
        if max_batch > 0 and specs[tensor.name].shape and specs[tensor.name].shape[0] is None:
            rest = tuple(sample[1:])
            shapes = ((1, *rest), (max(1, max_batch // 2), *rest), (max_batch, *rest))
        else:
            shapes = (tuple(sample),) * 3
        profile.set_shape(tensor.name, *shapes)
    return profile


def build_plan(
    model: onnx.ModelProto,
    inputs: list[GraphTensor],
    feeds: dict[str, np.ndarray],
    options: BuildOptions,
    label: str,
) -> bytes:
    """A serialized TensorRT engine for `model` (already prepared by `prepare_graph`).

    Raises:
        ConversionError: no GPU/TensorRT, a parse failure or a failed build.
    """
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, model, label)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    config.add_optimization_profile(_profile(builder, network, inputs, feeds, options.max_batch_size))
    if not _strongly_typed(trt):
        if options.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)  # explicit Q/DQ quantisation
    cache_path = options.timing_cache
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConversionError(f"`{label}`: the TensorRT build failed (see the TensorRT log)")
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def run_plan(plan: bytes, feeds: dict[str, np.ndarray], label: str) -> dict[str, np.ndarray]:
    """Run a serialized engine once on `feeds` (device buffers through torch CUDA tensors).

    Raises:
        ConversionError: the plan cannot be deserialised, or torch with CUDA is missing.
    """
    trt = require_tensorrt()
    try:
        import torch
    except ImportError:
        raise ConversionError("checking a TensorRT plan needs torch with CUDA") from None
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise ConversionError(f"`{label}`: TensorRT cannot deserialise the plan it built")
    context = engine.create_execution_context()
    keep = {}
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    for name in names:
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            keep[name] = torch.from_numpy(np.ascontiguousarray(feeds[name].astype(dtype))).cuda()
            context.set_input_shape(name, tuple(feeds[name].shape))
            context.set_tensor_address(name, keep[name].data_ptr())
    outputs = {}
    for name in names:
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            shape = tuple(context.get_tensor_shape(name))
            outputs[name] = torch.empty(shape, dtype=_torch_dtype(torch, dtype), device="cuda")
            context.set_tensor_address(name, outputs[name].data_ptr())
    stream = torch.cuda.Stream()
    if not context.execute_async_v3(stream.cuda_stream):
        raise ConversionError(f"`{label}`: the TensorRT plan failed to run on the sample")
    stream.synchronize()
    return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}


def _torch_dtype(torch, dtype: np.dtype):
    return torch.from_numpy(np.zeros(1, dtype=dtype)).dtype


def accelerator_parameters(
    precision: str, *, workspace_mb: int = DEFAULT_WORKSPACE_MB, cache_engines: bool = True
) -> dict[str, str]:
    """Parameters of the onnxruntime backend's `tensorrt` GPU execution accelerator.

    INT8 relies on the Q/DQ nodes that `--int8` puts into the graph.
    """
    params = {
        "precision_mode": {"fp16": "FP16", "int8": "INT8"}.get(precision, "FP32"),
        "max_workspace_size_bytes": str(workspace_mb << 20),
    }
    if cache_engines:
        params["trt_engine_cache_enable"] = "1"
        params["trt_engine_cache_path"] = "/tmp/triton_trt_cache"
    return params
