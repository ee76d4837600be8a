"""Experiment specs, assignment and statistics. Pure Python: never imports Triton."""

from tritonab.splitter.assign import BUCKETS, Allocation, assign, bucket, buckets
from tritonab.splitter.spec import Experiment, Shadow, Variant, load_spec, load_spec_dict

__all__ = [
    "BUCKETS",
    "Allocation",
    "Experiment",
    "Shadow",
    "Variant",
    "assign",
    "bucket",
    "buckets",
    "load_spec",
    "load_spec_dict",
]
