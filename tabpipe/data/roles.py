"""What a raw table's columns are for: features, or columns a model must not learn from.

A raw export holds more than features: identifiers, row counters, constants, free-text notes.
A model that learns from them learns nothing that carries over (an identifier is unique per row)
or learns noise, so ingest sets them aside, one line each saying why and which parameter keeps
the column (`data.column_types` declares it a feature). `data.exclude` sets columns aside by name.
Every choice is recorded in data/prepared/schema.json (`set_aside`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

MIN_ROWS = 20  # fewer rows say too little about a column to set it aside unasked
TEXT_LENGTH = 30  # free text: values this long on average (characters)...
TEXT_DISTINCT = 0.5  # ...and at least this share of them different
ID_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key)$", re.IGNORECASE)
COUNTER_NAME = re.compile(
    r"^(row|rows|record|line|index|idx|n|no|nr|num|number|#|unnamed: ?\d+)([ _-]?(no|nr|num|number|#|index|idx))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Aside:
    """A column set aside, and the reason a person reads."""

    column: str
    reason: str


def excluded(frame: pd.DataFrame, names: list[str], target: str) -> list[Aside]:
    """The columns `data.exclude` names; one line for a name the data lacks, or the target."""
    for name in names:
        if name == target:
            raise PipelineError(f"params.yaml: data.exclude names the target column '{name}'")
        if name not in frame.columns:
            raise PipelineError(f"params.yaml: data.exclude names column '{name}', which the data lacks")
    return [Aside(name, "named by data.exclude") for name in names]


def infer(frame: pd.DataFrame, keep: set[str]) -> list[Aside]:
    """The columns (other than `keep`: the target and the declared ones) that are not features."""
    found = []
    for column in frame.columns:
        if column in keep:
            continue
        reason = role(frame[column], column)
        if reason:
            found.append(Aside(column, reason))
    return found


def role(values: pd.Series, name: str) -> str | None:
    """Why a column is not a feature, or None when it is one."""
    import pandas as pd

    present = values.dropna()
    try:
        distinct = present.nunique()
    except TypeError:  # lists or records in a cell (Parquet can hold them): no model input takes them
        return "nested values: a cell holds a list or a record, not one value"
    if distinct == 0:
        return "empty: no value on any row"
    if distinct == 1:
        return f"constant: {present.iloc[0]!r} on every row"
    if len(values) < MIN_ROWS:
        return None
    unique = distinct == len(values)
    if pd.api.types.is_numeric_dtype(values):
        whole = bool((present == present.round()).all())
        if unique and whole and COUNTER_NAME.match(name.strip()):
            return "a row counter: a different whole number on every row, and named like one"
        if unique and whole and ID_NAME.search(name.strip()):
            return "an identifier: a different whole number on every row, and named like one"
        if unique and whole and len(present) == len(values) and _rising(present):
            return "a row counter: a different whole number on every row, going up from row to row"
        return None
    text = present.astype(str)
    if unique and not text.str.contains(r"\s").mean() > 0.5:
        return "an identifier: a different value on every row"
    if text.str.len().mean() >= TEXT_LENGTH and distinct >= TEXT_DISTINCT * len(present):
        return f"free text: {text.str.len().mean():.0f} characters on average, {distinct / len(present):.0%} different"
    return None


def _rising(present: pd.Series) -> bool:
    """Whole numbers that only go up in file order, by any steps: a counter whether or not rows were dropped,
    so a sample of a file and the whole file give a column the same role."""
    import numpy as np

    return bool((np.diff(present.to_numpy(dtype="float64")) > 0).all())


def line(aside: Aside) -> str:
    """The ingest log line for a column set aside."""
    keep = "data.column_types keeps it as a feature" if aside.reason != "named by data.exclude" else "remove it there"
    return f"column '{aside.column}': set aside, {aside.reason}; {keep}"
