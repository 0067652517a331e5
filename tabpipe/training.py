"""Model selection: a seeded cross-validated search per candidate, then the winner refitted."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabpipe import models
from tabpipe.errors import PipelineError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class Candidate:
    """One entry of `train.candidates`: an estimator kind, fixed settings and a grid to search."""

    name: str
    kind: str
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def from_params(cls, name: str, spec: dict[str, Any]) -> Candidate:
        if not isinstance(spec, dict) or "estimator" not in spec:
            raise PipelineError(f"params.yaml: train.candidates.{name} needs an 'estimator'")
        grid = spec.get("grid") or {}
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise PipelineError(f"params.yaml: train.candidates.{name}.grid.{key} must be a non-empty list")
        return cls(name, spec["estimator"], dict(spec.get("fixed") or {}), dict(grid))


@dataclass(frozen=True)
class SearchResult:
    candidate: Candidate
    best_params: dict[str, Any]
    cv_mean: float
    cv_std: float
    fit_seconds: float
    table: list[dict[str, Any]]


def candidates(params: dict[str, Any]) -> list[Candidate]:
    specs = params.get("candidates") or {}
    if not specs:
        raise PipelineError("params.yaml: train.candidates is empty")
    return [Candidate.from_params(name, spec) for name, spec in specs.items()]


def search(
    candidate: Candidate, preprocessor: Any, x: Any, y: Any, *, scoring: str, folds: int, seed: int, n_jobs: int
) -> SearchResult:
    """Grid search over the candidate inside a (preprocessing + model) pipeline.

    Preprocessing is refitted in every fold, so no fold's validation rows leak into its scaling
    or category lists.
    """
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline(
        [("preprocess", clone(preprocessor)), ("model", models.estimator(candidate.kind, candidate.fixed, seed))]
    )
    grid = {f"model__{key}": values for key, values in candidate.grid.items()}
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    searcher = GridSearchCV(pipeline, grid, scoring=scoring, cv=cv, n_jobs=n_jobs, refit=False, error_score="raise")
    try:
        searcher.fit(x, y)
    except ValueError as error:
        raise PipelineError(f"train: candidate '{candidate.name}' failed: {error}".splitlines()[0]) from None
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
        candidate=candidate,
        best_params=table[best]["params"],
        cv_mean=table[best]["mean_score"],
        cv_std=table[best]["std_score"],
        fit_seconds=float(sum(results["mean_fit_time"]) * folds),
        table=table,
    )


def select(results: list[SearchResult]) -> SearchResult:
    """The best mean CV score; on a tie, the candidate listed first in params.yaml (the simpler one)."""
    scored = [r for r in results if not math.isnan(r.cv_mean)]
    if not scored:
        raise PipelineError("train: every candidate scored NaN in cross-validation")
    return max(scored, key=lambda r: (r.cv_mean, -results.index(r)))


def refit(winner: SearchResult, fitted_preprocessor: Any, x: Any, y: Any, seed: int) -> Pipeline:
    """The deployable model: featurize's fitted preprocessor plus the winner fitted on all training rows."""
    from sklearn.pipeline import Pipeline

    model = models.estimator(winner.candidate.kind, {**winner.candidate.fixed, **winner.best_params}, seed)
    model.fit(fitted_preprocessor.transform(x), y)
    return Pipeline([("preprocess", fitted_preprocessor), ("model", model)])


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so params log and serialise cleanly."""
    return value.item() if hasattr(value, "item") else value
