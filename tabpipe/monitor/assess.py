"""Is the served model still fit for its traffic? Drift, prediction drift and (with labels) live metrics.

The reference is the held-out test split with the predictions `evaluate` made for it: data the
model never trained on, from the distribution it was gated on. A window of traffic (from the
prediction log, or a batch file) is compared with it; the retrain decision is a list of reasons,
each from a rule in params.yaml's `monitor` section, so an empty list means "keep serving".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.data.drift import measure
from tabpipe.task import tasks

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.core.settings import Monitor
    from tabpipe.data.schema import Schema
    from tabpipe.task.base import Predicted, Task

PREDICTION = "tabpipe_predicted_class"
HEALTHY, RETRAIN = 0, 3  # the monitor's exit codes (1 stays "error", 2 is argparse's usage error)


@dataclass(frozen=True)
class Assessment:
    metrics: dict[str, Any]
    reasons: list[str]
    report: Any

    @property
    def retrain(self) -> bool:
        return bool(self.reasons)

    @property
    def exit_code(self) -> int:
        return RETRAIN if self.retrain else HEALTHY


def assess(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: Schema,
    settings: Monitor,
    *,
    importance: list[str],
    gated: dict[str, Any],
    truth: np.ndarray | None = None,
    predicted: Predicted | None = None,
    summary: bool = True,
) -> Assessment:
    """Compare a window with the reference and decide whether to retrain.

    Both frames hold the schema's features and a PREDICTION column (the predicted class, or a
    regressor's value). `importance` lists features most important first; `gated` is the model's
    gated test metrics. With `truth` (labels for the window's rows) and what was `predicted` for
    them, the window's own metrics are measured as its task measures them, and compared with the
    gated ones. `summary` adds Evidently's data summary to the HTML report.
    """
    rows = len(current)
    if rows < settings.min_rows:
        raise PipelineError(f"monitor: the window has {rows} rows, fewer than monitor.min_rows={settings.min_rows}")
    missing = [c for c in (*schema.feature_names, PREDICTION) if c not in current.columns]
    if missing:
        raise PipelineError(f"monitor: column '{missing[0]}': missing from the window")
    result, report = measure(
        reference,
        current,
        schema,
        settings.drift,
        summary=summary,
        extra={PREDICTION: settings.prediction_threshold},
    )
    watched = importance[: settings.important_features]
    values: dict[str, Any] = {
        "rows": rows,
        "drift_share": _round(result.share),
        "drifted_features": result.count,
        "important_drifted": sum(result.drifted.get(name, False) for name in watched),
        "prediction_drift": _round(result.extra_scores[PREDICTION]),
        "prediction_drifted": int(result.extra_drifted[PREDICTION]),
        "feature_drift": {name: _round(score) for name, score in result.scores.items()},
    }
    task = tasks.of(schema.task)
    reasons = _drift_reasons(result, watched, settings, task.predicts)
    if truth is not None and predicted is not None:
        live = task.window_metrics(truth, predicted)
        values["labelled"] = live
        reasons += _metric_reasons(live, gated, settings.max_metric_drop, settings.max_metric_rise)
    values["retrain"] = int(bool(reasons))
    return Assessment(values, reasons, report)


def _drift_reasons(result: Any, watched: list[str], settings: Monitor, predicted: str) -> list[str]:
    reasons = []
    if result.share > settings.drift.max_drifted_share:
        reasons.append(
            f"drift: {result.count} of {len(result.drifted)} features drifted"
            f" (share {result.share:.3f} > {settings.drift.max_drifted_share})"
        )
    important = [name for name in watched if result.drifted.get(name)]
    if important:
        reasons.append(f"drift: important feature(s) {', '.join(important)} drifted")
    if result.extra_drifted[PREDICTION]:
        reasons.append(
            f"prediction drift: predicted {predicted} shifted by {result.extra_scores[PREDICTION]:.3f}"
            f" (>= {settings.prediction_threshold})"
        )
    return reasons


def _metric_reasons(
    live: dict[str, float], gated: dict[str, Any], drops: dict[str, float], rises: dict[str, float]
) -> list[str]:
    """A reason for each labelled metric that fell (or, for an error or a cost, rose) past its bound."""
    reasons = []
    for name, allowed, sign, side in [
        *((name, allowed, 1.0, "below") for name, allowed in drops.items()),
        *((name, allowed, -1.0, "above") for name, allowed in rises.items()),
    ]:
        if name not in live or not isinstance(gated.get(name), int | float):
            continue
        worse = sign * (float(gated[name]) - live[name])
        if worse > allowed:
            reasons.append(f"{name}: {live[name]:.4f} on labelled traffic, {worse:.4f} {side} the gated {gated[name]}")
    return reasons


def top_features(importance_rows: list[dict[str, Any]]) -> list[str]:
    """Feature names from evaluate's permutation importance, most important first."""
    ordered = sorted(importance_rows, key=lambda r: (-float(r["importance"]), str(r["feature"])))
    return [str(r["feature"]) for r in ordered]


def _round(value: float) -> float:
    return round(float(value), 6)


def reference_frame(test: pd.DataFrame, predictions: pd.DataFrame, task: Task) -> pd.DataFrame:
    """The test split with what evaluate predicted for each row (its `predicted` column, same order):
    a class as text, or a regressor's value."""
    if len(test) != len(predictions):
        raise PipelineError(f"monitor: {len(test)} test rows but {len(predictions)} saved predictions; rerun dvc repro")
    return test.assign(**{PREDICTION: task.learned(predictions["predicted"])})
