"""Calibration: a map from a classifier's probabilities to ones that come true as often as they say.

It is fitted on the winner's out-of-fold probabilities (never the test rows) and travels inside the
model as `calibration_`, as the decision does: the pipeline and the compiled graph give the same raw
probabilities, and this one function maps both, so they agree after calibration as before it.
scikit-learn's CalibratedClassifierCV would put the map inside the estimator, where skl2onnx 1.20
cannot follow it exactly (its isotonic steps are not scikit-learn's interpolation, and LightGBM's and
extra trees' calibrators do not convert; docs/training.md).

- sigmoid (Platt): p' = 1 / (1 + exp(-(a * logit(p) + b))), on the probability's log-odds, which for a
  linear or boosted model is its margin;
- isotonic: the non-decreasing step function through the out-of-fold points, interpolated linearly
  between them as scikit-learn's IsotonicRegression predicts, and clipped at the ends.

A binary model maps its second class's probability (the first is one minus it); a multiclass model
maps each class one-vs-rest and divides by the row's sum, as scikit-learn does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

EDGE = 1e-12  # probabilities are kept this far inside (0, 1) before their log-odds are taken


def fit(method: str, proba: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """The map, fitted on out-of-fold probabilities `proba` (columns in `classes`' order) and the truth `y`."""
    import numpy as np

    truth = np.asarray(y).astype(str)
    mapped = classes[1:] if len(classes) == 2 else classes
    maps = [_fit_one(method, proba[:, classes.index(c)], truth == c) for c in mapped]
    return {"method": method, "maps": maps}


def apply(proba: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """`proba` through the map (as it is without one)."""
    import numpy as np

    if not calibration:
        return proba
    method, maps = calibration["method"], calibration["maps"]
    if proba.shape[1] == 2:
        positive = _apply_one(method, proba[:, 1], maps[0])
        return np.column_stack([1.0 - positive, positive])
    mapped = np.column_stack([_apply_one(method, proba[:, i], m) for i, m in enumerate(maps)])
    sums = mapped.sum(axis=1, keepdims=True)
    uniform = np.full_like(mapped, 1.0 / mapped.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums > 0, mapped / sums, uniform)


def _fit_one(method: str, score: np.ndarray, positive: np.ndarray) -> dict[str, Any]:
    import numpy as np

    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
        model.fit(_logit(score).reshape(-1, 1), positive)
        return {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, positive.astype(float))
        return {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}
    raise ValueError(f"unknown calibration method '{method}'")


def _apply_one(method: str, score: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
    import numpy as np

    if method == "sigmoid":
        return 1.0 / (1.0 + np.exp(-(fitted["a"] * _logit(score) + fitted["b"])))
    return np.interp(score, fitted["x"], fitted["y"])  # constant beyond the ends: IsotonicRegression's clip


def _logit(p: np.ndarray) -> np.ndarray:
    import numpy as np

    clipped = np.clip(p, EDGE, 1.0 - EDGE)
    return np.log(clipped) - np.log1p(-clipped)
