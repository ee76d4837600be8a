"""Canonical source fingerprints: equal models hash equal in any process, different ones differ."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tritonab.converters._fingerprint import fingerprint
from tritonab.converters._sources import from_object
from tritonab.errors import ConversionError

X = np.random.default_rng(0).normal(size=(80, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)

SCRIPT = """
import pickle, hashlib, sys
import numpy as np
from sklearn.preprocessing import StandardScaler
from tritonab.converters._fingerprint import fingerprint
scaler = StandardScaler().fit(np.arange(12.0).reshape(6, 2))
scaler.feature_tags_ = {"age", "income", "region", "score", "tenure"}  # a set: order varies by seed
print(fingerprint(scaler), hashlib.sha256(pickle.dumps(scaler, protocol=4)).hexdigest())
"""


def test_a_round_trip_through_pickle_keeps_the_fingerprint():
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    assert fingerprint(pickle.loads(pickle.dumps(model))) == fingerprint(model)


def test_parameters_and_fitted_state_both_count():
    base = LogisticRegression(C=1.0).fit(X, Y)
    assert fingerprint(LogisticRegression(C=0.5).fit(X, Y)) != fingerprint(base)
    refit = LogisticRegression(C=1.0).fit(X[:60], Y[:60])
    assert fingerprint(refit) != fingerprint(base)
    assert fingerprint(LogisticRegression(C=1.0)) != fingerprint(base)  # unfitted


def test_how_an_estimator_ran_does_not_count():
    one = RandomForestClassifier(n_estimators=4, random_state=0, n_jobs=1).fit(X, Y)
    two = RandomForestClassifier(n_estimators=4, random_state=0, n_jobs=2).fit(X, Y)
    assert fingerprint(one) == fingerprint(two)


def test_mappings_and_sets_do_not_depend_on_order():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"x", "y", "z"}) == fingerprint({"z", "y", "x"})
    assert fingerprint([1, 2]) != fingerprint([2, 1]) != fingerprint((1, 2))


def test_every_bit_of_a_value_counts():
    assert fingerprint(0.0) != fingerprint(-0.0)
    assert fingerprint(np.float32(0.1)) != fingerprint(0.1)
    assert fingerprint(np.zeros(3, ">f8")) == fingerprint(np.zeros(3, "<f8"))
    assert fingerprint(np.zeros(3)) != fingerprint(np.zeros((3, 1)))
    assert fingerprint(float("nan")) == fingerprint(float("nan"))


def test_the_fingerprint_is_the_same_under_any_hash_seed():
    seen = set()
    pickles = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, env=env, timeout=120
        )
        digest, pickled = out.stdout.split()
        seen.add(digest)
        pickles.add(pickled)
    assert len(seen) == 1
    assert len(pickles) > 1  # what the old pickle-based identity would have recorded


def test_an_estimator_source_gets_its_fingerprint():
    model = LogisticRegression().fit(X, Y)
    assert from_object(model).sha256 == fingerprint(model)


def test_torch_modules_hash_their_weights():
    import torch  # an optional extra of the package, installed by `make test`

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU())
    same = pickle.loads(pickle.dumps(net))
    assert fingerprint(same) == fingerprint(net)
    with torch.no_grad():
        same[0].bias += 1
    assert fingerprint(same) != fingerprint(net)
    assert from_object(net).sha256 == fingerprint(net)


def test_an_object_that_cannot_be_serialised_is_named():
    with pytest.raises(ConversionError, match="cannot fingerprint a `_thread.lock`"):
        fingerprint({"lock": threading.Lock()})
