"""The release smoke test's comparison: a regressor's served value and interval against evaluate's."""

import pandas as pd
import pytest

from tabpipe.deploy import release


def saved() -> pd.DataFrame:
    return pd.DataFrame(
        {"row": [0, 1], "actual": [2.0, 3.0], "predicted": [2.1, 2.9], "lower": [1.6, 2.4], "upper": [2.6, 3.4]}
    )


def test_a_regressors_answers_match_evaluates_values_and_intervals() -> None:
    expected = release.from_predictions(saved(), [], 2)
    assert expected.values == [(2.1, 1.6, 2.6), (2.9, 2.4, 3.4)] and expected.source == "evaluate"
    answers = [{"value": 2.1, "interval": [1.6, 2.6]}, {"value": 2.9, "interval": [2.4, 3.4]}]
    assert release.difference(answers, expected) is None
    moved = [answers[0], {"value": 2.9, "interval": [2.4, 3.5]}]
    assert release.difference(moved, expected) == "test row 1: upper end 3.5, evaluate gave 3.4 (tolerance 1e-09)"
    assert release.difference([{"label": "a"}, answers[1]], expected).startswith("test row 0: value None")
    assert release.difference(answers[:1], expected) == "answered 1 of 2 rows"


def test_predictions_without_intervals_are_one_line() -> None:
    with pytest.raises(Exception, match=r"^evaluate's predictions have no column 'upper'; rerun `dvc repro`$"):
        release.from_predictions(saved().drop(columns="upper"), [], 2)
