"""Training's entry point: plan the search, race every candidate, refit the winner, serialise it.

This is the whole of "how is the model trained", with no tracking in it: the train stage runs it
inside an MLflow run (tabpipe/tracking/runs.py), which records what it returns.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.model import estimators, explanations, search
from tabpipe.model import fingerprint as fingerprints
from tabpipe.model.progress import Progress
from tabpipe.task.base import Winner

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from tabpipe.core.settings import Decision, Train
    from tabpipe.model.search import SearchResult
    from tabpipe.task.base import Task

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


def for_task(settings: Train, task: Task) -> Train:
    """The task's scorer and candidates (`train.regression`'s for a regression), each one learning the
    task, and weighted as `train.class_weight` says; a calibration the task cannot use is dropped, saying so."""
    chosen = settings.for_task(task.name)
    estimators.require_task(chosen.candidates, task.name, task.candidates)
    if chosen.calibration != "none" and not task.calibrates:
        log.warning(
            "train.calibration: %s does not apply to a %s task: no probabilities", chosen.calibration, task.name
        )
        chosen = chosen.model_copy(update={"calibration": "none"})
    return weighted(chosen, task)


def weighted(settings: Train, task: Task) -> Train:
    """`train.class_weight: balanced` in every candidate whose estimator takes class_weight (unless its
    `fixed` settings choose one); the others are named in one line, and a task without classes is left
    as it is, saying so."""
    if settings.class_weight == "none":
        return settings
    if not task.weighs_classes:
        log.warning("train.class_weight: balanced does not apply to a %s task: no classes to weigh", task.name)
        return settings
    candidates, unweighted = {}, []
    for name, spec in settings.candidates.items():
        if not estimators.takes(spec.estimator, "class_weight"):
            unweighted.append(f"{name} ({spec.estimator})")
            candidates[name] = spec
            continue
        candidates[name] = spec.model_copy(update={"fixed": {"class_weight": "balanced", **spec.fixed}})
    if unweighted:
        log.warning("train.class_weight: balanced does not reach %s: no class_weight parameter", ", ".join(unweighted))
    return settings.model_copy(update={"candidates": candidates})


def train(
    settings: Train,
    seed: int,
    preprocessor: Any,
    x: Any,
    y: Any,
    *,
    fingerprint: dict[str, Any],
    task: Task,
    decision: Decision,
) -> Trained:
    """Search every candidate in `settings` (progress on the `train` log), then refit the best on all rows.

    The refitted model carries `fingerprint`, its training rows' (model/fingerprint.py), and what its task
    gives it from the search's folds (a regressor's interval, a classifier's decision)."""
    task.check(decision, y)
    configurations = sum(len(search.configurations(spec)) for spec in settings.candidates.values())
    schedule = search.plan(configurations, len(x), settings.search)
    evaluations = sum(search.survivors(configurations, schedule, settings.search.factor))
    progress = Progress(evaluations, settings.cv_folds, log)
    with progress.heartbeat():
        results = search.search(settings.candidates, preprocessor, x, y, settings, seed, progress)
        winner = search.best(results)
        progress.doing(f"refitting the winner ({winner.name}) on all {len(x)} training rows")
        model = refit(winner, preprocessor, x, y, seed)
        folds = search.cv_folds(x, y, settings.cv_folds, seed)
        finished = Winner(winner.name, search.unfitted(winner, preprocessor, seed), x, y, folds, settings, decision)
        finishing = task.finishing(finished)
        if finishing:
            progress.doing(finishing)
        task.finish(model, finished)
    fingerprints.attach(model, fingerprint)
    blob = serialize(model)
    metrics = summary(winner, results, settings.cv_folds) | task.reported(model)
    return Trained(model, blob, winner, results, metrics, settings.scoring)


def refit(winner: SearchResult, fitted_preprocessor: Any, x: Any, y: Any, seed: int) -> Pipeline:
    """The deployable model: featurize's fitted preprocessor plus the winner fitted on all training rows,
    carrying those rows' transformed mean, which explaining a linear model needs (model/explanations.py)."""
    from sklearn.pipeline import Pipeline

    model = estimators.estimator(winner.spec.estimator, {**winner.spec.fixed, **winner.best_params}, seed)
    features = fitted_preprocessor.transform(x)
    model.fit(features, y)
    pipeline = Pipeline([("preprocess", fitted_preprocessor), ("model", model)])
    explanations.attach(pipeline, features)
    return pipeline


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
