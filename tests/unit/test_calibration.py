"""Calibration: the map fitted on out-of-fold probabilities, what it does to miscalibrated scores, and
that the pipeline and the compiled model answer the same after it, for every classifier family."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from tabpipe.core.settings import Train
from tabpipe.model import compiled, conversion, estimators, features, training
from tabpipe.task import calibration, classification, tasks
from tabpipe.task.base import Winner
from tabpipe.task.classification import Classification
from tests.support.data import TOY, toy_frame
from tests.support.params import params_section
from tests.unit.test_compiled import SCHEMA, fitted, frame
from tests.unit.test_decision import fitted_toy, rule

TASK = Classification()


def overconfident(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that say p where the truth comes true as often as p**2 says, over two classes."""
    rng = np.random.default_rng(seed)
    p = rng.random(rows)
    return np.where(rng.random(rows) < p**2, "yes", "no"), np.column_stack([1 - p, p])


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_a_map_fitted_out_of_sample_lowers_the_calibration_error_on_new_rows(method: str) -> None:
    y_fit, raw_fit = overconfident(20_000, 0)
    y_new, raw_new = overconfident(20_000, 1)
    fitted_map = calibration.fit(method, raw_fit, y_fit, ["no", "yes"])
    mapped = calibration.apply(raw_new, fitted_map)
    before = classification.expected_calibration_error(y_new, raw_new, ["no", "yes"])
    after = classification.expected_calibration_error(y_new, mapped, ["no", "yes"])
    assert before > 0.1 and after < 0.03, (before, after)
    np.testing.assert_allclose(mapped.sum(axis=1), 1.0, atol=1e-12)
    # a monotone map: the ranking, hence ROC AUC, is kept (isotonic may tie neighbours, never swap them)
    order = np.argsort(raw_new[:, 1], kind="stable")
    assert (np.diff(mapped[order, 1]) >= -1e-12).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(5, 400), classes=st.integers(2, 4))
def test_isotonic_equals_scikit_learns_and_rows_sum_to_one(seed: int, rows: int, classes: int) -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(classes)]
    raw = rng.dirichlet(np.ones(classes), rows).round(rng.integers(1, 4))  # ties at coarse rounding
    raw = raw / raw.sum(axis=1, keepdims=True)
    y = rng.choice(names, rows)
    fitted_map = calibration.fit("isotonic", raw, y, names)
    new = rng.dirichlet(np.ones(classes), 50)
    mapped = calibration.apply(new, fitted_map)
    assert mapped.shape == new.shape and np.isfinite(mapped).all()
    np.testing.assert_allclose(mapped.sum(axis=1), 1.0, atol=1e-9)
    if classes == 2:  # one map, of the second class, and the first is one minus it
        theirs = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(raw[:, 1], y == names[1])
        np.testing.assert_allclose(mapped[:, 1], theirs.predict(new[:, 1]), atol=1e-12)


def test_finish_calibrates_then_thresholds_and_reports_the_evidence_without_the_map() -> None:
    model, x, y, folds, train = fitted_toy()
    train = train.model_copy(update={"calibration": "isotonic"})
    TASK.finish(model, Winner("logreg", clone(model), x, y, folds, train, rule(objective="f1")))
    carried = model.calibration_
    assert carried["method"] == "isotonic" and len(carried["maps"]) == 1  # binary: one map, of the second class
    evidence = carried["out_of_fold"]
    assert set(evidence) == {"brier_before", "brier_after", "ece_before", "ece_after"}
    assert evidence["ece_after"] <= evidence["ece_before"]  # isotonic on its own points: never worse
    assert set(TASK.carried(model)) == {"decision", "calibration"}
    reported = TASK.reported(model)
    assert "maps" not in reported["calibration"] and reported["calibration"]["out_of_fold"] == evidence
    predicted = TASK.predict(model, x)
    raw = model.predict_proba(x)
    np.testing.assert_allclose(predicted.outputs, calibration.apply(raw, carried), atol=0)
    threshold = classification.decision_of(model).threshold
    assert (predicted.labels == np.where(predicted.outputs[:, 1] >= threshold, "yes", "no")).all()


def test_a_regression_drops_calibration_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    settings_ = params_section(Train).model_copy(update={"calibration": "sigmoid"})
    with caplog.at_level("WARNING", logger="train"):
        chosen = training.for_task(settings_, tasks.of("regression"))
    assert chosen.calibration == "none"
    assert [r.getMessage() for r in caplog.records] == [
        "train.calibration: sigmoid does not apply to a regression task: no probabilities"
    ]
    assert training.for_task(settings_, TASK).calibration == "sigmoid"


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("family", sorted(estimators.names("classification")))
def test_every_family_calibrated_compiles_and_answers_as_its_pipeline(family: str, method: str) -> None:
    """Three classes (one map each, renormalised): the compiled model reads the map from its metadata."""
    model = fitted(family)
    x, y = features.split_xy(frame(300, seed=5), SCHEMA)
    model.calibration_ = calibration.fit(method, model.predict_proba(x), y, list(model.classes_))
    served = compiled.Compiled(conversion.compile_pipeline(model, SCHEMA), tasks.of(SCHEMA.task))
    new, _ = features.split_xy(frame(400, seed=6), SCHEMA)
    ours, theirs = TASK.predict(model, new), TASK.predict(served, new)
    assert not np.allclose(ours.outputs, model.predict_proba(new))  # the map moved the probabilities
    agreement = TASK.agreement(model, served, new)
    # the compiled raw probabilities are within 1e-5 for trees (float32 sums); a map's slope can widen that
    assert agreement["max_probability_difference"] <= 1e-4, agreement
    assert agreement["label_agreement"] >= 0.99 and (served.predict(new) == ours.labels).sum() >= 0.99 * len(new)
    if family == "logistic_regression":
        assert agreement["max_probability_difference"] <= 1e-12 and (theirs.labels == ours.labels).all()


def test_the_toy_binary_pipeline_compiles_with_its_calibration_and_decision() -> None:
    model, x, y, folds, train = fitted_toy()
    train = train.model_copy(update={"calibration": "sigmoid"})
    TASK.finish(model, Winner("logreg", clone(model), x, y, folds, train, rule(objective="balanced_accuracy")))
    served = compiled.Compiled(conversion.compile_pipeline(model, TOY), TASK)
    new, _ = features.split_xy(toy_frame(300, seed=9), TOY)
    ours, theirs = TASK.predict(model, new), TASK.predict(served, new)
    assert (ours.labels == theirs.labels).all()
    np.testing.assert_allclose(theirs.outputs, ours.outputs, atol=1e-12)
    assert served.calibration_ == model.calibration_
