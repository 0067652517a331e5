"""Slices: is the model good for everyone it decides about, or only on average?

The test rows are grouped by each column of `evaluate.slices`: a categorical column by its values, a
numeric one by quantile bins (`evaluate.slice_bins`), a missing value as its own slice. Each slice is
measured as the monitor measures a window (Task.slice_metrics: the task's metrics and, for a binary
classifier, the positive rate and true and false positive rates at the served decision), with a
seeded bootstrap interval for `evaluate.slice_metric`. Per column, a binary classifier's slices give
the demographic parity difference (the largest gap in positive rate) and the equalized odds
difference (the larger of the largest gaps in true and in false positive rate), as fairlearn defines
them, over the slices large enough to judge (`evaluate.min_slice_rows`). Smaller slices are reported
and marked (`gated: 0`), never gated.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.task.base import rounded

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.core.settings import Evaluate
    from tabpipe.task.base import Predicted, Task

MISSING = "missing"
# A column's differences, from its gated slices' rates: (name, the rates whose largest gaps it takes).
DIFFERENCES = {
    "demographic_parity_difference": ("positive_rate",),
    "equalized_odds_difference": ("true_positive_rate", "false_positive_rate"),
}


def groups(values: pd.Series, bins: int) -> tuple[pd.Series, list[str]]:
    """Each row's slice name, and the names in order: a category's value, or a number's quantile bin
    ("[low, high)", the last one closed); a missing value is MISSING."""
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        named = values.astype(object).where(values.notna(), MISSING).astype(str)
        return named, sorted(set(named))
    numbers = values.astype("float64")
    known = numbers.dropna().to_numpy()
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1))) if len(known) else np.array([])
    if len(edges) < 2:  # one value (or none): it is its own slice
        labels = [_number(edge) for edge in edges]
        index = np.zeros(len(numbers), dtype=int)
    else:
        labels = [
            f"[{_number(low)}, {_number(high)}{']' if last else ')'}"
            for low, high, last in zip(edges[:-1], edges[1:], [False] * (len(edges) - 2) + [True], strict=True)
        ]
        index = np.searchsorted(edges[1:-1], numbers.fillna(edges[0]).to_numpy(), side="right")
    named = pd.Series(np.asarray(labels or [MISSING], dtype=object)[index], index=values.index)
    named = named.where(numbers.notna(), MISSING)
    return named, [name for name in (*labels, MISSING) if (named == name).any()]


def _number(value: float) -> str:
    """A bin edge exactly, and briefly: 17, not 17.0; 100000.5, not 1e+05."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def measure(
    frame: pd.DataFrame, y: np.ndarray, predicted: Predicted, settings: Evaluate, seed: int, task: Task
) -> dict[str, Any]:
    """metrics/slices.json: per column of `settings.slices`, each slice's figures, and the differences."""
    import numpy as np

    missing = [column for column in settings.slices if column not in frame.columns]
    if missing:
        known = ", ".join(frame.columns)
        raise PipelineError(f"params.yaml: evaluate.slices: column '{missing[0]}' is not in the test split ({known})")
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for column in settings.slices:
        named, order = groups(frame[column].reset_index(drop=True), settings.slice_bins)
        names = named.to_numpy()
        slices = {}
        for name in order:
            rows = names == name
            found = {"rows": int(rows.sum()), "gated": int(rows.sum() >= settings.min_slice_rows)}
            with warnings.catch_warnings():  # a metric a slice cannot have (one class: ROC AUC) is left out
                warnings.simplefilter("ignore")
                found |= task.slice_metrics(y[rows], predicted.take(rows), y)
            found |= _interval(settings, y[rows], predicted.take(rows), task, rng)
            slices[name] = found
        out[column] = {"slices": slices, **differences(slices)}
    return out


def differences(slices: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The column's fairness differences over its gated slices (none where a rate is missing)."""
    gated = [found for found in slices.values() if found["gated"]]
    out = {}
    for name, rates in DIFFERENCES.items():
        gaps = []
        for rate in rates:
            values = [found[rate] for found in gated if rate in found]
            if len(values) < 2 or len(values) < len(gated):
                break
            gaps.append(max(values) - min(values))
        else:
            if gaps:
                out[name] = rounded(max(gaps))
    return out


def _interval(settings: Evaluate, y: np.ndarray, predicted: Predicted, task: Task, rng: Any) -> dict[str, Any]:
    """A percentile bootstrap interval (95%) of the slice's main metric, when the slice can have one."""
    import numpy as np

    metric = settings.slice_metric
    rows = rng.integers(0, len(y), size=(settings.slice_rounds, len(y)))
    try:
        scores = np.asarray(task.sample_scores(metric, y, predicted, rows), dtype="float64")
    except ValueError:  # one class in the slice: ROC AUC has no value
        return {}
    scores = scores[np.isfinite(scores)]
    if len(scores) < settings.slice_rounds / 2:
        return {}
    low, high = np.percentile(scores, [2.5, 97.5])
    return {f"{metric}_low": rounded(low), f"{metric}_high": rounded(high)}


def plot_points(found: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """The dvc plot's bars: each gated slice's main metric, named "column = slice"."""
    points = []
    for column, entry in found.items():
        for name, figures in entry["slices"].items():
            value = figures.get(metric)
            if figures["gated"] and value is not None and math.isfinite(value):
                points.append({"slice": f"{column} = {name}", "metric": metric, "value": value})
    return points


def table(found: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per slice, for MLflow's table."""
    return [
        {"column": column, "slice": name, **figures}
        for column, entry in found.items()
        for name, figures in entry["slices"].items()
    ]
