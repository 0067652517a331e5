"""Schema checks: a valid frame passes; corrupting any one aspect fails the matching check, naming the column."""

from collections.abc import Callable

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabpipe.core.settings import Validate
from tabpipe.data import checks
from tests.support.data import TOY, toy_frame
from tests.support.params import params_section

LIMITS = params_section(Validate, max_missing_share=0.2, max_duplicate_share=0.05, min_rows_per_class=10)

Corruption = Callable[[pd.DataFrame, int], pd.DataFrame]


def _set(column: str, value: object) -> Corruption:
    def corrupt(frame: pd.DataFrame, row: int) -> pd.DataFrame:
        frame = frame.copy()
        if isinstance(value, str) and column in ("x", "z"):
            frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return corrupt


def _drop(column: str) -> Corruption:
    return lambda frame, row: frame.drop(columns=[column])


def _extra(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    return frame.assign(unexpected=1.0)


def _numbers_as_text(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    return _set("x", "twelve")(frame, row)


def _categories_as_numbers(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    return frame.assign(c=np.arange(len(frame), dtype=float))


def _mostly_missing(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[: int(len(frame) * 0.5), "z"] = np.nan
    return frame


def _duplicates(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[: len(frame) // 4]], ignore_index=True)


def _starve_class(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    keep = frame[frame["y"] == "no"]
    return pd.concat([keep, frame[frame["y"] == "yes"].head(3)], ignore_index=True)


# corruption -> (check that must fail, column it must name)
CORRUPTIONS: dict[str, tuple[Corruption, str, str]] = {
    "missing feature": (_drop("c"), "missing_column", "c"),
    "missing target": (_drop("y"), "missing_column", "y"),
    "extra column": (_extra, "extra_column", "unexpected"),
    "text in numeric": (_numbers_as_text, "dtype", "x"),
    "numbers in categorical": (_categories_as_numbers, "dtype", "c"),
    "above range": (_set("x", 11.5), "range", "x"),
    "below range": (_set("z", -1e9), "range", "z"),
    "infinite": (_set("x", np.inf), "infinite", "x"),
    "missing in non-nullable": (_set("x", np.nan), "missing_values", "x"),
    "unknown category": (_set("c", "zebra"), "unknown_category", "c"),
    "unknown label": (_set("y", "maybe"), "unknown_labels", "y"),
    "missing label": (_set("y", None), "missing_labels", "y"),
    "too many missing": (_mostly_missing, "missing_share", "z"),
    "duplicate rows": (_duplicates, "duplicate_rows", checks.ROWS),
    "too few rows in a class": (_starve_class, "min_rows_per_class", "y"),
}


def test_valid_frame_passes() -> None:
    assert checks.run_all(toy_frame(), TOY, LIMITS) == []


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(CORRUPTIONS)),
    rows=st.integers(min_value=40, max_value=120),
    seed=st.integers(min_value=0, max_value=10_000),
    row=st.integers(min_value=0, max_value=39),
)
def test_one_corruption_fails_the_matching_check(name: str, rows: int, seed: int, row: int) -> None:
    corrupt, check, column = CORRUPTIONS[name]
    frame = corrupt(toy_frame(rows, seed), row)
    problems = checks.run_all(frame, TOY, LIMITS)
    matching = [p for p in problems if p.check == check and p.column == column]
    assert matching, f"{name}: expected {check} on {column}, got {problems}"
    line = matching[0].line("data/prepared/train.parquet")
    assert line.startswith("data/prepared/train.parquet:")
    if column != checks.ROWS:
        assert f"column '{column}'" in line


def test_empty_frame_is_one_problem() -> None:
    problems = checks.run_all(toy_frame().head(0), TOY, LIMITS)
    assert [p.check for p in problems] == ["empty"]


def test_duplicated_column_is_named() -> None:
    frame = toy_frame()
    doubled = pd.concat([frame, frame[["x"]]], axis=1)
    problems = checks.run_all(doubled, TOY, LIMITS)
    assert any(p.check == "duplicate_column" and p.column == "x" for p in problems)


def test_range_message_shows_bounds_and_example() -> None:
    frame = _set("x", 99.0)(toy_frame(), 0)
    (problem,) = [p for p in checks.values(frame, TOY) if p.check == "range"]
    assert "[0, 10]" in problem.message and "99" in problem.message
