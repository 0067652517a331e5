"""Model selection: a seeded cross-validated search per candidate, then the winner refitted."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.model import estimators

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from tabpipe.core.settings import Candidate, Train


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


def search(name: str, spec: Candidate, preprocessor: Any, x: Any, y: Any, settings: Train, seed: int) -> SearchResult:
    """Grid search over the candidate inside a (preprocessing + model) pipeline.

    Preprocessing is refitted in every fold, so no fold's validation rows leak into its scaling
    or category lists.
    """
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline(
        [("preprocess", clone(preprocessor)), ("model", estimators.estimator(spec.estimator, spec.fixed, seed))]
    )
    grid = {f"model__{key}": values for key, values in spec.grid.items()}
    cv = StratifiedKFold(n_splits=settings.cv_folds, shuffle=True, random_state=seed)
    searcher = GridSearchCV(
        pipeline, grid, scoring=settings.scoring, cv=cv, n_jobs=settings.n_jobs, refit=False, error_score="raise"
    )
    try:
        searcher.fit(x, y)
    except ValueError as error:
        raise PipelineError(f"train: candidate '{name}' failed: {error}".splitlines()[0]) from None
    best = searcher.best_index_
    results = searcher.cv_results_
    table = [
        {
            "params": {k.removeprefix("model__"): _plain(v) for k, v in results["params"][i].items()},
            "mean_score": float(results["mean_test_score"][i]),
            "std_score": float(results["std_test_score"][i]),
            "mean_fit_seconds": float(results["mean_fit_time"][i]),
        }
        for i in range(len(results["params"]))
    ]
    return SearchResult(
        name=name,
        spec=spec,
        best_params=table[best]["params"],
        cv_mean=table[best]["mean_score"],
        cv_std=table[best]["std_score"],
        fit_seconds=float(sum(results["mean_fit_time"]) * settings.cv_folds),
        table=table,
    )


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
