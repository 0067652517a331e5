"""Test-set evaluation: metrics as flat scalars, plot data for DVC's templates, predictions to keep."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.model import slices
from tabpipe.task.base import rounded

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.core.settings import Evaluate
    from tabpipe.data.schema import Schema
    from tabpipe.task.base import Predicted, Task

log = logging.getLogger("evaluate")

PLOTS = (
    "roc",
    "pr",
    "decision",
    "reliability",
    "cost",
    "actual",
    "residuals",
    "slice_bars",
    "contributions",
)  # every task's plot data files, besides the confusion rows and importance


@dataclass(frozen=True)
class Evaluation:
    """Everything evaluate writes: metrics, plot data, and the per-row predictions.

    `curves` holds every plot's points by name (PLOTS); a task leaves the other task's plots empty,
    so the stage writes the same files either way.
    """

    predicted: Predicted
    metrics: dict[str, Any]
    slices: dict[str, Any]
    curves: dict[str, list[dict[str, float]]]
    importance: list[dict[str, Any]]
    confusion: pd.DataFrame
    predictions: pd.DataFrame


def evaluate(
    model: Any,
    test: pd.DataFrame,
    x: pd.DataFrame,
    y: np.ndarray,
    settings: Evaluate,
    seed: int,
    task: Task,
    *,
    trained: Any,
    schema: Schema,
) -> Evaluation:
    """Score the model on the test split as its task does (metrics, curves), slice by slice
    (`evaluate.slices`, by any column of `test`), and permutation importance; `trained` is the pipeline
    that `model` serves, whose contributions per request column are explained (model/explanations.py)."""
    predicted = task.predict(model, x)
    sliced = slices.measure(test, y, predicted, settings, seed, task)
    return Evaluation(
        predicted=predicted,
        metrics=task.measure(y, predicted),
        slices=sliced,
        curves={plot: [] for plot in PLOTS}
        | task.curves(y, predicted, seed)
        | {"slice_bars": slices.plot_points(sliced, settings.slice_metric)}
        | {"contributions": contributions(trained, x, schema, rows=settings.explain_rows, seed=seed)},
        importance=_importance(model, x, y, settings, seed),
        confusion=task.confusion(y, predicted),
        predictions=task.table(y, predicted),
    )


def contributions(model: Any, x: pd.DataFrame, schema: Schema, *, rows: int, seed: int) -> list[dict[str, Any]]:
    """Each request column's mean |contribution| to the trained pipeline's raw output: a global view of
    the per-row explanations the service gives.

    With `rows` (evaluate.explain_rows) below the test set's size, on a seeded sample of that many
    rows: a forest costs tens of milliseconds a row (docs/training.md, Explanations).
    """
    from tabpipe.model import explanations

    started, total = time.perf_counter(), len(x)
    if 0 < rows < total:
        x = x.sample(n=rows, random_state=seed)
    explained = explanations.explain(explanations.explainer(model, schema), x)
    log.info(
        "contributions: %d of %d test rows (evaluate.explain_rows), in %s, %.1f s",
        len(x),
        total,
        explained.units,
        time.perf_counter() - started,
    )
    return explanations.mean_absolute(explained)


def _importance(model: Any, x: pd.DataFrame, y: np.ndarray, settings: Evaluate, seed: int) -> list[dict[str, Any]]:
    return importance(
        model,
        x,
        y,
        scoring=settings.importance_scoring,
        repeats=settings.importance_repeats,
        seed=seed,
        rows=settings.importance_rows,
    )


def importance(
    model: Any, x: pd.DataFrame, y: np.ndarray, *, scoring: str, repeats: int, seed: int, rows: int = 0
) -> list[dict[str, Any]]:
    """Permutation importance on the test set, per original feature (before one-hot).

    With `rows` (evaluate.importance_rows) below the test set's size, on a seeded stratified sample
    of that many rows: the ranking settles long before a large test set runs out, and the cost is
    features x repeats predictions of every row used.
    """
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import get_scorer

    started = time.perf_counter()
    if 0 < rows < len(x):
        from tabpipe.data.split import stratified_sample

        total = len(x)
        x, y = stratified_sample(x, y, rows, seed)
        log.info(
            "permutation importance: %d features x %d repeats on a seeded sample of %d of %d test rows"
            " (evaluate.importance_rows)",
            x.shape[1],
            repeats,
            len(x),
            total,
        )
    else:
        log.info("permutation importance: %d features x %d repeats on %d rows", x.shape[1], repeats, len(x))
    scorer = _Counted(get_scorer(scoring), total=1 + x.shape[1] * repeats, repeats=repeats, started=started)
    result = permutation_importance(model, x, y, scoring=scorer, n_repeats=repeats, random_state=seed, n_jobs=1)
    log.info("permutation importance: done in %.1f s", time.perf_counter() - started)
    rows_out = [
        {"feature": name, "importance": rounded(mean), "std": rounded(std)}
        for name, mean, std in zip(x.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows_out, key=lambda r: (-r["importance"], r["feature"]))


class _Counted:
    """A scorer that logs how many features permutation importance has finished, every few seconds.

    permutation_importance scores once for the baseline and `repeats` times per feature, in order;
    on large test sets a feature takes seconds, and the stage must not look hung.
    """

    def __init__(self, scorer: Any, *, total: int, repeats: int, started: float, every: float = 5.0) -> None:
        self.scorer, self.total, self.repeats, self.started, self.every = scorer, total, repeats, started, every
        self.calls, self.shown = 0, started

    def __call__(self, estimator: Any, x: Any, y: Any) -> float:
        score = self.scorer(estimator, x, y)
        self.calls += 1
        now = time.perf_counter()
        if now - self.shown >= self.every and self.calls < self.total:
            self.shown = now
            elapsed = now - self.started
            log.info(
                "permutation importance: %d/%d features, %.0f s elapsed, about %.0f s left",
                (self.calls - 1) // self.repeats,
                (self.total - 1) // self.repeats,
                elapsed,
                elapsed / self.calls * (self.total - self.calls),
            )
        return score
