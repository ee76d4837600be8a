"""Converted models served by the real Triton (embedded, Python-backend ONNX runner).

The models are written by `convert` into the session repository and loaded on the
session server; every model is called over gRPC and must agree with its scikit-learn
source within tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from tritonab.converters import convert, verify_manifest

pytestmark = pytest.mark.integration


def _models():
    cancer_x, cancer_y = load_breast_cancer(return_X_y=True)
    diab_x, diab_y = load_diabetes(return_X_y=True)
    wine_x, wine_y = load_wine(return_X_y=True)
    iris_x, iris_y = load_iris(return_X_y=True)
    species = np.array(["setosa", "versicolor", "virginica"])[iris_y]
    return {
        "cancer_lr": (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(cancer_x, cancer_y),
            cancer_x,
        ),
        "diabetes_gbr": (
            GradientBoostingRegressor(n_estimators=20, random_state=0).fit(diab_x, diab_y),
            diab_x,
        ),
        "diabetes_ridge": (make_pipeline(StandardScaler(), Ridge()).fit(diab_x, diab_y), diab_x),
        "wine_forest": (
            RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(wine_x, wine_y),
            wine_x,
        ),
        "iris_tree": (DecisionTreeClassifier(max_depth=3, random_state=0).fit(iris_x, species), iris_x),
    }


@pytest.fixture(scope="module")
def served(server, repository, loaded):
    """The converted models, written into the session repository and loaded."""
    models = _models()
    for name, (estimator, x) in models.items():
        convert(estimator, name=name, repository=repository, sample_input=x, max_batch_size=32)
    # A second version of one model: the config stays valid and v2 is served.
    convert(
        models["diabetes_gbr"][0],
        name="diabetes_gbr",
        repository=repository,
        sample_input=models["diabetes_gbr"][1],
        max_batch_size=32,
    )
    with loaded(*models):
        client = grpcclient.InferenceServerClient(server.urls.grpc)
        try:
            yield client, models, repository
        finally:
            client.close()


def _infer(client, name: str, x: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
    tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer(name, [tensor], outputs=[grpcclient.InferRequestedOutput(o) for o in outputs])
    return {o: result.as_numpy(o) for o in outputs}


@pytest.mark.parametrize("name", ["cancer_lr", "wine_forest"])
def test_classifiers_served(served, name):
    client, models, _repo = served
    estimator, data = models[name]
    x = data[:25].astype(np.float32)
    got = _infer(client, name, x, ["label", "probabilities"])
    assert got["label"].shape == (25, 1)
    np.testing.assert_array_equal(got["label"].ravel(), estimator.predict(x))
    np.testing.assert_allclose(got["probabilities"], estimator.predict_proba(x), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("name", ["diabetes_gbr", "diabetes_ridge"])
def test_regressors_served(served, name):
    client, models, _repo = served
    estimator, data = models[name]
    x = data[-17:].astype(np.float32)
    got = _infer(client, name, x, ["variable"])["variable"]
    assert got.shape == (17, 1)
    np.testing.assert_allclose(got.ravel(), estimator.predict(x), atol=1e-4, rtol=1e-3)


def test_second_version_is_the_one_served(served):
    client, _models, repo = served
    assert client.is_model_ready("diabetes_gbr", "2")
    assert not client.is_model_ready("diabetes_gbr", "1")
    for version in ("1", "2"):
        assert verify_manifest(repo / "diabetes_gbr" / version) == []


def test_string_labels_served(served):
    client, models, _repo = served
    estimator, data = models["iris_tree"]
    x = data[::10].astype(np.float32)
    got = _infer(client, "iris_tree", x, ["label"])["label"]
    assert [v.decode() for v in got.ravel()] == list(estimator.predict(x))
