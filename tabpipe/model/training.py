"""Training's entry point: plan the search, race every candidate, refit the winner, serialise it.

This is the whole of "how is the model trained", with no tracking in it: the train stage runs it
inside an MLflow run (tabpipe/tracking/runs.py), which records what it returns.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.model import estimators, intervals, search
from tabpipe.model import fingerprint as fingerprints
from tabpipe.model.progress import Progress

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from tabpipe.core.settings import Train
    from tabpipe.model.search import SearchResult

log = logging.getLogger("train")


@dataclass(frozen=True)
class Trained:
    """The refitted winner, its file's bytes, every candidate's search result, and metrics/train.json."""

    model: Any
    blob: bytes
    winner: search.SearchResult
    results: list[search.SearchResult]
    summary: dict[str, Any]
    scoring: str


def for_task(settings: Train, task: str) -> Train:
    """The task's scorer and candidates (`train.regression`'s for a regression), each one learning the task."""
    section = "train.regression.candidates" if task == "regression" else "train.candidates"
    chosen = settings.for_task(task)
    estimators.require_task(chosen.candidates, task, section)
    return chosen


def train(settings: Train, seed: int, preprocessor: Any, x: Any, y: Any, fingerprint: dict[str, Any]) -> Trained:
    """Search every candidate in `settings` (progress on the `train` log), then refit the best on all rows.

    The refitted model carries `fingerprint`, its training rows' (model/fingerprint.py)."""
    configurations = sum(len(search.configurations(spec)) for spec in settings.candidates.values())
    schedule = search.plan(configurations, len(x), settings.search)
    evaluations = sum(search.survivors(configurations, schedule, settings.search.factor))
    progress = Progress(evaluations, settings.cv_folds, log)
    with progress.heartbeat():
        results = search.search(settings.candidates, preprocessor, x, y, settings, seed, progress)
        winner = search.best(results)
        progress.doing(f"refitting the winner ({winner.name}) on all {len(x)} training rows")
        model = refit(winner, preprocessor, x, y, seed)
        if estimators.task_of(winner.spec.estimator) == "regression":
            level = settings.regression.interval
            progress.doing(f"calibrating {level:.0%} intervals on {winner.name}'s {settings.cv_folds}-fold errors")
            folds = search.cv_folds(x, y, settings.cv_folds, seed)
            unfitted = search.unfitted(winner, preprocessor, seed)
            try:
                model.interval_ = intervals.calibrate(unfitted, x, y, folds, level, settings.n_jobs).as_dict()
            except ValueError as error:  # as the search reports a failed fit: one line naming the candidate
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise PipelineError(f"train: calibrating intervals on '{winner.name}' failed: {reason}") from None
    fingerprints.attach(model, fingerprint)
    blob = serialize(model)
    metrics = summary(winner, results, settings.cv_folds)
    if intervals.of(model):
        metrics["interval"] = model.interval_
    return Trained(model, blob, winner, results, metrics, settings.scoring)


def refit(winner: SearchResult, fitted_preprocessor: Any, x: Any, y: Any, seed: int) -> Pipeline:
    """The deployable model: featurize's fitted preprocessor plus the winner fitted on all training rows."""
    from sklearn.pipeline import Pipeline

    model = estimators.estimator(winner.spec.estimator, {**winner.spec.fixed, **winner.best_params}, seed)
    model.fit(fitted_preprocessor.transform(x), y)
    return Pipeline([("preprocess", fitted_preprocessor), ("model", model)])


def serialize(model: Any) -> bytes:
    """The model file's exact bytes (joblib), hashed before they are written."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def summary(winner: SearchResult, results: list[SearchResult], folds: int) -> dict[str, Any]:
    """Deterministic figures for metrics/train.json (fit times live in MLflow only).

    A candidate's score is its best in the last round it reached, on `cv_rows` rows; `fits` is the
    compute the search spent.
    """
    return {
        "winner": winner.name,
        "cv_score": round(winner.cv_mean, 6),
        "cv": {r.name: round(r.cv_mean, 6) for r in results},
        "cv_rows": {r.name: r.rows for r in results},
        "fits": sum(len(r.table) for r in results) * folds,
    }
