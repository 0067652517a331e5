"""Frames typed to a schema: the one place raw values become what training, serving and the monitor see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tabpipe.core.text import as_text
from tabpipe.data import checks
from tabpipe.data.dates import add_parts
from tabpipe.task import tasks

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.data.schema import Schema


def clean(raw: pd.DataFrame, markers: tuple[str, ...]) -> pd.DataFrame:
    """Strip names and text values, and turn missing-value markers into real missing values."""
    import pandas as pd

    frame = raw.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in range(frame.shape[1]):
        values = frame.iloc[:, column]
        if pd.api.types.is_string_dtype(values) or values.dtype == object:
            stripped = values.map(lambda v: v.strip() if isinstance(v, str) else v)
            frame.isetitem(column, stripped.mask(stripped.isin([*markers, ""])))
    return frame


def coerce(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Give each schema column its type: numbers as float, categories and labels as text, a quantity as float;
    a date column (as the file had it) gains its parts, the features it becomes.

    A numeric column holding text is left as it is, so the type check can name the bad values.
    """
    import pandas as pd

    out = add_parts(frame, schema.dates).copy()
    for feature in schema.features:
        if feature.name not in out.columns or checks.is_duplicated(out, feature.name):
            continue
        if feature.kind == "numeric":
            try:
                out[feature.name] = pd.to_numeric(out[feature.name]).astype("float64")
            except (ValueError, TypeError):
                continue
        else:
            out[feature.name] = as_text(out[feature.name])
    if schema.target in out.columns and not checks.is_duplicated(out, schema.target):
        out[schema.target] = tasks.of(schema.task).coerce(out[schema.target])
    return out
