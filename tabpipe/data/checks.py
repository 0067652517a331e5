"""Schema checks on a data frame: pure functions returning problems, each naming its column."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tabpipe.task import tasks

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.core.settings import Validate
    from tabpipe.data.schema import Schema

ROWS = "(rows)"
EXAMPLES = 3


@dataclass(frozen=True)
class Problem:
    """One failed check: the column (or ROWS for whole-row checks), the check's name and what is wrong."""

    column: str
    check: str
    message: str

    def line(self, file: str) -> str:
        where = "" if self.column == ROWS else f" column '{self.column}':"
        return f"{file}:{where} {self.message}"


def columns(frame: pd.DataFrame, schema: Schema) -> list[Problem]:
    """Missing, extra and duplicated columns."""
    problems = [Problem(c, "duplicate_column", "appears more than once") for c in duplicated_names(frame.columns)]
    present = set(frame.columns)
    problems += [
        Problem(c, "missing_column", "missing (the schema requires it)") for c in schema.columns if c not in present
    ]
    expected = set(schema.columns)
    problems += [Problem(str(c), "extra_column", "not in the schema") for c in frame.columns if c not in expected]
    return problems


def types(frame: pd.DataFrame, schema: Schema) -> list[Problem]:
    """Numeric features must be numeric; categorical features and class labels text; a regression target numeric."""
    import pandas as pd

    problems = []
    for feature in schema.features:
        if feature.name not in frame.columns or is_duplicated(frame, feature.name):
            continue
        values = frame[feature.name]
        if feature.kind == "numeric" and not pd.api.types.is_numeric_dtype(values):
            bad = _non_numeric_examples(values)
            problems.append(Problem(feature.name, "dtype", f"expected numbers, found text such as {bad}"))
        if feature.kind == "categorical" and not _is_text(values):
            problems.append(Problem(feature.name, "dtype", f"expected text categories, found dtype {values.dtype}"))
    target = schema.target
    present = target in frame.columns and not is_duplicated(frame, target)
    wrong = tasks.of(schema.task).type_problem(frame[target], _non_numeric_examples) if present else None
    if wrong:
        problems.append(Problem(target, "dtype", wrong))
    return problems


def values(frame: pd.DataFrame, schema: Schema) -> list[Problem]:
    """Values outside the schema: out of range, infinite, unknown categories, missing where not allowed."""
    import numpy as np
    import pandas as pd

    problems = []
    for feature in schema.features:
        if feature.name not in frame.columns or is_duplicated(frame, feature.name):
            continue
        column = frame[feature.name]
        missing = int(column.isna().sum())
        if missing and not feature.nullable:
            problems.append(
                Problem(feature.name, "missing_values", f"{missing} missing values (the schema does not allow any)")
            )
        present = column.dropna()
        if feature.kind == "numeric" and pd.api.types.is_numeric_dtype(column):
            infinite = present[np.isinf(present.to_numpy(dtype=float))]
            if len(infinite):
                problems.append(Problem(feature.name, "infinite", f"{len(infinite)} infinite values"))
            finite = present[~np.isinf(present.to_numpy(dtype=float))]
            low = -math.inf if feature.minimum is None else feature.minimum
            high = math.inf if feature.maximum is None else feature.maximum
            outside = finite[(finite < low) | (finite > high)]
            if len(outside):
                problems.append(
                    Problem(
                        feature.name,
                        "range",
                        f"{len(outside)} values outside [{_fmt(low)}, {_fmt(high)}], such as {_examples(outside)}",
                    )
                )
        if feature.kind == "categorical" and _is_text(column):
            unknown = present[~present.astype(str).isin(feature.categories)]
            if len(unknown):
                problems.append(
                    Problem(
                        feature.name,
                        "unknown_category",
                        f"{len(unknown)} unknown categories, such as {_examples(unknown)}",
                    )
                )
    return problems


def labels(frame: pd.DataFrame, schema: Schema) -> list[Problem]:
    """The target: present on every row, and a value its task can learn (a class, a finite number)."""
    if schema.target not in frame.columns or is_duplicated(frame, schema.target):
        return []
    target = frame[schema.target]
    problems = []
    missing = int(target.isna().sum())
    if missing:
        problems.append(Problem(schema.target, "missing_labels", f"{missing} rows have no label"))
    found = tasks.of(schema.task).label_problems(target, schema.classes, _examples)
    return problems + [Problem(schema.target, check, message) for check, message in found]


def class_counts(frame: pd.DataFrame, schema: Schema, min_rows: int) -> list[Problem]:
    """Every class needs enough rows to be learned and scored (a regression target has no classes)."""
    if schema.target not in frame.columns or is_duplicated(frame, schema.target):
        return []
    found = tasks.of(schema.task).count_problems(frame[schema.target], schema.classes, min_rows)
    return [Problem(schema.target, check, message) for check, message in found]


def missing_share(frame: pd.DataFrame, schema: Schema, max_share: float) -> list[Problem]:
    problems = []
    for feature in schema.features:
        if feature.name not in frame.columns or is_duplicated(frame, feature.name) or not len(frame):
            continue
        share = float(frame[feature.name].isna().mean())
        if share > max_share:
            problems.append(
                Problem(
                    feature.name,
                    "missing_share",
                    f"{share:.1%} of values missing, more than {max_share:.1%}"
                    " (validate.max_missing_share; data.exclude sets the column aside)",
                )
            )
    return problems


def duplicates(frame: pd.DataFrame, max_share: float) -> list[Problem]:
    if not len(frame) or len(set(frame.columns)) != len(frame.columns):
        return []
    share = duplicate_share(frame)
    if share > max_share:
        message = f"{share:.1%} of rows are duplicates, more than {max_share:.1%} (validate.max_duplicate_share)"
        return [Problem(ROWS, "duplicate_rows", message)]
    return []


def duplicate_share(frame: pd.DataFrame) -> float:
    return float(frame.duplicated().mean()) if len(frame) else 0.0


def structure(frame: pd.DataFrame, schema: Schema) -> list[Problem]:
    """The checks without which nothing downstream can run: columns, types, labels."""
    if not len(frame):
        return [Problem(ROWS, "empty", "has no rows")]
    return columns(frame, schema) + types(frame, schema) + labels(frame, schema)


def run_all(frame: pd.DataFrame, schema: Schema, limits: Validate) -> list[Problem]:
    """Every check, in a stable order, with the limits of params.yaml's `validate` section."""
    found = structure(frame, schema)
    if any(p.check == "empty" for p in found):
        return found
    return (
        found
        + values(frame, schema)
        + missing_share(frame, schema, limits.max_missing_share)
        + duplicates(frame, limits.max_duplicate_share)
        + class_counts(frame, schema, limits.min_rows_per_class)
    )


def duplicated_names(names: pd.Index) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for name in map(str, names):
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def is_duplicated(frame: pd.DataFrame, name: str) -> bool:
    return int((frame.columns == name).sum()) > 1


def _is_text(values: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_string_dtype(values) or (values.dtype == object and values.dropna().map(type).eq(str).all())


def _non_numeric_examples(values: pd.Series) -> str:
    import pandas as pd

    present = values.dropna()
    bad = present[pd.to_numeric(present, errors="coerce").isna()]
    return _examples(bad if len(bad) else present)


def _examples(values: pd.Series) -> str:
    shown = list(dict.fromkeys(map(repr_value, values.tolist())))[:EXAMPLES]
    return ", ".join(shown)


def repr_value(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return repr(int(value)) if abs(value) < 1e15 else repr(value)
    return repr(value)


def _fmt(number: float) -> str:
    return repr_value(number).strip("'")
