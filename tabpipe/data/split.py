"""The train/test split and the subsample, each decided row by row from the row's own hash (data/rows.py);
and the stratified samples the search and permutation importance draw from the training rows."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.data import rows
from tabpipe.task import tasks

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.data.schema import Schema


def train_test(
    frame: pd.DataFrame, schema: Schema, *, test_size: float, seed: int, time_column: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split by each row's own hash (`time_column`: by time, the newest rows are the test split).

    A row is a test row when its seeded draw falls below `test_size`, so its split depends on it
    alone: other rows arriving, leaving or moving never change it. Each split comes in hash order,
    so a reordered file gives the same splits, byte for byte.
    """
    if not 0 < test_size < 1:
        raise PipelineError(f"params.yaml: data.test_size is {test_size}, expected a fraction between 0 and 1")
    task = tasks.of(schema.task)
    task.check_split(frame[schema.target])
    hashes = rows.identity(frame, schema.identity)
    if time_column:
        test = newest(times(frame, schema, time_column), hashes, test_size)
    else:
        test = rows.draw(hashes, seed, "split") < test_size
    order = rows.canonical_order(hashes, rows.identity(frame, [str(c) for c in frame.columns]))
    train_part, test_part = _ordered(frame, order, ~test), _ordered(frame, order, test)
    for name, part in (("train", train_part), ("test", test_part)):
        if not len(part):
            raise PipelineError(
                f"params.yaml: data.test_size {test_size} leaves the {name} split of {len(frame)} rows empty"
            )
    task.check_split(frame[schema.target], train_part[schema.target], test_part[schema.target])
    return train_part, test_part


def share_tolerance(rows: int, share: float) -> float:
    """How far a group's test share may stray from `share` (docs/data.md): each row's draw is its own, so
    the share is binomial; five standard errors, plus one row."""
    return 5 * math.sqrt(share * (1 - share) / rows) + 1 / rows


def subsample(frame: pd.DataFrame, schema: Schema, *, fraction: float, seed: int) -> pd.DataFrame:
    """The rows whose own seeded draw falls below `fraction` (all of them at 1.0), in file order.

    A row kept at one fraction is kept at any larger one, and other rows never change whether it is."""
    if not 0 < fraction <= 1:
        raise PipelineError(f"params.yaml: data.fraction is {fraction}, expected a fraction in (0, 1]")
    if fraction == 1:
        return frame
    kept = rows.draw(rows.identity(frame, schema.identity), seed, "fraction") < fraction
    if not kept.any():
        raise PipelineError(f"params.yaml: data.fraction {fraction} of {len(frame)} rows keeps none")
    return frame[kept].reset_index(drop=True)


def newest(when: np.ndarray, hashes: np.ndarray, test_size: float) -> np.ndarray:
    """The newest `test_size` share of rows (rows at the same time in hash order): the test rows' mask."""
    import numpy as np

    count = max(1, round(test_size * len(when)))
    test = np.zeros(len(when), dtype=bool)
    test[np.lexsort((hashes, when))[len(when) - count :]] = True
    return test


def times(frame: pd.DataFrame, schema: Schema, column: str) -> np.ndarray:
    """`data.time_column`'s values as sortable numbers: a date column's dates, or a numeric feature."""
    import numpy as np
    import pandas as pd

    formats = dict(schema.dates)
    if column in formats and column in frame.columns:
        stamps = pd.to_datetime(frame[column].astype("string"), format=formats[column], errors="coerce")
        stamps = stamps.to_numpy(dtype="datetime64[ns]")
        numbers = stamps.astype("int64").astype("float64")
        numbers[np.isnat(stamps)] = np.nan
    elif column in schema.numeric:
        numbers = frame[column].to_numpy(dtype="float64")
    else:
        raise PipelineError(
            f"params.yaml: data.time_column '{column}' is not a date column or a numeric feature of the data"
        )
    missing = int(pd.isna(numbers).sum())
    if missing:
        raise PipelineError(f"column '{column}': {missing} rows have no time; split: time needs one on every row")
    return numbers


def _ordered(frame: pd.DataFrame, order: np.ndarray, mask: np.ndarray) -> pd.DataFrame:
    """The rows `mask` marks, in `order` (positions)."""
    return frame.iloc[order[mask[order]]].reset_index(drop=True)


def strata(target: pd.Series, share: float) -> pd.Series:
    """A regression target's quantile bins, as many as keep at least two rows of each in the smaller part.

    Up to ten (deciles); fewer for small data, down to one bin (a plain random split).
    """
    import pandas as pd

    smaller = min(share, 1 - share) * len(target)
    bins = max(1, min(10, int(smaller // 2)))
    return pd.qcut(target.rank(method="first"), bins, labels=False)


def stratified_sample(x: Any, y: Any, rows: int, seed: int) -> tuple[Any, Any]:
    """A seeded sample of `rows` rows keeping the class shares (a quantity's deciles); all of them when
    `rows` is 0 or not fewer.

    The search's early rounds and permutation importance both rank things on fewer rows than there are.
    """
    if not 0 < rows < len(x):
        return x, y
    from sklearn.model_selection import train_test_split

    xs, _, ys, _ = train_test_split(x, y, train_size=rows, stratify=groups(y, rows / len(x)), random_state=seed)
    return xs, ys


def groups(y: Any, share: float) -> Any:
    """What to stratify by: the classes, or for a regression target (floats) its quantile bins."""
    import pandas as pd

    values = pd.Series(y)
    return strata(values, share).to_numpy() if values.dtype.kind == "f" else y
