"""Gate rules and the paired significance tests behind the champion rule."""

import numpy as np
import pytest

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Gate
from tabpipe.model import gate
from tabpipe.task import classification
from tabpipe.task.base import Predicted
from tabpipe.task.classification import Classification
from tests.support.data import toy_frame
from tests.support.params import params_section

CLASSES = ["no", "yes"]


def answer(proba: np.ndarray) -> Predicted:
    return Predicted(classification.labels(proba, CLASSES), proba, CLASSES)


def noisy(y: np.ndarray, quality: float, seed: int) -> np.ndarray:
    """Binary probabilities that rank `y` well when quality is high and randomly when it is 0."""
    rng = np.random.default_rng(seed)
    score = quality * (y == "yes") + rng.normal(0, 0.5, len(y))
    p = 1 / (1 + np.exp(-3 * (score - quality / 2)))
    return np.column_stack([1 - p, p])


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(0).choice(CLASSES, 600)


def test_minimums_pass_and_fail_with_a_readable_line() -> None:
    rules = gate.threshold_rules({"roc_auc": 0.91, "f1_macro": 0.6}, {"roc_auc": 0.9, "f1_macro": 0.7}, {})
    assert [(r.name, r.passed) for r in rules] == [("min_roc_auc", True), ("min_f1_macro", False)]
    flags, lines = gate.verdict(rules)
    assert flags == {"min_roc_auc": True, "min_f1_macro": False, "passed": False}
    assert lines == ["gate: min_f1_macro: f1_macro 0.6000 is below the minimum 0.7000"]


def test_the_compiled_model_must_agree_with_the_pipeline() -> None:
    rule = params_section(Gate).compiled.model_copy(
        update={"min_label_agreement": 0.99, "max_probability_difference": 1e-4}
    )
    close = {"runtime": "onnx", "label_agreement": 0.995, "max_probability_difference": 3e-7}
    assert all(r.passed for r in gate.compiled_rules(close, rule))
    far = {"runtime": "onnx", "label_agreement": 0.9, "max_probability_difference": 0.05}
    flags, lines = gate.verdict(gate.compiled_rules(far, rule))
    assert flags == {"compiled_labels": False, "compiled_probabilities": False, "passed": False}
    assert lines == [
        "gate: compiled_labels: the served onnx model gives the pipeline's label on 90.0000% of test rows, "
        "below 99.0000%",
        "gate: compiled_probabilities: the served onnx model's probabilities differ from the pipeline's by up to "
        "0.05, above 0.0001",
    ]


def test_unknown_minimum_metric_is_a_params_error() -> None:
    with pytest.raises(PipelineError, match=r"gate\.min names metric 'auc'"):
        gate.threshold_rules({"roc_auc": 0.9}, {"auc": 0.5}, {})
    with pytest.raises(PipelineError, match=r"gate\.max names metric 'rmse'"):
        gate.threshold_rules({"roc_auc": 0.9}, {}, {"rmse": 0.5})


def test_maximums_bound_metrics_where_smaller_is_better() -> None:
    rules = gate.threshold_rules({"rmse": 0.44, "mae": 0.31, "r2": 0.86}, {"r2": 0.855}, {"rmse": 0.435, "mae": 0.4})
    flags, lines = gate.verdict(rules)
    assert flags == {"min_r2": True, "max_rmse": False, "max_mae": True, "passed": False}
    assert lines == ["gate: max_rmse: rmse 0.4400 is above the maximum 0.4350"]


def test_a_regressors_compiled_values_and_interval_coverage_are_gated() -> None:
    rule = params_section(Gate).compiled.model_copy(update={"max_relative_difference": 1e-6})
    close = {"runtime": "onnx", "max_value_difference": 1e-7, "max_relative_difference": 2e-8}
    assert [(r.name, r.passed) for r in gate.compiled_rules(close, rule)] == [("compiled_values", True)]
    far = {**close, "max_relative_difference": 3e-4}
    assert [(r.name, r.passed) for r in gate.compiled_rules(far, rule)] == [("compiled_values", False)]
    assert gate.interval_rules({"rmse": 0.4}, 0.03) == []
    inside = gate.interval_rules({"interval_level": 0.9, "interval_coverage": 0.8801}, 0.03)
    outside = gate.interval_rules({"interval_level": 0.9, "interval_coverage": 0.86}, 0.03)
    assert [r.passed for r in inside + outside] == [True, False]
    assert outside[0].detail.startswith("the 90% intervals cover 86.00% of test rows")


def test_regression_rules_replace_classifications_for_a_regression_task() -> None:
    rules = params_section(Gate)
    assert rules.for_task("classification") is rules
    chosen = rules.for_task("regression")
    assert (chosen.min, chosen.max) == (rules.regression.min, rules.regression.max)
    assert (chosen.champion.metric, chosen.champion.tolerance) == (
        rules.regression.champion_metric,
        rules.regression.tolerance,
    )
    assert chosen.champion.rounds == rules.champion.rounds


def test_no_champion_passes_both_champion_rules() -> None:
    rules = gate.champion_rules(None, tolerance=0.0, require_improvement=True, alpha=0.05)
    assert all(r.passed for r in rules)


@pytest.mark.parametrize("test", ["bootstrap", "mcnemar"])
def test_identical_models_are_not_worse_and_not_significantly_better(labels: np.ndarray, test: str) -> None:
    proba = noisy(labels, 2.0, seed=1)
    c = gate.compare(
        "roc_auc", labels, answer(proba), answer(proba), Classification(), test=test, rounds=200, seed=0, alpha=0.05
    )
    assert c.difference == 0 and c.p_value == 1.0
    worse, significant = gate.champion_rules(c, tolerance=0.0, require_improvement=True, alpha=0.05)
    assert worse.passed and not significant.passed


@pytest.mark.parametrize("test", ["bootstrap", "mcnemar"])
def test_a_clearly_better_candidate_is_significant(labels: np.ndarray, test: str) -> None:
    better, weaker = noisy(labels, 3.0, seed=1), noisy(labels, 0.5, seed=2)
    c = gate.compare(
        "roc_auc", labels, answer(better), answer(weaker), Classification(), test=test, rounds=300, seed=0, alpha=0.05
    )
    assert c.difference > 0.1 and c.p_value < 0.01 and c.ci_low > 0
    assert all(r.passed for r in gate.champion_rules(c, tolerance=0.0, require_improvement=True, alpha=0.05))
    reverse = gate.compare(
        "roc_auc", labels, answer(weaker), answer(better), Classification(), test=test, rounds=300, seed=0, alpha=0.05
    )
    worse, _ = gate.champion_rules(reverse, tolerance=0.01, require_improvement=False, alpha=0.05)
    assert not worse.passed and "worse than the champion" in worse.detail


def test_log_loss_counts_lower_as_better(labels: np.ndarray) -> None:
    better, weaker = noisy(labels, 3.0, seed=1), noisy(labels, 0.5, seed=2)
    c = gate.compare(
        "log_loss",
        labels,
        answer(better),
        answer(weaker),
        Classification(),
        test="bootstrap",
        rounds=100,
        seed=0,
        alpha=0.05,
    )
    assert c.candidate < c.champion and c.difference > 0


def test_bootstrap_is_seeded(labels: np.ndarray) -> None:
    a, b = noisy(labels, 1.0, seed=1), noisy(labels, 1.1, seed=2)

    def run() -> gate.Comparison:
        return gate.compare(
            "roc_auc", labels, answer(a), answer(b), Classification(), test="bootstrap", rounds=100, seed=7, alpha=0.05
        )

    assert run() == run()


def fitted(frame, columns: list[str]):
    """A real scikit-learn pipeline trained on `columns` of the frame (as train fits one)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in columns if c != "c"]
    pre = make_column_transformer(
        (StandardScaler(), numeric), *([(OneHotEncoder(handle_unknown="ignore"), ["c"])] if "c" in columns else [])
    )
    return make_pipeline(pre, LogisticRegression()).fit(frame[columns], frame["y"])


@pytest.fixture
def frames():
    frame = toy_frame(rows=120)
    frame["w"] = np.random.default_rng(1).normal(size=len(frame))
    return frame, fitted(frame, ["x", "z", "c"])


def policy(**values):
    return params_section(Gate).champion.model_copy(update=values)


def test_an_unchanged_schema_compares_as_always(frames) -> None:
    frame, champion = frames
    candidate = fitted(frame, ["x", "z", "c"])
    assert gate.schema_policy(candidate, champion, frame[["x", "z", "c"]], policy()) == (champion, None, False)


def test_an_added_column_is_compared_on_the_columns_the_champion_knows(frames) -> None:
    frame, champion = frames
    candidate = fitted(frame, ["x", "z", "c", "w"])
    x = frame[["x", "z", "c", "w"]]
    kept, note, refused = gate.schema_policy(candidate, champion, x, policy())
    assert kept is champion and not refused
    assert (
        note
        == "the champion was trained on other data (columns added ['w']): compared on the columns the champion knows"
    )
    y = frame["y"].to_numpy()
    comparison = gate.compare_models(
        candidate, champion, x, y, policy(), seed=0, unseen=np.ones(len(y), bool), task=Classification()
    )
    assert 0 <= comparison.champion <= 1


def test_a_removed_column_ships_as_a_new_lineage_or_is_refused(frames) -> None:
    frame, champion = frames
    candidate = fitted(frame, ["x", "c"])
    x = frame[["x", "c"]]
    kept, note, refused = gate.schema_policy(candidate, champion, x, policy())
    assert kept is None and not refused
    assert note == (
        "the champion was trained on other data (columns removed ['z']); the champion cannot score this test set: "
        "shipped as a new lineage, not compared"
    )
    assert gate.schema_policy(candidate, champion, x, policy(when_incomparable="refuse"))[2] is True


def test_renamed_classes_cannot_be_compared(frames) -> None:
    frame, champion = frames
    renamed = frame.assign(y=frame["y"].map({"no": "stay", "yes": "leave"}))
    candidate = fitted(renamed, ["x", "z", "c"])
    _, note, _ = gate.schema_policy(candidate, champion, renamed[["x", "z", "c"]], policy())
    assert "classes ['no', 'yes'] became ['leave', 'stay']" in note and "new lineage" in note


def test_refusing_any_schema_change_fails_the_gate_in_one_line(frames) -> None:
    frame, champion = frames
    candidate = fitted(frame, ["x", "z", "c", "w"])
    settings = params_section(Gate)
    settings = settings.model_copy(update={"champion": policy(on_schema_change="refuse")})
    metrics = {"roc_auc": 0.99, "f1_macro": 0.99}
    agreement = {"runtime": "onnx", "label_agreement": 1.0, "max_probability_difference": 0.0}
    x, y = frame[["x", "z", "c", "w"]], frame["y"].to_numpy()
    decision = gate.decide(
        settings,
        metrics=metrics,
        sliced={},
        agreement=agreement,
        candidate=candidate,
        champion=champion,
        x=x,
        y=y,
        seed=0,
        seen=np.zeros(len(y), bool),
        task=Classification(),
    )
    assert decision.flags["schema_accepted"] is False and decision.flags["passed"] is False
    assert decision.failures == [
        "gate: schema_accepted: the champion was trained on other data (columns added ['w']): refused"
    ]
    assert decision.comparison is None


def decided(frames, seen, **rule):
    """The gate's decision on the 120 toy rows, a candidate against the frame's champion, the champion
    having trained on the rows `seen` marks."""
    frame, champion = frames
    candidate = fitted(frame, ["x", "z", "c"]).set_params(logisticregression__C=0.5)
    settings = params_section(Gate).model_copy(update={"champion": policy(**rule)})
    metrics = {"roc_auc": 0.99, "f1_macro": 0.99}
    agreement = {"runtime": "onnx", "label_agreement": 1.0, "max_probability_difference": 0.0}
    x, y = frame[["x", "z", "c"]], frame["y"].to_numpy()
    return gate.decide(
        settings,
        metrics=metrics,
        sliced={},
        agreement=agreement,
        candidate=candidate.fit(x, y),
        champion=champion,
        x=x,
        y=y,
        seed=0,
        seen=seen,
        task=Classification(),
    )


def test_the_champion_is_compared_only_on_test_rows_it_never_trained_on(frames) -> None:
    seen = np.arange(120) < 50
    decision = decided(frames, seen)
    comparison = decision.comparison
    assert comparison is not None and (comparison.rows, comparison.set_aside) == (70, 50)
    assert decision.flags["passed"] and decision.schema_note is None
    frame, champion = frames
    y = frame["y"].to_numpy()[~seen]
    alone = gate.compare_models(
        champion,
        champion,
        frame[["x", "z", "c"]][~seen],
        y,
        policy(),
        seed=0,
        unseen=np.ones(70, bool),
        task=Classification(),
    )
    assert alone.champion == comparison.champion  # the champion's score is its score on the 70 unseen rows alone
    assert gate.rows_line(comparison) == (
        "on 70 test rows the champion never trained on; 50 set aside because it trained on them"
    )


@pytest.mark.parametrize(
    ("seen", "reason"),
    [
        (np.arange(120) < 100, "only 20 of 120 test rows are new to the champion (100 set aside because it trained"),
        (None, "the champion carries no fingerprint of its training rows"),
    ],
)
def test_a_champion_that_trained_on_the_test_rows_is_incomparable_not_compared(frames, seen, reason) -> None:
    shipped = decided(frames, seen)
    assert shipped.comparison is None and shipped.flags["passed"]
    assert shipped.schema_note.startswith(reason)
    assert shipped.schema_note.endswith("shipped as a new lineage, not compared")
    refused = decided(frames, seen, when_incomparable="refuse")
    assert refused.comparison is None and refused.flags["schema_accepted"] is False
    assert refused.failures == [f"gate: schema_accepted: {refused.schema_note}"]
    assert refused.schema_note.endswith(": refused")


def test_unseen_rows_of_one_class_only_cannot_be_compared() -> None:
    y = np.asarray(["no"] * 40 + ["yes"] * 40)
    mask, reason = gate.unseen_rows(np.arange(80) >= 40, y, CLASSES, 30)
    assert mask is None and reason == "none of the 40 test rows new to the champion is of class 'yes'"
    mask, reason = gate.unseen_rows(np.arange(80) % 2 == 0, y, CLASSES, 30)
    assert mask is not None and int(mask.sum()) == 40 and reason == ""
