"""Candidate search: seeded and repeatable, picks the best CV score, refits a deployable pipeline."""

import pytest

from tabpipe import features, training
from tabpipe.errors import PipelineError
from tests.conftest import TOY, toy_frame

PARAMS = {
    "candidates": {
        "logreg": {"estimator": "logistic_regression", "grid": {"C": [0.1, 1.0]}},
        "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 10}, "grid": {"max_depth": [2, None]}},
    }
}


def data():
    frame = toy_frame(120, seed=3)
    frame["y"] = (frame["x"] > 5).map({True: "yes", False: "no"}).astype("str")
    x, y = features.split_xy(frame, TOY)
    return x, y, features.preprocessor(TOY, {}).fit(x)


def run_all(seed: int = 0):
    x, y, pre = data()
    return [
        training.search(c, pre, x, y, scoring="roc_auc_ovr", folds=3, seed=seed, n_jobs=1)
        for c in training.candidates(PARAMS)
    ]


def test_search_is_repeatable_for_a_seed() -> None:
    first, second = run_all(), run_all()
    assert [(r.best_params, r.cv_mean) for r in first] == [(r.best_params, r.cv_mean) for r in second]
    assert len(first[0].table) == 2 and len(first[1].table) == 2


def test_select_takes_the_best_and_breaks_ties_by_order() -> None:
    results = run_all()
    best = training.select(results)
    assert best.cv_mean == max(r.cv_mean for r in results)
    tied = [results[0], results[0].__class__(**{**results[1].__dict__, "cv_mean": results[0].cv_mean})]
    assert training.select(tied) is tied[0]


def test_refit_gives_a_pipeline_that_learned_the_rule() -> None:
    x, y, pre = data()
    winner = training.select(run_all())
    model = training.refit(winner, pre, x, y, seed=0)
    assert [name for name, _ in model.steps] == ["preprocess", "model"]
    assert model.steps[0][1] is pre
    assert (model.predict(x) == y).mean() > 0.9


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"candidates": {}}, "train.candidates is empty"),
        ({"candidates": {"a": {"grid": {}}}}, "needs an 'estimator'"),
        ({"candidates": {"a": {"estimator": "svm"}}}, "estimator 'svm'"),
        ({"candidates": {"a": {"estimator": "random_forest", "grid": {"max_depth": []}}}}, "non-empty list"),
        ({"candidates": {"a": {"estimator": "random_forest", "fixed": {"depth": 3}}}}, "has no parameter depth"),
    ],
)
def test_bad_candidate_params_are_clear_errors(params: dict, message: str) -> None:
    x, y, pre = data()
    with pytest.raises(PipelineError, match=message):
        for candidate in training.candidates(params):
            training.search(candidate, pre, x, y, scoring="roc_auc_ovr", folds=3, seed=0, n_jobs=1)
