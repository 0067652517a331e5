"""params.yaml as the tests read it, and the settings they override: small projects, candidate lists."""

from __future__ import annotations

from typing import Any, TypeVar

from tabpipe.core import settings
from tabpipe.model import estimators
from tests.support.paths import ROOT

S = TypeVar("S", bound=settings.Section)


def params_section(kind: type[S], **values: Any) -> S:
    """params.yaml's section `kind` with `values` replacing its top-level keys, parsed as the stages parse it."""
    raw = settings.read(ROOT / "params.yaml").raw[kind.key]
    return settings.parse(kind, {**raw, **values}, f"params.yaml: {kind.key}")


# A test's search is one or two configurations on a small table: starting joblib's two worker
# processes (train.n_jobs) cost train 3.7 s more than fitting in its own process, and the suite
# already runs two tests at once. The default project, the cluster's and the benchmarks keep n_jobs.
ONE_CORE = {"train.n_jobs": 1}
# Candidate lists for tests that need a model clearly worse or better than another.
WEAK = {"stump": {"estimator": "random_forest", "fixed": {"n_estimators": 1, "max_depth": 1}}}
STRONG = {"logreg": {"estimator": "logistic_regression", "grid": {"C": [1.0]}}}
# One small model per candidate family, served to the load and fuzz tests: each must hold up.
# The default suite serves the first classifier and the regressor; the other classifiers take the same
# path through the service (tests/unit/test_compiled.py holds each one's compiled model to its
# pipeline on any row), so they are served under `slow` (SLOW_FAMILIES).
FAMILIES = {
    "logreg": STRONG["logreg"],
    "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 50, "n_jobs": 2}},
    "boosting": {"estimator": "hist_gradient_boosting", "fixed": {"max_iter": 100, "early_stopping": False}},
    "lightgbm": {"estimator": "lightgbm", "fixed": {"n_estimators": 100}},
    # A regressor, on small california (SMALL_CALIFORNIA): a value and an interval per row.
    "lightgbm_regressor": {"estimator": "lightgbm_regressor", "fixed": {"n_estimators": 100}},
}
SLOW_FAMILIES = ("forest", "boosting", "lightgbm")


# A small adult project: numeric, categorical and nullable fields, quick to train.
SMALL_ADULT = {
    **ONE_CORE,
    "data.dataset": "adult",
    "data.fraction": 0.1,
    "train.cv_folds": 2,
    "evaluate.importance_repeats": 1,
    "serve.max_rows": 20,
    "serve.max_body_bytes": 20_000,
}


# A small california project: a regression, numbers only, quick to train.
SMALL_CALIFORNIA = {**SMALL_ADULT, "data.dataset": "california"}


def regressor(family: str) -> bool:
    return estimators.task_of(FAMILIES[family]["estimator"]) == "regression"
