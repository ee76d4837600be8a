"""Shared fitted models and data for the converter tests (small, fitted once)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="session")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)


@pytest.fixture(scope="session")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


@pytest.fixture(scope="session")
def wine() -> tuple[np.ndarray, np.ndarray]:
    return load_wine(return_X_y=True)


@pytest.fixture(scope="session")
def classifier(cancer):
    """A pipeline with preprocessing: scaler + logistic regression."""
    X, y = cancer
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)


@pytest.fixture(scope="session")
def regressor(diabetes):
    """A small tree ensemble."""
    X, y = diabetes
    return GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, y)


@pytest.fixture
def listing():
    """Every path under a folder, relative and sorted (to check that nothing was written)."""

    def _listing(root) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*"))

    return _listing
