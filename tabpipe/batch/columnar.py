"""A chunk checked and answered column by column, for the rows whose answer it can decide.

The row path (scoring.py) builds a dict per row and validates it with pydantic: about 0.07 of what
onnxruntime alone manages. Here each request column is checked with numpy against what the service's
row model (`request.row_model`) enforces, and a row every column surely accepts is answered from
arrays: one `Compiled.run` per chunk, dates split and numbers clipped and flagged as
`unseen.model_rows` does. A row any column cannot vouch for (a value out of range, text in a numeric
column, a date that does not parse) is left to the row path, so a reject keeps the service's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.data import dates

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.data.schema import Feature, Schema

UNFLAGGED = "{}"  # orjson's text for a row with no value outside the schema's limits


@dataclass(frozen=True)
class Checked:
    """Which rows the row model surely accepts (`accepted`), every model column's values over all
    rows as the graph takes them (float64 numbers, NaN: missing; object text, MISSING: missing),
    and where each text column is missing (MISSING may also be a text someone sent)."""

    accepted: np.ndarray
    values: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]


def rows_of(checked: Checked, chosen: np.ndarray) -> Checked:
    """Only the `chosen` rows (a mask) of what was checked."""
    return Checked(
        checked.accepted[chosen],
        {name: found[chosen] for name, found in checked.values.items()},
        {name: found[chosen] for name, found in checked.missing.items()},
    )


def checked(frame: pd.DataFrame, schema: Schema, policy: str) -> Checked:
    """Each request column checked as the row model checks it; a column left out is every row leaving
    the field out (fine where it is optional)."""
    import numpy as np

    rows = len(frame)
    accepted = np.ones(rows, dtype=bool)
    values: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    arriving = set(schema.request_names)
    for feature in schema.features:
        if feature.name not in arriving:  # a date's parts, from the date below
            continue
        column = frame[feature.name] if feature.name in frame.columns else None
        if feature.kind == "numeric":
            ok, values[feature.name] = _numbers(column, feature, policy, rows)
        else:
            ok, values[feature.name], missing[feature.name] = _categories(column, feature, policy, rows)
        accepted &= ok
    for name, fmt in schema.dates:
        ok, parts = _dates(frame[name] if name in frame.columns else None, fmt, rows)
        accepted &= ok
        values |= {dates.part_name(name, part): found for part, found in parts.items()}
    return Checked(accepted, values, missing)


def _open(feature: Feature, policy: str) -> bool:
    """Under `unseen: answer` a feature's observed limits do not bind (request.row_model)."""
    return policy == "answer" and feature.limits == "observed"


def _numbers(column: pd.Series | None, feature: Feature, policy: str, rows: int) -> tuple[Any, np.ndarray]:
    """Finite numbers within the declared limits, or null where the feature may be; a column of any
    other dtype (text, booleans) is for the row model to judge."""
    import numpy as np
    import pandas as pd

    optional = feature.nullable or _open(feature, policy)
    if column is None:
        return optional, np.full(rows, np.nan)
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False, np.full(rows, np.nan)
    numbers = column.astype("float64").to_numpy()
    missing = np.isnan(numbers)
    ok = np.isfinite(numbers)
    if not _open(feature, policy):
        if feature.minimum is not None:
            ok &= numbers >= feature.minimum
        if feature.maximum is not None:
            ok &= numbers <= feature.maximum
    return ok | (missing & optional), numbers


def _categories(
    column: pd.Series | None, feature: Feature, policy: str, rows: int
) -> tuple[Any, np.ndarray, np.ndarray]:
    """A declared category (any text where the categories are open), or null where the feature may be;
    each distinct text is looked up once. Also the text as the graph takes it, and where it is missing."""
    import numpy as np

    from tabpipe.model.features import MISSING

    open_limits = _open(feature, policy)
    optional = feature.nullable or open_limits
    if column is None:
        return optional, np.full(rows, MISSING, dtype=object), np.ones(rows, dtype=bool)
    codes, distinct = _texts(column)
    known = np.append(
        np.ones(len(distinct), dtype=bool) if open_limits else _within(distinct, feature.categories), optional
    )
    return known[codes], np.append(distinct, MISSING)[codes], codes < 0


def _within(texts: np.ndarray, categories: tuple[str, ...]) -> np.ndarray:
    """Which texts (Python strings) are among the categories: a set lookup each, as `Literal` matches them."""
    import numpy as np

    declared = set(categories)
    return np.fromiter((text in declared for text in texts.tolist()), dtype=bool, count=len(texts))


def _texts(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column as the row path sends it (`as_text`), factorized: each row's code (-1: missing) and the
    distinct texts as Python strings. A text column is already that text; any other goes through `as_text`."""
    import pandas as pd

    from tabpipe.core.text import as_text

    codes, distinct = pd.factorize(column if isinstance(column.dtype, pd.StringDtype) else as_text(column))
    return codes, distinct.to_numpy(object)


def _dates(column: pd.Series | None, fmt: str, rows: int) -> tuple[Any, dict[str, np.ndarray]]:
    """Dates that parse in the column's format (each distinct text parsed once, as the service parses
    it), or null; each date's parts as `dates.records` gives them (NaN where there is no date)."""
    import numpy as np

    from tabpipe.data.dates import PARTS, parse

    parts = {part: np.full(rows, np.nan) for part in PARTS}
    if column is None:
        return True, parts
    codes, distinct = _texts(column)
    table = np.full((len(distinct) + 1, len(PARTS)), np.nan)  # the last row: missing
    ok = np.append(np.zeros(len(distinct), dtype=bool), True)
    for index, text in enumerate(distinct):
        try:
            when = parse(text, fmt)
        except ValueError:
            continue
        table[index], ok[index] = (when.year, when.month, when.day, when.weekday()), True
    for position, part in enumerate(PARTS):
        parts[part] = table[codes, position]
    return ok[codes], parts


def flagged(checked: Checked, schema: Schema) -> tuple[list[str] | str, int]:
    """Each row's `unseen` text as the row path writes it (orjson of `unseen.unseen(observed_only=True)`),
    built only for rows with a flag (one text for all when none has), and how many rows have one."""
    import numpy as np
    import orjson

    rows = len(checked.accepted)
    kinds = {f.name: _kinds(checked, f) for f in schema.features if f.limits == "observed"}
    any_flag = np.zeros(rows, dtype=bool)
    for kind in kinds.values():
        any_flag |= np.not_equal(kind, None)
    if not any_flag.any():
        return UNFLAGGED, 0
    texts = [UNFLAGGED] * rows
    for row in np.flatnonzero(any_flag).tolist():
        texts[row] = orjson.dumps({name: kind[row] for name, kind in kinds.items() if kind[row]}).decode()
    return texts, int(any_flag.sum())


def _kinds(checked: Checked, feature: Feature) -> np.ndarray:
    """Per row, why the value lies outside the feature's limits, or None (unseen.unseen_value, by column)."""
    import numpy as np

    found = checked.values[feature.name]
    kinds = np.full(len(found), None, dtype=object)
    if feature.kind == "numeric":
        missing = np.isnan(found)
        if feature.minimum is not None:
            kinds[found < feature.minimum] = "below_range"
        if feature.maximum is not None:
            kinds[found > feature.maximum] = "above_range"
    else:
        missing = checked.missing[feature.name]
        kinds[~missing & ~_within(found, feature.categories)] = "unseen_category"
    if not feature.nullable:
        kinds[missing] = "missing"
    return kinds


def inputs(checked: Checked, schema: Schema, model: Any) -> tuple[np.ndarray, np.ndarray]:
    """The graph's two inputs (Compiled.arrays' layout), numbers past an observed range at its ends
    (unseen.clipped)."""
    import numpy as np

    rows = len(checked.accepted)
    observed = {f.name: f for f in schema.features if f.limits == "observed" and f.kind == "numeric"}
    numbers = np.empty((rows, len(model.numeric)))
    for index, name in enumerate(model.numeric):
        found = checked.values[name]
        if name in observed:
            feature = observed[name]
            found = np.where(found < feature.minimum, feature.minimum, found) if feature.minimum is not None else found
            found = np.where(found > feature.maximum, feature.maximum, found) if feature.maximum is not None else found
        numbers[:, index] = found
    texts = np.empty((len(model.categorical), rows), dtype=object)  # filled a column at a time, contiguous
    for index, name in enumerate(model.categorical):
        texts[index] = checked.values[name]
    return numbers, np.ascontiguousarray(texts.T)


def answer_columns(predicted: Any, classes: tuple[str, ...]) -> dict[str, Any]:
    """The task's body as columns (scoring.answer_columns of `task.body`), straight from the arrays:
    `label` and `proba_<class>`, or `value`, `lower` and `upper`."""
    import numpy as np
    import pandas as pd

    if classes:
        names = [str(c) for c in predicted.names]
        proba = np.asarray(predicted.outputs, dtype="float64")
        if proba.shape[1:] != (len(names),):
            raise ValueError(f"the model gave {proba.shape[1:]} probabilities per row for {len(names)} classes")
        codes, distinct = pd.factorize(np.asarray(predicted.labels))  # a few classes: text made once each
        columns: dict[str, Any] = {"label": pd.array(np.asarray(distinct).astype(str), dtype="str").take(codes)}
        return columns | {f"proba_{name}": proba[:, index] for index, name in enumerate(names)}
    ends = np.asarray(predicted.outputs, dtype="float64")
    return {"value": np.asarray(predicted.labels, dtype="float64"), "lower": ends[:, 0], "upper": ends[:, 1]}
