"""The seeded, stratified train/test split: by class, or for regression by the target's quantiles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.data.schema import Schema


def train_test(
    frame: pd.DataFrame, schema: Schema, *, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split so that every class (or target decile) keeps its share in both parts; the seed makes it repeatable."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise PipelineError(f"params.yaml: data.test_size is {test_size}, expected a fraction between 0 and 1")
    if schema.regression:
        try:
            train, test = train_test_split(
                frame, test_size=test_size, random_state=seed, stratify=strata(frame[schema.target], test_size)
            )
        except ValueError as error:
            raise PipelineError(f"column '{schema.target}': cannot split {len(frame)} rows ({error})") from None
        return train.reset_index(drop=True), test.reset_index(drop=True)
    counts = frame[schema.target].value_counts()
    short = counts[counts < 2]
    if len(short):
        label = short.index[0]
        raise PipelineError(
            f"column '{schema.target}': class '{label}' has only {int(short.iloc[0])} row; a split needs 2 per class"
        )
    try:
        train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[schema.target])
    except ValueError as error:
        raise PipelineError(f"column '{schema.target}': cannot split {len(frame)} rows ({error})") from None
    return train.reset_index(drop=True), test.reset_index(drop=True)


def subsample(frame: pd.DataFrame, schema: Schema, *, fraction: float, seed: int) -> pd.DataFrame:
    """A seeded, stratified share of the rows (all of them at 1.0), for quicker runs on big datasets."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction <= 1:
        raise PipelineError(f"params.yaml: data.fraction is {fraction}, expected a fraction in (0, 1]")
    if fraction == 1:
        return frame
    try:
        by = strata(frame[schema.target], 1 - fraction) if schema.regression else frame[schema.target]
        kept, _ = train_test_split(frame, train_size=fraction, random_state=seed, stratify=by)
    except ValueError as error:
        raise PipelineError(
            f"params.yaml: data.fraction {fraction} of {len(frame)} rows is too few ({error})"
        ) from None
    return kept.sort_index().reset_index(drop=True)


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
