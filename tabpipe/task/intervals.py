"""Prediction intervals for a regressor: the value plus and minus a conformal half-width.

Cross-conformal, from absolute residuals: the winning configuration is cross-validated on the
training rows (the search's folds), and the half-width is the finite-sample conformal quantile of
its out-of-fold absolute errors, ceil((n + 1) * level) / n. Each fold's model covers its held-out
rows at the level (split conformal's guarantee); the served model is refitted on every row, so
the coverage that ships is measured on the test set, recorded and gated.

A constant half-width serves as fast as the value does (no extra model in the ONNX graph), and
the same number reaches evaluate, the gate and the service: the served interval is the evaluated
one. The refitted pipeline carries it as `interval_` (pickled with it, and written into the ONNX
file's metadata), so the registry's champions carry theirs too.

Serve-time: `of` and `bounds`. `calibrate` (build-time) imports scikit-learn when it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Interval:
    """`level`: the share of rows the interval is built to cover; `halfwidth`: what it adds on each side."""

    level: float
    halfwidth: float

    def as_dict(self) -> dict[str, float]:
        return {"level": self.level, "halfwidth": self.halfwidth}


def of(model: Any) -> Interval | None:
    """The interval a fitted regressor carries (`interval_`, a dict), or None (a classifier)."""
    found = getattr(model, "interval_", None)
    return Interval(float(found["level"]), float(found["halfwidth"])) if found else None


def bounds(values: np.ndarray, interval: Interval) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) for each value."""
    return values - interval.halfwidth, values + interval.halfwidth


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """The ceil((n + 1) * level)-th smallest absolute residual: the split-conformal half-width.

    With too few residuals for the level (n < level / (1 - level)), the interval would need to be
    infinite; the largest residual is the honest finite answer, and the measured coverage shows it.
    """
    import numpy as np

    ordered = np.sort(np.abs(np.asarray(residuals, dtype="float64")))
    rank = min(math.ceil((len(ordered) + 1) * level), len(ordered))
    return float(ordered[rank - 1])


def calibrate(pipeline: Any, x: Any, y: Any, folds: list[tuple[Any, Any]], level: float, n_jobs: int) -> Interval:
    """The half-width from `pipeline`'s (an unfitted copy of the winner) out-of-fold errors on `folds`."""
    import numpy as np
    from sklearn.model_selection import cross_val_predict

    predicted = cross_val_predict(pipeline, x, y, cv=folds, n_jobs=n_jobs)
    return Interval(level, round(conformal_quantile(np.asarray(y, dtype="float64") - predicted, level), 12))


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The share of rows whose truth lies inside their interval (ends included)."""
    import numpy as np

    return float(np.mean((y >= lower) & (y <= upper))) if len(y) else 0.0
