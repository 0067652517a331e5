"""The one prediction rule: labels are the argmax of the class probabilities.

evaluate, the gate, the service and the monitor all predict through this, so served and
evaluated predictions can be compared exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def predict(model: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) with columns in `model.classes_` order."""
    import numpy as np

    proba = np.asarray(model.predict_proba(x), dtype="float64")
    labels = np.asarray(model.classes_)[proba.argmax(axis=1)]
    return labels, proba


def classes_of(model: Any) -> list[str]:
    """The model's classes as text, in the order of its probability columns; none for a regressor."""
    return [str(c) for c in getattr(model, "classes_", [])]
