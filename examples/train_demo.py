"""Train the demo's two variants on scikit-learn's breast-cancer data and lay them out
in a Triton model repository (the checked-in `model_repository/` is this script's output).

    .venv/bin/python examples/train_demo.py [--repository model_repository]

control   = ensemble `demo_logreg_pipeline`: transform `demo_scaler` (standardise, clip
            at 5 sigma) -> `demo_logreg` (logistic regression, ONNX)
treatment = `demo_gbt` (gradient-boosted trees, ONNX)
router    = `demo_ab` from `examples/experiment.yaml`

Reproducible: fixed seeds, BLAS and OpenMP held to one thread while fitting (a
multi-threaded BLAS sums in another order, and the fitted coefficients differ in their
last bits), manifests dated by SOURCE_DATE_EPOCH (set below when unset) and canonical
source fingerprints, so rebuilding gives the same files in any process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tritonab.backends import TransformSpec
from tritonab.converters import convert
from tritonab.ensembles import build_chain, build_router, build_transform, validate_repository
from tritonab.splitter import load_spec

HERE = Path(__file__).resolve().parent
DEMO_EPOCH = "1796083200"  # 2026-12-01T00:00:00Z: fixed so rebuilds give no diff
FEATURES = "input"  # the feature tensor's name in every demo model


def demo_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The breast-cancer data split 70/30 (stratified, seed 0), features as float32."""
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float32), y, test_size=0.3, random_state=0, stratify=y
    )
    return x_train, x_test, y_train, y_test


def build(repository: Path) -> None:
    """Train both variants and write every model of the demo into `repository`."""
    os.environ.setdefault("SOURCE_DATE_EPOCH", DEMO_EPOCH)
    x_train, x_test, y_train, _ = demo_data()
    with threadpool_limits(limits=1):
        scaler = StandardScaler().fit(x_train)
        transform = TransformSpec.from_sklearn_scaler(scaler, clip_sigma=5.0)
        logreg = LogisticRegression(max_iter=2000, random_state=0).fit(transform.apply(x_train), y_train)
        gbt = GradientBoostingClassifier(n_estimators=60, max_depth=2, random_state=0).fit(x_train, y_train)

    repository.mkdir(parents=True, exist_ok=True)
    build_transform("demo_scaler", transform, repository, input_name=FEATURES, output_name="scaled")
    convert(
        logreg,
        name="demo_logreg",
        repository=repository,
        version=1,
        sample_input=transform.apply(x_test),
        force=True,
    )
    convert(gbt, name="demo_gbt", repository=repository, version=1, sample_input=x_test, force=True)
    build_chain("demo_logreg_pipeline", ["demo_scaler", "demo_logreg"], repository)
    build_router(load_spec(HERE / "experiment.yaml"), repository)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default=str(HERE.parent / "model_repository"))
    parser.add_argument("--clean", action="store_true", help="empty the repository first")
    args = parser.parse_args()
    repository = Path(args.repository)
    if args.clean and repository.exists():
        shutil.rmtree(repository)
    build(repository)
    problems = validate_repository(repository)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"wrote the demo repository to {repository} ({'valid' if not problems else 'INVALID'})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
