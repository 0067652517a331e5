"""Slices: how rows are grouped, what each slice reports, the fairness differences, and the slice gate."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Evaluate, GateSlices
from tabpipe.model import gate, slices
from tabpipe.task import classification
from tabpipe.task.base import Predicted
from tabpipe.task.classification import Classification, Decision
from tabpipe.task.regression import Regression
from tests.support.params import params_section

TASK = Classification()


def rules(**changes) -> Evaluate:
    return params_section(Evaluate).model_copy(update=changes)


def answered(proba: np.ndarray, decision: Decision | None = None) -> Predicted:
    classes = ["no", "yes"]
    return Predicted(classification.labels(proba, classes, decision), proba, classes, decision=decision)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=200),
    bins=st.integers(2, 6),
)
def test_every_number_falls_in_exactly_one_named_bin_and_missing_values_in_their_own(values, bins: int) -> None:
    column = pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    named, order = slices.groups(column, bins)
    assert len(named) == len(column) and set(named) == set(order) and len(order) == len(set(order))
    assert ((named == slices.MISSING) == column.isna()).all()
    known = column.dropna()
    assert len(set(named[column.notna()])) <= bins
    for name in set(named[column.notna()]):  # every bin's rows lie within the range its name gives
        inside = known[named[column.notna()] == name]
        if name.startswith("["):
            low, high = (float(part) for part in name.strip("[]()").split(", "))
            assert inside.min() >= low - 1e-9 * max(1, abs(low)) and inside.max() <= high + 1e-9 * max(1, abs(high))
        else:
            assert (inside == float(name)).all()


def test_categories_slice_by_value_in_order_with_missing_values_named() -> None:
    named, order = slices.groups(pd.Series(["b", "a", None, "b"], dtype=object), 4)
    assert named.tolist() == ["b", "a", slices.MISSING, "b"] and order == ["a", "b", slices.MISSING]


def frame_and_answers(rows: int = 2000, seed: int = 0):
    """Two groups of one binary task: group B's positives are predicted less readily than group A's."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], rows, p=[0.7, 0.3])
    y = np.where(rng.random(rows) < 0.3, "yes", "no")
    score = np.clip(rng.normal(np.where(y == "yes", 0.7, 0.3) - np.where(group == "B", 0.2, 0.0), 0.2), 0, 1)
    group[:5] = "C"  # a slice too small to judge
    return pd.DataFrame({"group": group, "age": rng.integers(18, 90, rows)}), y, np.column_stack([1 - score, score])


def test_each_slice_reports_metrics_rates_and_an_interval_and_the_column_its_differences() -> None:
    frame, y, proba = frame_and_answers()
    predicted = answered(proba)
    found = slices.measure(frame, y, predicted, rules(slices=["group", "age"]), 0, TASK)
    assert list(found) == ["group", "age"] and len(found["age"]["slices"]) == 4  # quartile bins
    group = found["group"]["slices"]
    assert group["C"]["gated"] == 0 and group["A"]["gated"] == group["B"]["gated"] == 1
    assert sum(s["rows"] for s in group.values()) == len(y)
    labels = predicted.labels
    for name, figures in group.items():
        rows = frame["group"].to_numpy() == name
        said, actual = labels[rows] == "yes", y[rows] == "yes"
        assert figures["accuracy"] == pytest.approx((labels[rows] == y[rows]).mean(), abs=1e-6)
        assert figures["positive_rate"] == pytest.approx(said.mean(), abs=1e-6)
        assert figures["true_positive_rate"] == pytest.approx(said[actual].mean(), abs=1e-6)
        assert figures["false_positive_rate"] == pytest.approx(said[~actual].mean(), abs=1e-6)
        if figures["gated"]:
            assert figures["roc_auc_low"] < figures["roc_auc"] < figures["roc_auc_high"]
    a, b = group["A"], group["B"]  # differences over the gated slices only (C is left out)
    assert found["group"]["demographic_parity_difference"] == pytest.approx(
        abs(a["positive_rate"] - b["positive_rate"]), abs=1e-6
    )
    expected = max(abs(a[r] - b[r]) for r in ("true_positive_rate", "false_positive_rate"))
    assert found["group"]["equalized_odds_difference"] == pytest.approx(expected, abs=1e-6)
    again = slices.measure(frame, y, predicted, rules(slices=["group", "age"]), 0, TASK)
    assert again == found  # seeded


def test_rates_follow_the_decision_and_a_slice_without_positives_has_no_true_positive_rate() -> None:
    frame, y, proba = frame_and_answers()
    decided = answered(proba, Decision("cost", "yes", 0.2, 1.0, 5.0))
    found = slices.measure(frame, y, decided, rules(slices=["group"]), 0, TASK)["group"]["slices"]
    argmax = slices.measure(frame, y, answered(proba), rules(slices=["group"]), 0, TASK)["group"]["slices"]
    assert found["A"]["positive_rate"] > argmax["A"]["positive_rate"]  # a lower threshold says yes more often
    assert "expected_cost" in found["A"]
    y_none = np.where(frame["group"] == "C", "no", y)
    lone = slices.measure(frame, y_none, answered(proba), rules(slices=["group"]), 0, TASK)["group"]["slices"]["C"]
    assert "true_positive_rate" not in lone and "false_positive_rate" in lone


def test_a_regressor_slices_report_errors_coverage_and_no_rates() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=400)
    value = y + rng.normal(0, 0.3, 400)
    predicted = Predicted(value, np.column_stack([value - 0.5, value + 0.5]), ["lower", "upper"])
    frame = pd.DataFrame({"region": rng.choice(["n", "s"], 400)})
    found = slices.measure(frame, y, predicted, rules(slices=["region"], slice_metric="r2"), 0, Regression())
    north = found["region"]["slices"]["n"]
    assert {"rmse", "r2", "interval_coverage", "r2_low", "r2_high"} <= set(north)
    assert "positive_rate" not in north and "equalized_odds_difference" not in found["region"]


def test_a_column_the_test_split_lacks_is_one_error_line() -> None:
    frame, y, proba = frame_and_answers(100)
    with pytest.raises(PipelineError, match=r"evaluate\.slices: column 'sex' is not in the test split"):
        slices.measure(frame, y, answered(proba), rules(slices=["sex"]), 0, TASK)


def test_the_slice_gate_names_the_column_slice_metric_and_value() -> None:
    frame, y, proba = frame_and_answers()
    found = slices.measure(frame, y, answered(proba), rules(slices=["group"]), 0, TASK)
    gated = {name: found["group"]["slices"][name]["accuracy"] for name in ("A", "B")}
    worst, floor = min(gated, key=gated.get), max(gated.values())  # the better slice's accuracy fails the worse
    failed = gate.slice_rules(found, GateSlices(min={"accuracy": floor}, max_difference={}))
    assert [r.passed for r in failed] == [False] and failed[0].name == "slices_group_min_accuracy"
    assert failed[0].detail == (
        f"column group, slice {worst}: accuracy {gated[worst]:.4f} is below the minimum {floor:.4f}"
    )
    difference = found["group"]["equalized_odds_difference"]
    capped = gate.slice_rules(
        found, GateSlices(min={}, max_difference={"equalized_odds_difference": difference - 0.01})
    )
    assert not capped[0].passed and capped[0].name == "slices_group_max_equalized_odds_difference"
    assert f"column group: equalized_odds_difference {round(difference, 4)}" in capped[0].detail
    loose = GateSlices(min={"accuracy": 0.0}, max_difference={"equalized_odds_difference": 1.0, "accuracy": 1.0})
    assert all(r.passed for r in gate.slice_rules(found, loose))
    tiny = found["group"]["slices"]["C"]  # under min_slice_rows: never gated, however low
    assert all(r.passed for r in gate.slice_rules(found, GateSlices(min={"rows": tiny["rows"] + 1}, max_difference={})))


def test_slice_rules_without_slices_or_with_an_unknown_metric_are_one_error_line() -> None:
    frame, y, proba = frame_and_answers(300)
    found = slices.measure(frame, y, answered(proba), rules(slices=["group"]), 0, TASK)
    assert gate.slice_rules({}, GateSlices(min={}, max_difference={})) == []
    with pytest.raises(PipelineError, match=r"evaluate\.slices names no column"):
        gate.slice_rules({}, GateSlices(min={"accuracy": 0.8}, max_difference={}))
    with pytest.raises(PipelineError, match=r"gate\.slices\.min names 'acc'"):
        gate.slice_rules(found, GateSlices(min={"acc": 0.8}, max_difference={}))
    with pytest.raises(PipelineError, match=r"gate\.slices\.max_difference names 'parity'"):
        gate.slice_rules(found, GateSlices(min={}, max_difference={"parity": 0.1}))


def test_a_slice_of_one_row_is_reported_marked_and_has_no_interval() -> None:
    frame, y, proba = frame_and_answers(300)
    frame.loc[0, "group"] = "Z"
    found = slices.measure(frame, y, answered(proba), rules(slices=["group"]), 0, TASK)["group"]
    lone = found["slices"]["Z"]
    assert lone["rows"] == 1 and lone["gated"] == 0 and lone["accuracy"] in (0.0, 1.0)
    assert "roc_auc" not in lone and "roc_auc_low" not in lone
    assert "equalized_odds_difference" in found  # the gated slices still give the column its differences
