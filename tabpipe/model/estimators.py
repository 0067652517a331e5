"""Candidate estimators: a name in params.yaml maps to a scikit-learn (compatible) class and its defaults.

A new candidate is one line here plus its entry under `train.candidates`.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from tabpipe.core.errors import PipelineError

ESTIMATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "logistic_regression": ("sklearn.linear_model.LogisticRegression", {"max_iter": 5000}),
    "random_forest": ("sklearn.ensemble.RandomForestClassifier", {}),
    "extra_trees": ("sklearn.ensemble.ExtraTreesClassifier", {}),
    "hist_gradient_boosting": ("sklearn.ensemble.HistGradientBoostingClassifier", {}),
    # One thread (train.n_jobs parallelises the folds), the same model for the same seed, no log lines.
    "lightgbm": (
        "lightgbm.LGBMClassifier",
        {"n_jobs": 1, "deterministic": True, "force_col_wise": True, "verbose": -1},
    ),
}


def estimator(kind: str, fixed: dict[str, Any], seed: int) -> Any:
    """An unfitted estimator; its random_state (when it has one) comes from the pipeline seed."""
    if kind not in ESTIMATORS:
        raise PipelineError(f"params.yaml: train candidate estimator '{kind}', expected one of {', '.join(ESTIMATORS)}")
    path, defaults = ESTIMATORS[kind]
    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(fixed) - set(accepted))
    if unknown:
        raise PipelineError(f"params.yaml: {kind} has no parameter {', '.join(unknown)}")
    settings = {**defaults, **fixed}
    if "random_state" in accepted:
        settings["random_state"] = seed
    return cls(**settings)
