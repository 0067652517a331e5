"""Dates as features: one format per column, the same parts from a frame and from a request's rows."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.data import dates

DAYS = st.dates(min_value=date(1950, 1, 1), max_value=date(2080, 12, 31))


@given(st.lists(DAYS, min_size=1, max_size=40), st.sampled_from(["%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d"]))
def test_frames_and_request_rows_give_the_same_parts(days: list[date], fmt: str) -> None:
    """What training sees (a frame) and what the service computes (rows) agree for every date."""
    text = [d.strftime(fmt) for d in days]
    frame = dates.add_parts(pd.DataFrame({"when": text}), (("when", fmt),))
    rows = dates.records([{"when": t} for t in text], (("when", fmt),))
    for index, day in enumerate(days):
        expected = {"year": day.year, "month": day.month, "day": day.day, "weekday": day.weekday()}
        for part, value in expected.items():
            assert frame.loc[index, f"when.{part}"] == value == rows[index][f"when.{part}"]


def test_the_format_is_the_first_that_reads_nearly_every_value() -> None:
    start = date(2024, 1, 1)
    iso = pd.Series([(start + timedelta(days=i)).isoformat() for i in range(100)])
    assert dates.infer_format(iso) == "%Y-%m-%d"
    us = pd.Series([(start + timedelta(days=i)).strftime("%m/%d/%Y") for i in range(100)])
    assert dates.infer_format(us) == "%m/%d/%Y"  # day 13 and later rule day-first out
    stamps = pd.Series([f"{(start + timedelta(days=i)).isoformat()} 10:{i % 60:02d}:00" for i in range(100)])
    assert dates.infer_format(stamps) == "%Y-%m-%d %H:%M:%S"
    assert dates.infer_format(pd.Series(["north", "south"] * 50)) is None
    assert dates.infer_format(pd.Series([None, None], dtype=object)) is None


def test_missing_and_malformed_dates() -> None:
    frame = dates.add_parts(pd.DataFrame({"when": ["2024-02-29", None, "2024-02-30"]}), (("when", "%Y-%m-%d"),))
    assert frame["when.day"].tolist()[0] == 29 and frame["when.day"].isna().tolist() == [False, True, True]
    (row,) = dates.records([{"when": None}], (("when", "%Y-%m-%d"),))
    assert all(row[f"when.{p}"] is None for p in dates.PARTS)
    with pytest.raises(ValueError, match=r"not a date in this column's format \(%Y-%m-%d, e\.g\. 2024-01-31\)"):
        dates.records([{"when": "31/01/2024"}], (("when", "%Y-%m-%d"),))
    untouched = pd.DataFrame({"x": [1.0]})
    assert dates.add_parts(untouched, (("when", "%Y-%m-%d"),)) is untouched
