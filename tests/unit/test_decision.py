"""A binary decision: the threshold chosen on out-of-fold probabilities, the labels it gives everywhere
(the pipeline, the compiled model), its metrics, and the calibration error."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Decision as DecisionRule
from tabpipe.core.settings import Featurize, Train
from tabpipe.model import compiled, conversion, features, search
from tabpipe.task import classification, tasks
from tabpipe.task.base import Predicted, Winner
from tabpipe.task.classification import THRESHOLDS, Classification, Decision
from tests.support.data import TOY, toy_frame
from tests.support.params import params_section

TASK = Classification()
LOGISTIC = {"logreg": {"estimator": "logistic_regression", "grid": {"C": [1.0]}}}


def rule(**changes) -> DecisionRule:
    found = params_section(DecisionRule).model_dump()
    found.update(changes)
    return DecisionRule.model_validate(found)


def calibrated(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities that are calibrated by construction: `yes` comes true as often as it says."""
    rng = np.random.default_rng(seed)
    p = rng.random(rows)
    return np.where(rng.random(rows) < p, "yes", "no"), np.column_stack([1 - p, p])


def decided(proba: np.ndarray, decision: Decision | None) -> Predicted:
    classes = ["no", "yes"]
    return Predicted(classification.labels(proba, classes, decision), proba, classes, decision=decision)


def brute_cost(truth: np.ndarray, score: np.ndarray, threshold: float, costs: tuple[float, float]) -> float:
    chosen = score >= threshold
    return (np.sum(chosen & ~truth) * costs[0] + np.sum(~chosen & truth) * costs[1]) / len(truth)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(2, 300),
    false_positive=st.floats(0.1, 10),
    false_negative=st.floats(0.1, 10),
)
def test_the_chosen_threshold_minimises_the_cost_over_the_grid(
    seed: int, rows: int, false_positive: float, false_negative: float
) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(rows) < 0.3
    score = np.clip(rng.normal(0.3 + 0.4 * truth, 0.2), 0, 1).round(rng.integers(1, 4))  # ties at coarse rounding
    costs = (false_positive, false_negative)
    threshold, value = classification.choose_threshold("cost", truth, score, costs)
    assert threshold in THRESHOLDS
    assert value == pytest.approx(brute_cost(truth, score, threshold, costs))
    for other in THRESHOLDS[::37]:
        assert value <= brute_cost(truth, score, other, costs) + 1e-12


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), objective=st.sampled_from(["f1", "balanced_accuracy"]))
def test_f1_and_balanced_accuracy_thresholds_are_the_best_on_the_grid(seed: int, objective: str) -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    rng = np.random.default_rng(seed)
    truth = rng.random(200) < 0.25
    score = np.clip(rng.normal(0.3 + 0.3 * truth, 0.2), 0, 1)
    measure = f1_score if objective == "f1" else balanced_accuracy_score
    threshold, value = classification.choose_threshold(objective, truth, score, None)
    assert value == pytest.approx(measure(truth, score >= threshold))
    assert all(value >= measure(truth, score >= t) - 1e-12 for t in THRESHOLDS[::50])


def test_labels_follow_the_threshold_on_the_positive_class() -> None:
    proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8]])
    classes = ["no", "yes"]
    assert classification.labels(proba, classes).tolist() == ["no", "no", "no", "yes"]
    decided = classification.labels(proba, classes, Decision("cost", "yes", 0.3))
    assert decided.tolist() == ["no", "yes", "yes", "yes"]  # a probability at the threshold decides positive
    about_no = classification.labels(proba, classes, Decision("cost", "no", 0.65))
    assert about_no.tolist() == ["no", "no", "yes", "yes"]


def test_the_positive_class_is_the_rarer_one_unless_named() -> None:
    y = np.array(["a", "b", "b", "b"])
    assert classification.positive_class("", y) == "a"
    assert classification.positive_class("b", y) == "b"
    assert classification.positive_class("", np.array(["a", "b"])) == "b"  # a tie: the later name
    with pytest.raises(PipelineError, match=r"decision\.positive_class 'c' is not a class \(a, b\)"):
        classification.positive_class("c", y)


def test_a_threshold_objective_on_three_classes_is_one_line() -> None:
    with pytest.raises(PipelineError, match=r"decision\.objective f1 is binary only; the target has 3 classes"):
        TASK.check(rule(objective="f1"), np.array(["a", "b", "c"]))
    TASK.check(rule(), np.array(["a", "b", "c"]))  # argmax suits any number of classes
    with pytest.raises(PipelineError, match="applies to classification"):
        tasks.of("regression").check(rule(objective="f1"), np.array([1.0, 2.0]))


def test_objective_cost_needs_both_costs() -> None:
    with pytest.raises(ValidationError, match=r"objective cost needs cost\.false_positive and cost\.false_negative"):
        rule(objective="cost")
    assert rule(objective="cost", cost={"false_positive": 1, "false_negative": 5}).cost.set


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_calibrated_scores_have_no_calibration_error_and_skewed_ones_do(seed: int) -> None:
    y, proba = calibrated(100_000, seed)
    p = proba[:, 1]
    assert classification.expected_calibration_error(y, proba, ["no", "yes"]) < 0.01  # sampling error only
    skewed = np.column_stack([1 - p**3, p**3])
    assert classification.expected_calibration_error(y, skewed, ["no", "yes"]) > 0.1


def test_the_multiclass_calibration_error_is_the_top_class_confidence_against_accuracy() -> None:
    proba = np.array([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    y = np.array(["a", "b", "c", "c"])
    # confidence 0.8 in one bin, three of four right: |0.75 - 0.8|
    assert classification.expected_calibration_error(y, proba, ["a", "b", "c"]) == pytest.approx(0.05)


def fitted_toy():
    frame = toy_frame(200, seed=3)
    x, y = features.split_xy(frame, TOY)
    train = params_section(Train)
    folds = search.cv_folds(x, y, 3, 0)
    preprocessor = features.preprocessor(TOY, params_section(Featurize))
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    model = Pipeline([("preprocess", preprocessor), ("model", LogisticRegression())]).fit(x, y)
    return model, x, y, folds, train


def test_finish_attaches_a_threshold_from_out_of_fold_probabilities_and_costs() -> None:
    from sklearn.base import clone

    model, x, y, folds, train = fitted_toy()
    decision = rule(objective="cost", cost={"false_positive": 1, "false_negative": 5})
    TASK.finish(model, Winner("logreg", clone(model), x, y, folds, train, decision))
    carried = classification.decision_of(model)
    assert carried.objective == "cost" and carried.positive in ("no", "yes") and carried.costs == (1, 5)
    assert carried.threshold in THRESHOLDS and carried.cv_value is not None
    assert TASK.carried(model) == {"decision": model.decision_}
    untouched, *_ = fitted_toy()
    TASK.finish(untouched, Winner("logreg", None, x, y, folds, train, rule()))
    assert not hasattr(untouched, "decision_")  # argmax without costs: the model stays as it was


def test_the_compiled_model_decides_as_the_pipeline_does() -> None:
    model, x, *_ = fitted_toy()
    model.decision_ = {"objective": "cost", "positive": "yes", "threshold": 0.2, "false_positive": 1.0,
                       "false_negative": 5.0, "cv_value": 0.4}  # fmt: skip
    served = compiled.Compiled(conversion.compile_pipeline(model, TOY), TASK)
    ours, theirs = TASK.predict(model, x), TASK.predict(served, x)
    assert (ours.labels == theirs.labels).all() and (served.predict(x) == ours.labels).all()
    assert (ours.labels != classification.labels(ours.outputs, ours.names)).any()  # the threshold moved some
    assert TASK.agreement(model, served, x)["label_agreement"] == 1.0


def test_evaluate_reports_the_decision_and_the_cost_at_argmax() -> None:
    y = np.array(["no", "no", "yes", "yes", "no"])
    proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.55, 0.45]])
    decision = Decision("cost", "yes", 0.35, 1.0, 5.0)
    predicted = Predicted(
        classification.labels(proba, ["no", "yes"], decision), proba, ["no", "yes"], decision=decision
    )
    found = TASK.measure(y, predicted)
    assert found["threshold"] == 0.35 and all(
        isinstance(v, int | float) for k, v in found.items() if k != "f1_per_class"
    )
    # decided: no, no, yes, yes, yes: one false alarm; at argmax: one miss (5)
    assert found["expected_cost"] == pytest.approx(1 / 5) and found["expected_cost_argmax"] == pytest.approx(5 / 5)
    assert found["recall_positive"] == 1.0 and found["precision_positive"] == pytest.approx(2 / 3)
    assert 0 <= found["ece"] <= 1 and found["brier"] == pytest.approx(np.mean((proba[:, 1] - (y == "yes")) ** 2))


def test_the_reliability_bins_add_up_to_the_calibration_error_and_the_cost_curve_bottoms_near_its_ratio() -> None:
    from dataclasses import replace

    y, proba = calibrated(50_000, 4)
    classes = ["no", "yes"]
    predicted = decided(proba, Decision("cost", "yes", 0.5, 1.0, 5.0))
    points = classification.reliability_points(y, predicted)
    assert sum(point["rows"] for point in points) == len(y) and len(points) == classification.ECE_BINS
    weighted = sum(point["rows"] * abs(point["frequency"] - point["probability"]) for point in points) / len(y)
    assert weighted == pytest.approx(classification.expected_calibration_error(y, proba, classes), abs=1e-5)
    curve = classification.cost_points(y, predicted)
    assert [point["threshold"] for point in curve] == [round(i / 100, 2) for i in range(1, 100)]
    cheapest = min(curve, key=lambda point: point["expected_cost"])["threshold"]
    assert abs(cheapest - 1 / 6) <= 0.03  # calibrated probabilities: the cost ratio's threshold, 1 / (1 + 5)
    assert classification.cost_points(y, replace(predicted, decision=None)) == []


def test_the_gate_compares_two_decisions_at_the_candidates_costs() -> None:
    from tabpipe.model import gate

    y, proba = calibrated(3000, 7)
    candidate = decided(proba, Decision("cost", "yes", 0.167, 1.0, 5.0))
    champion = TASK.judged_like(decided(proba, None), candidate)
    assert champion.decision == Decision("argmax", "yes", None, 1.0, 5.0)  # its own labels, our prices
    assert TASK.judged_like(champion, decided(proba, None)) is champion  # a candidate without costs: as it is
    found = gate.compare(
        "expected_cost", y, candidate, champion, TASK, test="bootstrap", rounds=200, seed=0, alpha=0.05
    )
    assert found.candidate < found.champion and found.difference > 0 and found.p_value < 0.01


def test_balanced_class_weight_reaches_every_family_that_takes_it(caplog: pytest.LogCaptureFixture) -> None:
    from tabpipe.model import training

    plain = params_section(Train)
    assert training.weighted(plain, TASK) is plain  # class_weight none: the candidates as written
    balanced = plain.model_copy(update={"class_weight": "balanced"})
    found = training.weighted(balanced, TASK).candidates
    assert {spec.fixed["class_weight"] for spec in found.values()} == {"balanced"} and len(found) == len(
        plain.candidates
    )
    regressors = balanced.for_task("regression")
    with caplog.at_level("WARNING", logger="train"):
        assert training.weighted(regressors, tasks.of("regression")) is regressors
    (line,) = [r.getMessage() for r in caplog.records if "class_weight" in r.getMessage()]
    assert line == "train.class_weight: balanced does not apply to a regression task: no classes to weigh"


def test_a_candidate_without_class_weight_is_named_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from tabpipe.core.settings import Candidate
    from tabpipe.model import training

    mixed = params_section(Train).model_copy(
        update={
            "class_weight": "balanced",
            "candidates": {"plain": Candidate(estimator="ridge"), "logreg": Candidate(**LOGISTIC["logreg"])},
        }
    )
    with caplog.at_level("WARNING", logger="train"):
        found = training.weighted(mixed, TASK).candidates
    assert "class_weight" not in found["plain"].fixed and found["logreg"].fixed["class_weight"] == "balanced"
    (line,) = [r.getMessage() for r in caplog.records if "class_weight" in r.getMessage()]
    assert line == "train.class_weight: balanced does not reach plain (ridge): no class_weight parameter"


def test_the_decisions_point_lies_on_the_precision_recall_curve_and_is_marked_on_its_figure() -> None:
    from dataclasses import replace

    from sklearn.metrics import precision_recall_curve

    from tabpipe.model import figures

    y, proba = calibrated(2000, 11)
    predicted = decided(proba, Decision("f1", "yes", 0.4))
    [point] = classification.decision_point(y, predicted)
    precision, recall, thresholds = precision_recall_curve(y == "yes", proba[:, 1])
    at = np.searchsorted(thresholds, 0.4)  # the curve's point for the lowest score at or above 0.4
    assert point == {"recall": pytest.approx(recall[at], abs=1e-6), "precision": pytest.approx(precision[at], abs=1e-6),
                     "threshold": 0.4}  # fmt: skip
    assert classification.decision_point(y, replace(predicted, decision=None)) == []
    curves = TASK.curves(y, predicted, seed=0)
    _, figure = figures.of_plot("pr", curves)
    marks = [line for line in figure.axes[0].lines if len(line.get_xdata()) == 1]
    assert [(m.get_xdata()[0], m.get_ydata()[0]) for m in marks] == [(point["recall"], point["precision"])]
    _, plain = figures.of_plot("pr", curves | {"decision": []})
    assert all(len(line.get_xdata()) > 1 for line in plain.axes[0].lines)
