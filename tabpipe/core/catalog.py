"""The estimators a candidate can name (`train.candidates.<name>.estimator`): one line each.

Pure data (import paths as text), so params.yaml's settings check a name without importing any
model code, and tabpipe/model/estimators.py builds the estimator from the same line.
"""

from typing import Any

LIGHTGBM = {"n_jobs": 1, "deterministic": True, "force_col_wise": True, "verbose": -1}
# name: (class, its defaults, the task it learns). One thread for LightGBM (train.n_jobs parallelises the
# folds), the same model for the same seed, no log lines.
ESTIMATORS: dict[str, tuple[str, dict[str, Any], str]] = {
    "logistic_regression": ("sklearn.linear_model.LogisticRegression", {"max_iter": 5000}, "classification"),
    "random_forest": ("sklearn.ensemble.RandomForestClassifier", {}, "classification"),
    "extra_trees": ("sklearn.ensemble.ExtraTreesClassifier", {}, "classification"),
    "hist_gradient_boosting": ("sklearn.ensemble.HistGradientBoostingClassifier", {}, "classification"),
    "lightgbm": ("lightgbm.LGBMClassifier", LIGHTGBM, "classification"),
    "ridge": ("sklearn.linear_model.Ridge", {}, "regression"),
    "random_forest_regressor": ("sklearn.ensemble.RandomForestRegressor", {}, "regression"),
    "hist_gradient_boosting_regressor": ("sklearn.ensemble.HistGradientBoostingRegressor", {}, "regression"),
    "lightgbm_regressor": ("lightgbm.LGBMRegressor", LIGHTGBM, "regression"),
}
