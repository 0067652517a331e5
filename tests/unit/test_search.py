"""Candidate search: seeded and repeatable, a race across candidates, refits a deployable pipeline."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Featurize, Search, Train
from tabpipe.model import features, search, training
from tabpipe.model.progress import Progress, Step
from tests.support.data import TOY, toy_frame
from tests.support.params import params_section

CANDIDATES = {
    "logreg": {"estimator": "logistic_regression", "grid": {"C": [0.1, 1.0]}},
    "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 10}, "grid": {"max_depth": [2, None]}},
}
HALVING = {"method": "halving", "factor": 3, "min_rows": 100, "max_rows": 0}


def train_settings(candidates: dict, **values) -> Train:
    return params_section(Train, candidates=candidates, scoring="roc_auc_ovr", cv_folds=3, n_jobs=1, **values)


def data(rows: int = 120):
    frame = toy_frame(rows, seed=3)
    frame["y"] = (frame["x"] > 5).map({True: "yes", False: "no"}).astype("str")
    x, y = features.split_xy(frame, TOY)
    featurize = Featurize(numeric_impute="median", scale=True, min_frequency=0)
    return x, y, features.preprocessor(TOY, featurize).fit(x)


def run_all(seed: int = 0, candidates: dict = CANDIDATES, rows: int = 120, **values):
    x, y, pre = data(rows)
    settings = train_settings(candidates, **values)
    return search.search(settings.candidates, pre, x, y, settings, seed)


def test_search_is_repeatable_for_a_seed() -> None:
    first, second = run_all(), run_all()
    assert [(r.best_params, r.cv_mean) for r in first] == [(r.best_params, r.cv_mean) for r in second]
    assert len(first[0].table) == 2 and len(first[1].table) == 2


def test_best_takes_the_top_score_and_breaks_ties_by_order() -> None:
    results = run_all()
    best = search.best(results)
    assert best.cv_mean == max(r.cv_mean for r in results)
    tied = [results[0], results[0].__class__(**{**results[1].__dict__, "cv_mean": results[0].cv_mean})]
    assert search.best(tied) is tied[0]


def test_refit_gives_a_pipeline_that_learned_the_rule() -> None:
    x, y, pre = data()
    winner = search.best(run_all())
    model = training.refit(winner, pre, x, y, seed=0)
    assert [name for name, _ in model.steps] == ["preprocess", "model"]
    assert model.steps[0][1] is pre
    assert (model.predict(x) == y).mean() > 0.9


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ({}, r"train\.candidates: is empty"),
        ({"a": {"grid": {}}}, r"train\.candidates\.a\.estimator: missing"),
        ({"a": {"estimator": "svm"}}, r"train\.candidates\.a\.estimator: Input should be 'logistic_regression'"),
        ({"a": {"estimator": "random_forest", "grid": {"max_depth": []}}}, "non-empty list"),
        ({"a": {"estimator": "random_forest", "fixed": {"depth": 3}}}, "has no parameter depth"),
        ({"a": {"estimator": "random_forest", "grid": {"depth": [3]}}}, "random_forest has no parameter depth"),
        ({"a": {"estimator": "lightgbm", "grid": {"num_leave": [7]}}}, "lightgbm has no parameter num_leave"),
        ({"a": {"estimator": "logistic_regression", "grid": {"C": [-1.0]}}}, r"train: candidate 'a' failed: .*C"),
    ],
)
def test_bad_candidate_params_are_clear_errors(candidates: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        run_all(candidates=candidates)


@pytest.mark.parametrize(
    ("search_values", "message"),
    [
        ({**HALVING, "method": "random"}, r"train\.search\.method"),
        ({**HALVING, "factor": 1}, r"train\.search\.factor: .*greater than or equal to 2"),
        ({**HALVING, "min_rows": 0}, r"train\.search\.min_rows: .*greater than or equal to 1"),
        ({**HALVING, "max_rows": -1}, r"train\.search\.max_rows: .*greater than or equal to 0"),
    ],
)
def test_bad_search_params_are_clear_errors(search_values: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        train_settings(CANDIDATES, search=search_values)


def test_one_round_scores_every_configuration_as_grid_search_would() -> None:
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    from tabpipe.model import estimators

    x, y, pre = data()
    settings = train_settings(CANDIDATES)
    assert search.plan(4, len(x), settings.search) == [len(x)]  # too few rows for a second round
    for result in search.search(settings.candidates, pre, x, y, settings, 0):
        spec = result.spec
        pipeline = Pipeline(
            [("preprocess", clone(pre)), ("model", estimators.estimator(spec.estimator, spec.fixed, 0))]
        )
        reference = GridSearchCV(
            pipeline,
            {f"model__{k}": v for k, v in spec.grid.items()},
            scoring=settings.scoring,
            cv=StratifiedKFold(n_splits=settings.cv_folds, shuffle=True, random_state=0),
            refit=False,
        ).fit(x, y)
        assert [row["mean_score"] for row in result.table] == list(reference.cv_results_["mean_test_score"])
        assert [row["std_score"] for row in result.table] == list(reference.cv_results_["std_test_score"])
        assert result.best_params == {k.removeprefix("model__"): v for k, v in reference.best_params_.items()}


def test_halving_keeps_the_best_third_and_gives_them_every_row() -> None:
    candidates = {
        "logreg": {"estimator": "logistic_regression", "grid": {"C": [0.001, 0.01, 1.0]}},
        "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 10}, "grid": {"max_depth": [1, 2, None]}},
    }
    results = run_all(candidates=candidates, rows=900, search=HALVING)
    first = [row for r in results for row in r.table if row["rows"] == 300]
    last = [(r.name, row) for r in results for row in r.table if row["rows"] == 900]
    assert len(first) == 6 and len(last) == 2  # 6 configurations on a third of the rows, the best 2 on all
    cut = sorted((row["mean_score"] for row in first), reverse=True)[1]
    assert all(row["mean_score"] >= cut for _, row in last)
    winner = search.best(results)
    assert winner.rows == 900 and winner.cv_mean == max(row["mean_score"] for _, row in last)
    assert {name for name, _ in last} >= {winner.name}
    assert training.summary(winner, results, folds=3)["fits"] == (6 + 2) * 3
    assert [(r.best_params, r.cv_mean) for r in results] == [
        (r.best_params, r.cv_mean) for r in run_all(candidates=candidates, rows=900, search=HALVING)
    ]


def test_max_rows_caps_the_rows_every_round_searches_on_but_not_the_refit() -> None:
    results = run_all(rows=900, search={**HALVING, "max_rows": 450})
    assert sorted({row["rows"] for r in results for row in r.table}) == [150, 450]
    assert search.best(results).rows == 450
    x, y, pre = data(900)
    (forest,) = [r for r in results if r.name == "forest"]
    tree = training.refit(forest, pre, x, y, 0)[-1].estimators_[0].tree_
    assert tree.weighted_n_node_samples[0] == 900  # its bootstrap draws from every training row


@given(
    configurations=st.integers(1, 200),
    rows=st.integers(1, 10**7),
    factor=st.integers(2, 5),
    min_rows=st.integers(1, 10**5),
    max_rows=st.integers(0, 10**6),
)
def test_halving_plans_end_on_every_row_with_at_most_factor_left(
    configurations: int, rows: int, factor: int, min_rows: int, max_rows: int
) -> None:
    rules = Search(method="halving", factor=factor, min_rows=min_rows, max_rows=max_rows)
    schedule = search.plan(configurations, rows, rules)
    searched = min(rows, max_rows) if max_rows else rows  # every row, or at most max_rows
    counts = search.survivors(configurations, schedule, factor)
    rounds = len(schedule)
    assert schedule == [searched // factor ** (rounds - 1 - i) for i in range(rounds)]  # ends on all searched
    assert rounds == 1 or schedule[0] >= min_rows
    assert counts[-1] <= factor or searched // factor**rounds < min_rows  # stops when cut down, or out of rows
    assert rounds == 1 or counts[-2] > factor  # no round after the field is cut down
    assert counts == [math.ceil(configurations / factor**i) for i in range(rounds)]
    grid = Search(method="grid", factor=factor, min_rows=min_rows, max_rows=max_rows)
    assert search.plan(configurations, rows, grid) == [searched]


def test_each_configuration_is_reported_as_it_finishes() -> None:
    x, y, pre = data(rows=900)
    candidates = {
        "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 5}, "grid": {"max_depth": [1, 2, 3, 4]}}
    }
    settings = train_settings(candidates, search=HALVING)
    steps: list[Step] = []

    class Recorder(Progress):
        def __call__(self, step: Step) -> None:
            steps.append(step)

    import logging

    [result] = search.search(settings.candidates, pre, x, y, settings, 0, Recorder(6, 3, logging.getLogger("t")))
    assert [(s.index, s.total) for s in steps] == [(1, 4), (2, 4), (3, 4), (4, 4), (1, 2), (2, 2)]
    assert [s.params for s in steps] == [row["params"] for row in result.table]
    assert [s.mean for s in steps] == [row["mean_score"] for row in result.table]


def test_progress_lines_say_what_is_done_and_what_is_left(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    log = logging.getLogger("test-progress")
    progress = Progress(configurations=4, folds=5, log=log)
    with caplog.at_level(logging.INFO, logger="test-progress"):
        progress.start(1, 2, 4, 1200, 3600)
        for index in (1, 2):
            progress(Step("forest", index, 4, {"max_depth": index}, 0.9, 0.01, 0.5))
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "round 1/2: 4 configuration(s) x 5 folds = 20 fits, on 1200 of 3600 training rows"
    assert lines[1].startswith("forest 1/4 (max_depth=1): CV 0.9000 +/- 0.0100 in 0.5 s | 1/4 done,")
    assert "2/4 done" in lines[2] and "about" in lines[2] and lines[2].endswith("s left")


def test_permutation_importance_reports_progress_and_keeps_scikit_learns_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import get_scorer

    from tabpipe.model import evaluation

    frame = toy_frame(rows=80)
    x, y = frame[["x", "z"]], frame["y"].to_numpy()
    model = LogisticRegression().fit(x, y)
    counted = evaluation._Counted(get_scorer("accuracy"), total=1 + 2 * 3, repeats=3, started=0.0, every=0.0)
    with caplog.at_level(logging.INFO, logger="evaluate"):
        got = permutation_importance(model, x, y, scoring=counted, n_repeats=3, random_state=7)
    expected = permutation_importance(model, x, y, scoring="accuracy", n_repeats=3, random_state=7)
    assert (got.importances == expected.importances).all()
    lines = [r.getMessage() for r in caplog.records if r.name == "evaluate"]
    assert counted.calls == 7 and len(lines) == 6  # every call but the last
    assert lines[0].startswith("permutation importance: 0/2 features,") and lines[-1].startswith(
        "permutation importance: 1/2 features,"
    )


def test_the_heartbeat_names_the_work_while_no_configuration_finishes(caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import time

    log = logging.getLogger("test-heartbeat")
    progress = Progress(configurations=1, folds=5, log=log)
    with caplog.at_level(logging.INFO, logger="test-heartbeat"), progress.heartbeat(every=0.05):
        progress.start(1, 1, 1, 100, 100)
        time.sleep(0.5)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "round 1/1: 1 configuration(s) x 5 folds = 5 fits, on 100 of 100 training rows"
    beats = [line for line in lines[1:] if line.startswith("still cross-validating round 1/1, ")]
    assert beats and len(beats) == len(lines) - 1 and beats[-1].endswith(" s elapsed")
    count = len(caplog.records)
    time.sleep(0.2)
    assert len(caplog.records) == count  # the heartbeat stops with its block
