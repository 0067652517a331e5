"""What a target asks for, classification or regression: declared in params, or inferred from its values.

`data.task: auto` reads the target column: text, or whole numbers with few distinct values, are
classes; other numbers are a quantity to predict. The choice and its reason are one log line, and
a declared task always wins. A target that fits neither task (one value for every row, text
under regression, an infinity) is one error line naming the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tabpipe.core.errors import PipelineError
from tabpipe.task import tasks
from tabpipe.task.base import finite

if TYPE_CHECKING:
    import pandas as pd

TaskKind = Literal["classification", "regression"]  # the names in tasks.TASKS
MAX_CLASSES = 20  # more distinct whole numbers than this read as a quantity (counts, prices, scores)


@dataclass(frozen=True)
class Chosen:
    task: TaskKind
    reason: str


def choose(values: pd.Series, declared: str, column: str) -> Chosen:
    """The task for target `values` (missing ones ignored); `declared` is data.task (auto, or the task itself)."""
    import pandas as pd

    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    numeric = bool(len(present)) and not numbers.isna().any()
    distinct = present.nunique()
    if distinct < 2:
        shown = f" ({present.iloc[0]})" if len(present) else ""
        raise PipelineError(f"column '{column}': one value{shown} on every labelled row; there is nothing to learn")
    if declared != "auto":
        tasks.of(declared).accept(present, column)
        return Chosen(declared, f"data.task is {declared}")
    if not numeric:
        return Chosen("classification", f"column '{column}' holds text ({distinct} distinct values)")
    finite(numbers, column)
    whole = bool((numbers == numbers.round()).all())
    if whole and distinct <= MAX_CLASSES:
        return Chosen("classification", f"column '{column}' holds {distinct} distinct whole numbers")
    what = f"{distinct} distinct whole numbers" if whole else "fractional numbers"
    hint = "set data.task: classification to treat them as classes"
    return Chosen("regression", f"column '{column}' holds {what}; {hint}")
