"""Model selection: every candidate's grid races in seeded cross-validation (training.py refits the winner).

The race is successive halving across candidates (`train.search`): each round cross-validates the
configurations still in it on a seeded, stratified sample of the training rows, keeps the best
1/factor, and gives those factor times the rows; the last round has every training row (at most
`max_rows` of them). So most of the compute goes to the configurations that are still in contention.
With `method: grid`, or too few rows for a second round, there is one round: every configuration on
every row, as GridSearchCV.

The fits of a round (configurations x folds) run through joblib: in local processes, or on a Dask
cluster when `TABPIPE_DASK_SCHEDULER` names one (tabpipe/model/cluster.py). Each fit is seeded and
independent of where it runs, so both give the same scores, the same winner and the same model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.data import split
from tabpipe.model import estimators
from tabpipe.model.progress import Progress, Step

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from tabpipe.core.settings import Candidate, Search, Train


def configurations(spec: Candidate) -> list[dict[str, Any]]:
    """The grid's configurations, in the order scikit-learn's ParameterGrid gives them."""
    from sklearn.model_selection import ParameterGrid

    return list(ParameterGrid(spec.grid))


def plan(configurations: int, rows: int, rules: Search) -> list[int]:
    """The rows each round gives every configuration in it; the last round has all of them, or `max_rows`.

    Rounds continue until `factor` or fewer configurations are left, as long as the first round
    still gets `min_rows`; a round keeps ceil(n / factor) of its n configurations. Ranking
    configurations needs far fewer rows than the final model gains from, so with `max_rows` the
    search's cost stops growing with the data; the winner is refitted on every row either way.
    """
    rows = min(rows, rules.max_rows) if rules.max_rows else rows
    rounds = 1
    if rules.method == "halving":
        left, needed = configurations, 1
        while left > rules.factor:
            left, needed = math.ceil(left / rules.factor), needed + 1
        while rounds < needed and rows // rules.factor**rounds >= rules.min_rows:
            rounds += 1
    return [rows // rules.factor ** (rounds - 1 - i) for i in range(rounds)]


def survivors(configurations: int, schedule: list[int], factor: int) -> list[int]:
    """How many configurations each round of `schedule` cross-validates."""
    counts = [configurations]
    for _ in schedule[1:]:
        counts.append(math.ceil(counts[-1] / factor))
    return counts


@dataclass(frozen=True)
class SearchResult:
    """One candidate's search: its best settings in the last round it reached, and every score it got."""

    name: str
    spec: Candidate
    best_params: dict[str, Any]
    cv_mean: float
    cv_std: float
    rows: int
    fit_seconds: float
    table: list[dict[str, Any]]


@dataclass(frozen=True)
class _Entry:
    name: str
    spec: Candidate
    params: dict[str, Any]


def search(
    candidates: dict[str, Candidate],
    preprocessor: Any,
    x: Any,
    y: Any,
    settings: Train,
    seed: int,
    progress: Progress | None = None,
) -> list[SearchResult]:
    """Race every candidate's configurations (module docstring); one result per candidate, in params order.

    Preprocessing is refitted in every fold, so no fold's validation rows leak into its scaling or
    category lists. Every round uses the same seeded folds of its sample, as GridSearchCV would.
    """
    import numpy as np

    entries = [_Entry(name, spec, config) for name, spec in candidates.items() for config in configurations(spec)]
    schedule = plan(len(entries), len(x), settings.search)
    counts = survivors(len(entries), schedule, settings.search.factor)
    alive = list(range(len(entries)))
    latest: dict[int, dict[str, Any]] = {}
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in candidates}
    for number, rows in enumerate(schedule, start=1):
        if progress is not None:
            progress.start(number, len(schedule), len(alive), rows, len(x))
        xs, ys = split.stratified_sample(x, y, rows, seed)
        started = time.perf_counter()
        for position, (index, scores) in enumerate(
            _cross_validate(entries, alive, preprocessor, xs, ys, settings, seed), start=1
        ):
            entry = entries[index]
            row = {
                "params": {key: _plain(value) for key, value in entry.params.items()},
                "rows": rows,
                "mean_score": float(np.mean([score for score, _ in scores])),
                "std_score": float(np.std([score for score, _ in scores])),
                "mean_fit_seconds": float(np.mean([seconds for _, seconds in scores])),
            }
            latest[index] = row
            tables[entry.name].append(row)
            if progress is not None:
                finished = time.perf_counter()
                progress(
                    Step(
                        entry.name,
                        position,
                        len(alive),
                        row["params"],
                        row["mean_score"],
                        row["std_score"],
                        finished - started,
                    )
                )
                started = finished
        if number < len(schedule):
            ranked = sorted(alive, key=lambda i: (-_ranked(latest[i]["mean_score"]), i))
            alive = sorted(ranked[: counts[number]])
    return [_result(name, spec, tables[name], settings.cv_folds) for name, spec in candidates.items()]


def _result(name: str, spec: Candidate, table: list[dict[str, Any]], folds: int) -> SearchResult:
    """The candidate's best configuration among those in the last round it reached (the first, on a tie)."""
    rows = max(row["rows"] for row in table)
    final = [row for row in table if row["rows"] == rows]
    best = max(range(len(final)), key=lambda i: (_ranked(final[i]["mean_score"]), -i))
    return SearchResult(
        name=name,
        spec=spec,
        best_params=final[best]["params"],
        cv_mean=final[best]["mean_score"],
        cv_std=final[best]["std_score"],
        rows=rows,
        fit_seconds=float(sum(row["mean_fit_seconds"] for row in table) * folds),
        table=table,
    )


def _cross_validate(
    entries: list[_Entry], alive: list[int], preprocessor: Any, x: Any, y: Any, settings: Train, seed: int
) -> Iterator[tuple[int, list[tuple[float, float]]]]:
    """Each live configuration's (score, fit seconds) per fold, in order, as soon as its folds are done.

    All of the round's fits go to joblib at once (configurations x folds), so every worker stays
    busy; `train.n_jobs` bounds them locally, and a Dask cluster (tabpipe/model/cluster.py) runs
    them on its workers.
    """
    from joblib import Parallel, delayed
    from sklearn.base import clone

    from tabpipe.model import cluster

    folds = cv_folds(x, y, settings.cv_folds, seed)
    pipelines = {}
    for index in alive:
        entry = entries[index]
        try:
            pipelines[index] = _pipeline(entry, preprocessor, seed)
        except ValueError as error:
            raise PipelineError(f"train: candidate '{entry.name}' failed: {error}".splitlines()[0]) from None
    tasks = (
        delayed(_fit_and_score)(clone(pipelines[i]), x, y, train, test, settings.scoring)
        for i in alive
        for train, test in folds
    )
    with cluster.backend(settings.n_jobs) as n_jobs:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
        scores: list[tuple[float, float]] = []
        position = 0
        try:
            for result in results:
                scores.append(result)
                if len(scores) == len(folds):
                    yield alive[position], scores
                    scores, position = [], position + 1
        except ValueError as error:
            name = entries[alive[position]].name
            raise PipelineError(f"train: candidate '{name}' failed: {error}".splitlines()[0]) from None


def cv_folds(x: Any, y: Any, folds: int, seed: int) -> list[tuple[Any, Any]]:
    """The seeded folds, stratified by class or by a quantity's quantile bins."""
    from sklearn.model_selection import StratifiedKFold

    by = split.groups(y, 1 / folds)
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, by))


def unfitted(winner: SearchResult, preprocessor: Any, seed: int) -> Pipeline:
    """The winning configuration as an unfitted pipeline, as the search cross-validated it."""
    return _pipeline(_Entry(winner.name, winner.spec, winner.best_params), preprocessor, seed)


def _pipeline(entry: _Entry, preprocessor: Any, seed: int) -> Pipeline:
    """The configuration's settings are checked as the fixed ones are, so a misspelt grid key fails
    before any fit: LightGBM's set_params takes any name, and LightGBM ignores unknown ones silently."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    model = estimators.estimator(entry.spec.estimator, {**entry.spec.fixed, **entry.params}, seed)
    return Pipeline([("preprocess", clone(preprocessor)), ("model", model)])


def _fit_and_score(pipeline: Pipeline, x: Any, y: Any, train: Any, test: Any, scoring: str) -> tuple[float, float]:
    """One fold, as cross_validate fits and scores it: (validation score, fit seconds)."""
    from sklearn.metrics import get_scorer
    from sklearn.utils import _safe_indexing

    started = time.perf_counter()
    pipeline.fit(_safe_indexing(x, train), _safe_indexing(y, train))
    seconds = time.perf_counter() - started
    return float(get_scorer(scoring)(pipeline, _safe_indexing(x, test), _safe_indexing(y, test))), seconds


def _ranked(score: float) -> float:
    """NaN ranks last, as in GridSearchCV."""
    return -math.inf if math.isnan(score) else score


def best(results: list[SearchResult]) -> SearchResult:
    """The best mean CV score in the last round; on a tie, the candidate listed first in params.yaml."""
    rows = max(r.rows for r in results)
    scored = [r for r in results if r.rows == rows and not math.isnan(r.cv_mean)]
    if not scored:
        raise PipelineError("train: every candidate scored NaN in cross-validation")
    return max(scored, key=lambda r: (r.cv_mean, -results.index(r)))


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so params log and serialise cleanly."""
    return value.item() if hasattr(value, "item") else value
