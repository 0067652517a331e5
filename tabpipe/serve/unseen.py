"""Values a row holds that training never saw: what the service answers anyway, counts and flags.

A feature's limits are declared (a built-in schema, `data.limits`) or observed (what a user's
CSV held). Under `serve.unseen: answer` the request model enforces only declared limits, and the
model imputes the rest (a missing value, an unseen category, a number past the training range);
this module names, for each answered row, which of its values fell outside the schema's limits,
and brings numbers past the range back to its ends before the model sees them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.data.schema import Feature, Schema

Unseen = Literal["below_range", "above_range", "unseen_category", "missing"]
KINDS: tuple[Unseen, ...] = ("below_range", "above_range", "unseen_category", "missing")


def unseen_value(feature: Feature, value: Any) -> Unseen | None:
    """Why `value` lies outside what the schema says of `feature`, or None when it does not.

    A missing value (None or NaN) counts only where the feature never had one; a non-finite
    number never reaches here from the service (the request model refuses it).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None if feature.nullable else "missing"
    if feature.kind == "numeric":
        if feature.minimum is not None and value < feature.minimum:
            return "below_range"
        if feature.maximum is not None and value > feature.maximum:
            return "above_range"
        return None
    return None if str(value) in feature.categories else "unseen_category"


def unseen(records: list[dict[str, Any]], schema: Schema, *, observed_only: bool = False) -> list[dict[str, Unseen]]:
    """Per row, {column: kind} for each value outside the schema's limits (empty when none).

    A feature left out of a row counts as missing, as the request model fills it with None.
    `observed_only` is for rows the request model already checked (the service): it refuses what
    breaks a declared limit, so only observed ones are looked at and a built-in dataset's rows cost
    nothing here. A batch file (the monitor) is checked against every limit.
    """
    checked = [f for f in schema.features if f.limits == "observed"] if observed_only else schema.features
    if not checked:  # a built-in dataset's rows in the service
        return [{} for _ in records]
    flagged = []
    for record in records:
        found: dict[str, Unseen] = {}
        for feature in checked:
            kind = unseen_value(feature, record.get(feature.name))
            if kind is not None:
                found[feature.name] = kind
        flagged.append(found)
    return flagged


def model_rows(records: list[dict[str, Any]], schema: Schema) -> tuple[list[dict[str, Any]], list[dict[str, Unseen]]]:
    """Validated request rows as the model gets them (each date's parts beside it, numbers past the
    range at its ends) and, per row, the values outside the schema's limits (`unseen`, for rows the
    request model already checked). The rows as sent stay untouched, for the log."""
    from tabpipe.data import dates

    expanded = dates.records(records, schema.dates)
    flags = unseen(expanded, schema, observed_only=True)
    return clipped(expanded, flags, schema), flags


def clipped(records: list[dict[str, Any]], flags: list[dict[str, Unseen]], schema: Schema) -> list[dict[str, Any]]:
    """The rows as the model gets them: a number flagged below or above the range becomes that end.

    Tree models answer a number past the training range exactly as they answer the range's end
    (every split threshold lies inside it), so for them nothing changes; a linear model does not
    extrapolate past what it was fitted on. Without this, numbers near the float limit overflow
    the scaler (NaN probabilities from ONNX, an error from scikit-learn). Other rows are shared.
    """
    out = []
    for record, flag in zip(records, flags, strict=True):
        ends = {c: k for c, k in flag.items() if k in ("below_range", "above_range")} if flag else None
        if not ends:
            out.append(record)
            continue
        changed = dict(record)
        for column, kind in ends.items():
            feature = schema.feature(column)
            changed[column] = feature.minimum if kind == "below_range" else feature.maximum
        out.append(changed)
    return out


def clipped_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """A frame's numbers brought back to their features' ranges (what `clipped` does to served rows)."""
    bounded = frame.copy()
    for feature in schema.features:
        if feature.kind == "numeric" and feature.name in bounded.columns:
            bounded[feature.name] = bounded[feature.name].clip(lower=feature.minimum, upper=feature.maximum)
    return bounded


def counts(flags: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    """{column: {kind: rows}} over many rows' flags, columns and kinds sorted (for reports)."""
    totals: dict[str, dict[str, int]] = {}
    for row in flags:
        for column, kind in row.items():
            totals.setdefault(column, {})
            totals[column][kind] = totals[column].get(kind, 0) + 1
    return {column: dict(sorted(kinds.items())) for column, kinds in sorted(totals.items())}
