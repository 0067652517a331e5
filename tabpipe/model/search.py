"""Model selection: a seeded cross-validated search per candidate, then the winner refitted."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.model import estimators

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from tabpipe.core.settings import Candidate, Train


@dataclass(frozen=True)
class Step:
    """One configuration's cross-validation, reported the moment it finishes."""

    candidate: str
    index: int
    total: int
    params: dict[str, Any]
    mean: float
    std: float
    seconds: float


class Progress:
    """Logs each finished configuration with the elapsed time and an estimate of what is left.

    Training on real data runs for minutes: a line per configuration shows it is alive and when it ends.
    """

    def __init__(self, configurations: int, folds: int, log: logging.Logger) -> None:
        self.total, self.folds, self.log = configurations, folds, log
        self.done, self.started = 0, time.perf_counter()
        self.activity, self.said = "starting", self.started

    def _say(self, message: str, *args: Any) -> None:
        self.said = time.perf_counter()
        self.log.info(message, *args)

    def doing(self, activity: str) -> None:
        """What the heartbeat names while no configuration finishes (a fit, the refit, logging the model)."""
        self.activity = activity
        self._say("%s", activity)

    @contextlib.contextmanager
    def heartbeat(self, every: float = 5.0) -> Iterator[None]:
        """A line at least every `every` seconds: one configuration's folds can take a minute on real data."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every / 5):
                if time.perf_counter() - self.said >= every:
                    self._say("still %s, %.0f s elapsed", self.activity, time.perf_counter() - self.started)

        thread = threading.Thread(target=beat, name="train-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def start(self, name: str, configurations: int) -> None:
        self.activity = f"cross-validating {name}"
        self._say(
            "%s: %d configuration(s) x %d folds = %d fits",
            name,
            configurations,
            self.folds,
            configurations * self.folds,
        )

    def __call__(self, step: Step) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        shown = ", ".join(f"{k}={v}" for k, v in step.params.items()) or "defaults"
        self._say(
            "%s %d/%d (%s): CV %.4f +/- %.4f in %.1f s | %d/%d done, %.0f s elapsed, about %.0f s left",
            step.candidate,
            step.index,
            step.total,
            shown,
            step.mean,
            step.std,
            step.seconds,
            self.done,
            self.total,
            elapsed,
            left,
        )


def configurations(spec: Candidate) -> list[dict[str, Any]]:
    """The grid's configurations, in the order scikit-learn's ParameterGrid gives them."""
    from sklearn.model_selection import ParameterGrid

    return list(ParameterGrid(spec.grid))


@dataclass(frozen=True)
class SearchResult:
    """One candidate's search: its best settings, their CV score, and every configuration tried."""

    name: str
    spec: Candidate
    best_params: dict[str, Any]
    cv_mean: float
    cv_std: float
    fit_seconds: float
    table: list[dict[str, Any]]


def search(
    name: str,
    spec: Candidate,
    preprocessor: Any,
    x: Any,
    y: Any,
    settings: Train,
    seed: int,
    on_step: Callable[[Step], None] = lambda step: None,
) -> SearchResult:
    """Grid search over the candidate inside a (preprocessing + model) pipeline, one configuration at a time.

    Each configuration is cross-validated on the same seeded folds (what GridSearchCV does, with a
    report after each one); `train.n_jobs` runs a configuration's folds in parallel. Preprocessing
    is refitted in every fold, so no fold's validation rows leak into its scaling or category lists.
    """
    import numpy as np
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import Pipeline

    # Built with the grid's first values, so a misspelt grid key fails now, not after the search:
    # LightGBM's set_params takes any name, and LightGBM ignores unknown ones without a word.
    first = {**spec.fixed, **{key: values[0] for key, values in spec.grid.items()}}
    pipeline = Pipeline(
        [("preprocess", clone(preprocessor)), ("model", estimators.estimator(spec.estimator, first, seed))]
    )
    cv = StratifiedKFold(n_splits=settings.cv_folds, shuffle=True, random_state=seed)
    grid = configurations(spec)
    table = []
    for index, config in enumerate(grid, start=1):
        started = time.perf_counter()
        try:
            candidate = clone(pipeline).set_params(**{f"model__{key}": value for key, value in config.items()})
            scores = cross_validate(
                candidate, x, y, scoring=settings.scoring, cv=cv, n_jobs=settings.n_jobs, error_score="raise"
            )
        except ValueError as error:
            raise PipelineError(f"train: candidate '{name}' failed: {error}".splitlines()[0]) from None
        row = {
            "params": {key: _plain(value) for key, value in config.items()},
            "mean_score": float(np.mean(scores["test_score"])),
            "std_score": float(np.std(scores["test_score"])),
            "mean_fit_seconds": float(np.mean(scores["fit_time"])),
        }
        table.append(row)
        on_step(
            Step(
                name,
                index,
                len(grid),
                row["params"],
                row["mean_score"],
                row["std_score"],
                time.perf_counter() - started,
            )
        )
    best = max(range(len(table)), key=lambda i: (_ranked(table[i]["mean_score"]), -i))
    return SearchResult(
        name=name,
        spec=spec,
        best_params=table[best]["params"],
        cv_mean=table[best]["mean_score"],
        cv_std=table[best]["std_score"],
        fit_seconds=float(sum(r["mean_fit_seconds"] for r in table) * settings.cv_folds),
        table=table,
    )


def _ranked(score: float) -> float:
    """NaN ranks last, as in GridSearchCV."""
    return -math.inf if math.isnan(score) else score


def best(results: list[SearchResult]) -> SearchResult:
    """The best mean CV score; on a tie, the candidate listed first in params.yaml (the simpler one)."""
    scored = [r for r in results if not math.isnan(r.cv_mean)]
    if not scored:
        raise PipelineError("train: every candidate scored NaN in cross-validation")
    return max(scored, key=lambda r: (r.cv_mean, -results.index(r)))


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


def summary(winner: SearchResult, results: list[SearchResult]) -> dict[str, Any]:
    """Deterministic figures for metrics/train.json (fit times live in MLflow only)."""
    return {
        "winner": winner.name,
        "cv_score": round(winner.cv_mean, 6),
        "cv": {r.name: round(r.cv_mean, 6) for r in results},
    }


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so params log and serialise cleanly."""
    return value.item() if hasattr(value, "item") else value
