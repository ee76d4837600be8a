"""Fixtures shared by the unit and integration tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def encrypted_conversion():
    """`encrypted_conversion(root, name, max_batch_size)`: a breast-cancer classifier (scaler
    and logistic regression) converted into `root/repo` as `name`, encrypted at rest with a
    new data key `root/model.key`. Gives `repo`, `key`, `key_file`, `estimator`, `x` (the
    float32 features) and `result` (the conversion)."""

    def make(root: Path, name: str, max_batch_size: int) -> SimpleNamespace:
        import numpy as np
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from tritonab.converters import convert
        from tritonab.security import generate_key

        x, y = load_breast_cancer(return_X_y=True)
        x = x.astype(np.float32)
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
        key = generate_key(root / "model.key")
        result = convert(
            estimator,
            name=name,
            repository=root / "repo",
            sample_input=x,
            max_batch_size=max_batch_size,
            encrypt_key=root / "model.key",
        )
        return SimpleNamespace(
            repo=root / "repo", key=key, key_file=root / "model.key", estimator=estimator, x=x, result=result
        )

    return make
