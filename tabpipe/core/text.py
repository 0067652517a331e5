"""Values as the text people wrote, shared by the schema, the checks and a task's classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def as_text(values: pd.Series) -> pd.Series:
    """Text with real missing values; whole-number floats (1.0) read as '1', as people write them."""
    import pandas as pd

    if pd.api.types.is_float_dtype(values) and values.dropna().map(float.is_integer).all():
        values = values.astype("Int64")
    return values.map(lambda v: v if pd.isna(v) else str(v)).astype("str")
