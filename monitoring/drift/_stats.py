"""Drift statistics: PSI, Jensen-Shannon distance, two-sample KS, chi-square, domain AUC.

PSI and the Jensen-Shannon distance compare two histograms over the same bins: for a
numeric feature the reference's deciles (10 bins holding about 10% of the reference
each; the outer bins are open, so current values beyond the reference's range count in
them), for a categorical one the reference's categories plus `__other__`.

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i)

with `r_i`, `c_i` the reference and current shares of bin i; a share of 0 on either side
is taken as 0.0001 (0.01%) so PSI stays finite. Conventional reading: below 0.1 no
change, 0.1-0.25 moderate, above 0.25 a major shift. Two samples of the same
distribution, n rows each, give about (bins - 1) * 2 / n on average (0.0036 for 5,000).

The Jensen-Shannon distance is scipy's (`scipy.spatial.distance.jensenshannon`, base 2:
0 for equal histograms, 1 for disjoint ones). The KS statistic and p-value are scipy's
`ks_2samp` (exact or asymptotic, scipy's `auto`) on the raw values; the chi-square test
is scipy's `chi2_contingency` on the 2 x bins table of counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from tritonab.errors import DriftError

PSI_FLOOR = 1e-4


def shares(counts: ArrayLike) -> NDArray[np.float64]:
    """Counts as shares of their total (all zeros when the total is 0)."""
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    return array / total if total > 0 else np.zeros_like(array)


def psi(reference_counts: ArrayLike, current_counts: ArrayLike, *, floor: float = PSI_FLOOR) -> float:
    """Population stability index of two histograms over the same bins."""
    r = np.maximum(shares(reference_counts), floor)
    c = np.maximum(shares(current_counts), floor)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_counts: ArrayLike, current_counts: ArrayLike) -> float:
    """Jensen-Shannon distance (base 2) of two histograms over the same bins."""
    from scipy.spatial.distance import jensenshannon

    r, c = shares(reference_counts), shares(current_counts)
    if not r.any() or not c.any():
        return float("nan")
    return float(jensenshannon(r, c, base=2))


def ks_test(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """scipy's two-sample Kolmogorov-Smirnov statistic and p-value."""
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64))
    return float(result.statistic), float(result.pvalue)


def chi_square_test(reference_counts: ArrayLike, current_counts: ArrayLike) -> tuple[float, float]:
    """scipy's chi-square test of homogeneity on two rows of counts (bins seen on neither
    side left out); (0, 1) when fewer than two bins remain."""
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(reference_counts), np.asarray(current_counts)]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class DomainResult:
    """How well a classifier tells current rows from reference rows (multivariate drift).

    `auc` is the cross-validated ROC AUC (0.5: indistinguishable); `p_value` the
    one-sided Mann-Whitney test of the out-of-fold scores (AUC = U / (n_ref * n_cur)).
    """

    auc: float
    p_value: float
    rows_reference: int
    rows_current: int
    features: tuple[str, ...]


def _design(frames: Sequence[pd.DataFrame], features: Sequence[str]) -> NDArray[np.float64]:
    """Numbers as they are, categories one-hot (over both frames), missing as NaN."""
    both = pd.concat([f[list(features)] for f in frames], ignore_index=True)
    parts = []
    for name in features:
        column = both[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            parts.append(pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)[:, None])
        else:
            dummies = pd.get_dummies(column.astype(str), dtype=np.float64)
            parts.append(dummies.to_numpy())
    return np.hstack(parts)


def domain_classifier(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    *,
    max_rows: int = 2000,
    folds: int = 5,
    seed: int = 0,
) -> DomainResult:
    """Train a gradient-boosted classifier to tell current rows from reference rows.

    Both sides are subsampled to at most `max_rows` rows; the AUC is computed on
    out-of-fold predictions of a stratified `folds`-fold cross-validation.

    Raises:
        DriftError: scikit-learn is not installed (the `sklearn` extra), or too few rows.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
    except ImportError:
        raise DriftError(
            "the domain classifier needs scikit-learn: pip install 'tritonab[sklearn]'"
        ) from None
    from scipy.stats import mannwhitneyu

    ref = reference.sample(n=min(max_rows, len(reference)), random_state=seed)
    cur = current.sample(n=min(max_rows, len(current)), random_state=seed)
    if min(len(ref), len(cur)) < folds * 2:
        raise DriftError(f"the domain classifier needs at least {folds * 2} rows on each side")
    x = _design([ref, cur], features)
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=seed)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=splits, method="predict_proba")[:, 1]
    test = mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
    auc = float(test.statistic) / (len(cur) * len(ref))
    return DomainResult(auc, float(test.pvalue), len(ref), len(cur), tuple(features))
