"""Evaluation metrics and plot data, checked against scikit-learn and hand-made cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tabpipe.model import evaluation
from tabpipe.task import base, classification
from tabpipe.task.base import Predicted
from tabpipe.task.classification import Classification

CLASSES = ["a", "b", "c"]


def answer(proba: np.ndarray, classes: list[str]) -> Predicted:
    return Predicted(classification.labels(proba, classes), proba, list(classes))


def test_perfect_multiclass_predictions() -> None:
    y = np.array(["a", "b", "c", "a"])
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9], [0.6, 0.2, 0.2]])
    m = Classification().measure(y, answer(proba, CLASSES))
    assert m["accuracy"] == 1.0 and m["f1_macro"] == 1.0 and m["roc_auc"] == 1.0
    assert m["f1_per_class"] == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert m["rows"] == 4


def test_binary_roc_auc_uses_the_second_class_as_positive() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes"])
    p_yes = np.array([0.2, 0.7, 0.4, 0.5, 0.9])
    m = Classification().measure(y, answer(np.column_stack([1 - p_yes, p_yes]), ["no", "yes"]))
    assert m["roc_auc"] == round(roc_auc_score(y == "yes", p_yes), 6)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=30, max_value=3000))
def test_curves_are_bounded_monotone_and_small(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, rows)
    proba = rng.dirichlet([1, 1, 1], rows)
    roc = classification.roc_points(y, answer(proba, CLASSES))
    assert 2 <= len(roc) <= base.MAX_CURVE_POINTS
    fpr = [p["fpr"] for p in roc]
    assert fpr == sorted(fpr) and roc[0]["fpr"] == 0 and roc[-1]["fpr"] == 1 and roc[-1]["tpr"] == 1
    pr = classification.pr_points(y, answer(proba, CLASSES))
    assert len(pr) <= base.MAX_CURVE_POINTS
    assert all(0 <= p["precision"] <= 1 and 0 <= p["recall"] <= 1 for p in pr)


def test_predict_labels_are_the_argmax_of_probabilities() -> None:
    class Model:
        classes_ = np.array(CLASSES)

        def predict_proba(self, x):
            return np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]])

    predicted = Classification().predict(Model(), None)
    labels, proba = predicted.labels, predicted.outputs
    assert list(labels) == ["b", "a"] and proba.dtype == np.float64


def test_predictions_frame_holds_every_class_probability() -> None:

    proba = np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]])
    frame = Classification().table(np.array(["b", "c"]), Predicted(np.array(["b", "a"]), proba, CLASSES))
    assert list(frame.columns) == ["row", "actual", "predicted", "proba_a", "proba_b", "proba_c"]
    assert frame["proba_a"].tolist() == pytest.approx([0.2, 0.7])


def test_permutation_importance_on_a_seeded_sample_of_a_large_test_set(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import pandas as pd
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"signal": rng.normal(size=600), "noise": rng.normal(size=600)})
    y = np.where(x["signal"] + 0.3 * rng.normal(size=600) > 0, "a", "b")
    model = LogisticRegression().fit(x, y)
    with caplog.at_level(logging.INFO, logger="evaluate"):
        sampled = evaluation.importance(model, x, y, scoring="roc_auc", repeats=3, seed=5, rows=200)
        whole = evaluation.importance(model, x, y, scoring="roc_auc", repeats=3, seed=5, rows=0)
    xs, _, ys, _ = train_test_split(x, y, train_size=200, stratify=y, random_state=5)
    expected = permutation_importance(model, xs, ys, scoring="roc_auc", n_repeats=3, random_state=5)
    by_name = {row["feature"]: row["importance"] for row in sampled}
    assert by_name["signal"] == round(float(expected.importances_mean[0]), 6)
    assert sampled != whole and [row["feature"] for row in sampled] == ["signal", "noise"]
    lines = [r.getMessage() for r in caplog.records if r.name == "evaluate"]
    assert "on a seeded sample of 200 of 600 test rows (evaluate.importance_rows)" in lines[0]
    assert lines[2].endswith("on 600 rows")


@settings(deadline=None)
@given(
    n_classes=st.sampled_from([2, 3]),
    rows=st.integers(4, 40),
    seed=st.integers(0, 2**16),
    grid=st.sampled_from([0, 4]),
    metric=st.sampled_from(["roc_auc", "accuracy"]),
)
def test_resampled_scores_match_scikit_learn_on_each_resample(
    n_classes: int, rows: int, seed: int, grid: int, metric: str
) -> None:
    """The gate's vectorised bootstrap gives what scikit-learn gives on every resample (ties included: grid)."""
    rng = np.random.default_rng(seed)
    classes = CLASSES[:n_classes]
    y = np.asarray(classes)[rng.integers(0, n_classes, rows)]
    weights = rng.integers(1, grid + 1, (rows, n_classes)) if grid else rng.random((rows, n_classes)) + 0.01
    proba = weights / weights.sum(axis=1, keepdims=True)  # grid: coarse probabilities, many tied scores
    samples = rng.integers(0, rows, (25, rows))
    fast = classification.sample_scores(metric, y, proba, classes, samples)
    for sample, value in zip(samples, fast, strict=True):
        if metric == "roc_auc" and len(set(y[sample])) < n_classes:
            assert np.isnan(value)  # a class missing from the resample: no one-vs-rest ROC AUC
            continue
        assert value == pytest.approx(classification.score(metric, y[sample], proba[sample], classes), abs=1e-12)
