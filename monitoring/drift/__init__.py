"""Data and concept drift of served models.

- Reference profiles (`build_profile`, `save_reference`, `reference_for`): per-feature
  summaries and a sample of the model's input data, stored beside a model version.
- Data drift (`check_data`, `check_logs`, `compare_window`): PSI, Jensen-Shannon
  distance, KS (numeric) and chi-square (categorical) per feature and per window, with a
  `drifted` verdict from `DriftSpec` thresholds; optionally a domain classifier's AUC.
- Concept drift (`concept_drift`, `detect_changes`): the outcome stream per variant,
  windowed, with river's ADWIN change detector.
- Reports (`print_drift`, `write_drift_html`).

Example:
    >>> from tritonab.monitoring.drift import check_data  # doctest: +SKIP
    >>> report = check_data("train.csv", "last_week.csv")
    >>> report.windows[0].drifted_features
"""

from tritonab.monitoring.drift._check import (
    DomainDrift,
    DriftReport,
    FeatureDrift,
    Histogram,
    WindowDrift,
    check_data,
    check_logs,
    compare_window,
)
from tritonab.monitoring.drift._concept import (
    ChangePoint,
    ConceptReport,
    OutcomeWindow,
    VariantConcept,
    concept_drift,
    detect_changes,
)
from tritonab.monitoring.drift._frames import feature_names, flatten_tensors, load_frame, read_payloads
from tritonab.monitoring.drift._profile import (
    REFERENCE_FILE,
    REFERENCE_ROLE,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    load_profile,
    reference_for,
    save_reference,
)
from tritonab.monitoring.drift._report import (
    concept_table,
    drift_figures,
    print_drift,
    save_figures,
    write_drift_html,
)
from tritonab.monitoring.drift._spec import (
    DomainClassifierSettings,
    DriftSpec,
    DriftThresholds,
    load_drift_spec,
)
from tritonab.monitoring.drift._stats import chi_square_test, js_distance, ks_test, psi

__all__ = [
    "REFERENCE_FILE",
    "REFERENCE_ROLE",
    "CategoricalProfile",
    "ChangePoint",
    "ConceptReport",
    "DomainClassifierSettings",
    "DomainDrift",
    "DriftReport",
    "DriftSpec",
    "DriftThresholds",
    "FeatureDrift",
    "Histogram",
    "NumericProfile",
    "OutcomeWindow",
    "ReferenceProfile",
    "VariantConcept",
    "WindowDrift",
    "build_profile",
    "check_data",
    "check_logs",
    "chi_square_test",
    "compare_window",
    "concept_drift",
    "concept_table",
    "detect_changes",
    "drift_figures",
    "feature_names",
    "flatten_tensors",
    "js_distance",
    "ks_test",
    "load_drift_spec",
    "load_frame",
    "load_profile",
    "print_drift",
    "psi",
    "read_payloads",
    "reference_for",
    "save_figures",
    "save_reference",
    "write_drift_html",
]
