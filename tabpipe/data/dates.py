"""Dates as features: a date column becomes numbers a model can learn from.

A table (and a request) carries a date as the text the file had. Ingest finds the one format that
reads the column, records it in the schema, and every place a model meets rows derives the same
numbers from it: `frames.coerce` for frames (training, evaluation, the monitor, the scikit-learn
runtime) and `records` for the service's rows (the compiled model). The date itself is carried
beside the features (the schema's `meta`), so a prepared row can still be sent as the file had it.

Serve-time: nothing here imports more than the standard library until a frame is expanded.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PARTS = ("year", "month", "day", "weekday")  # weekday: Monday is 0
# Formats tried in order; the first that reads nearly every value of a column is the column's format.
FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d/%m/%y",
    "%m/%d/%y",
)
MIN_PARSED = 0.95
LOOKS_LIKE = r"^(\d{4}[-/]\d{1,2}[-/]\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4})([ T]\d{1,2}:\d{2}(:\d{2})?)?$"


def part_name(column: str, part: str) -> str:
    return f"{column}.{part}"


def derived(dates: tuple[tuple[str, str], ...]) -> list[str]:
    """The feature names the date columns become, in order."""
    return [part_name(column, part) for column, _ in dates for part in PARTS]


def infer_format(values: pd.Series) -> str | None:
    """The first format in FORMATS that reads at least MIN_PARSED of the column's values, or None.

    Day-first comes before month-first: where both read every value (all days at most 12), the
    data cannot say, and `data.column_types` or a clearer export settles it."""
    import pandas as pd

    present = values.dropna().astype(str)
    if present.empty:
        return None
    for fmt in FORMATS:
        parsed = pd.to_datetime(present, format=fmt, errors="coerce")
        if parsed.notna().mean() >= MIN_PARSED:
            return fmt
    return None


def detect(values: pd.Series) -> str | None:
    """A text column's date format when nearly all of its values look like dates and one format reads them."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        return None
    present = values.dropna().astype(str)
    if present.empty or present.str.match(LOOKS_LIKE).mean() < MIN_PARSED:
        return None
    return infer_format(present)


def add_parts(frame: pd.DataFrame, dates: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    """The frame with each date column's parts added as numbers (missing where the date is missing or malformed).

    A frame that lacks a date column (or already has its parts, not all missing) is returned as it is."""
    import pandas as pd

    todo = [(c, f) for c, f in dates if c in frame.columns and _missing_parts(frame, c)]
    if not todo:
        return frame
    out = frame.copy()
    for column, fmt in todo:
        parsed = pd.to_datetime(out[column].astype("string"), format=fmt, errors="coerce")
        values = {
            "year": parsed.dt.year,
            "month": parsed.dt.month,
            "day": parsed.dt.day,
            "weekday": parsed.dt.weekday,
        }
        for part in PARTS:
            out[part_name(column, part)] = values[part].astype("float64")
    return out


def _missing_parts(frame: pd.DataFrame, column: str) -> bool:
    first = part_name(column, PARTS[0])
    return first not in frame.columns or bool(frame[first].isna().all())


def parse(value: str, fmt: str) -> datetime:
    """One date as the service reads it; ValueError names the format expected."""
    try:
        return datetime.strptime(value.strip(), fmt)
    except ValueError:
        example = datetime(2024, 1, 31, 9, 30).strftime(fmt)
        raise ValueError(f"not a date in this column's format ({fmt}, e.g. {example})") from None


def records(rows: list[dict[str, Any]], dates: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """Request rows with each date's parts added (the rows as sent stay untouched, for the log)."""
    if not dates:
        return rows
    out = []
    for row in rows:
        expanded = dict(row)
        for column, fmt in dates:
            value = row.get(column)
            when = parse(value, fmt) if isinstance(value, str) else None
            for part in PARTS:
                expanded[part_name(column, part)] = None if when is None else float(_part(when, part))
        out.append(expanded)
    return out


def _part(when: datetime, part: str) -> int:
    return when.weekday() if part == "weekday" else getattr(when, part)
