"""Candidate search: seeded and repeatable, picks the best CV score, refits a deployable pipeline."""

import pytest

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Featurize, Train
from tabpipe.model import features, search
from tests.helpers import TOY, params_section, toy_frame

CANDIDATES = {
    "logreg": {"estimator": "logistic_regression", "grid": {"C": [0.1, 1.0]}},
    "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 10}, "grid": {"max_depth": [2, None]}},
}


def train_settings(candidates: dict) -> Train:
    return params_section(Train, candidates=candidates, scoring="roc_auc_ovr", cv_folds=3, n_jobs=1)


def data():
    frame = toy_frame(120, seed=3)
    frame["y"] = (frame["x"] > 5).map({True: "yes", False: "no"}).astype("str")
    x, y = features.split_xy(frame, TOY)
    featurize = Featurize(numeric_impute="median", scale=True, min_frequency=0)
    return x, y, features.preprocessor(TOY, featurize).fit(x)


def run_all(seed: int = 0):
    x, y, pre = data()
    settings = train_settings(CANDIDATES)
    return [search.search(name, spec, pre, x, y, settings, seed) for name, spec in settings.candidates.items()]


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
    model = search.refit(winner, pre, x, y, seed=0)
    assert [name for name, _ in model.steps] == ["preprocess", "model"]
    assert model.steps[0][1] is pre
    assert (model.predict(x) == y).mean() > 0.9


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ({}, r"train\.candidates: is empty"),
        ({"a": {"grid": {}}}, r"train\.candidates\.a\.estimator: missing"),
        ({"a": {"estimator": "svm"}}, "estimator 'svm'"),
        ({"a": {"estimator": "random_forest", "grid": {"max_depth": []}}}, "non-empty list"),
        ({"a": {"estimator": "random_forest", "fixed": {"depth": 3}}}, "has no parameter depth"),
        ({"a": {"estimator": "random_forest", "grid": {"depth": [3]}}}, "random_forest has no parameter depth"),
        ({"a": {"estimator": "lightgbm", "grid": {"num_leave": [7]}}}, "lightgbm has no parameter num_leave"),
        (
            {"a": {"estimator": "random_forest", "grid": {"max_depth": [-3]}}},
            r"train: candidate 'a' failed: .*max_depth",
        ),
    ],
)
def test_bad_candidate_params_are_clear_errors(candidates: dict, message: str) -> None:
    x, y, pre = data()
    with pytest.raises(PipelineError, match=message):
        settings = train_settings(candidates)
        for name, spec in settings.candidates.items():
            search.search(name, spec, pre, x, y, settings, seed=0)


def test_each_configuration_is_reported_as_it_finishes_and_scores_as_grid_search_would() -> None:
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    from tabpipe.model import estimators

    x, y, pre = data()
    settings = train_settings(CANDIDATES)
    spec = settings.candidates["forest"]
    steps: list[search.Step] = []
    result = search.search("forest", spec, pre, x, y, settings, 0, steps.append)
    assert [(s.index, s.total) for s in steps] == [(1, 2), (2, 2)]
    assert [s.params for s in steps] == [row["params"] for row in result.table]
    assert [s.mean for s in steps] == [row["mean_score"] for row in result.table]

    pipeline = Pipeline([("preprocess", clone(pre)), ("model", estimators.estimator(spec.estimator, spec.fixed, 0))])
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


def test_progress_lines_say_what_is_done_and_what_is_left(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    log = logging.getLogger("test-progress")
    progress = search.Progress(configurations=4, folds=5, log=log)
    with caplog.at_level(logging.INFO, logger="test-progress"):
        progress.start("forest", 4)
        for index in (1, 2):
            progress(search.Step("forest", index, 4, {"max_depth": index}, 0.9, 0.01, 0.5))
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "forest: 4 configuration(s) x 5 folds = 20 fits"
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
    progress = search.Progress(configurations=1, folds=5, log=log)
    with caplog.at_level(logging.INFO, logger="test-heartbeat"), progress.heartbeat(every=0.05):
        progress.start("forest", 1)
        time.sleep(0.5)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "forest: 1 configuration(s) x 5 folds = 5 fits"
    beats = [line for line in lines[1:] if line.startswith("still cross-validating forest, ")]
    assert beats and len(beats) == len(lines) - 1 and beats[-1].endswith(" s elapsed")
    count = len(caplog.records)
    time.sleep(0.2)
    assert len(caplog.records) == count  # the heartbeat stops with its block
