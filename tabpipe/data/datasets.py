"""Loaders for the datasets `data.dataset` can name: each returns a clean frame, its schema and its source."""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import DatasetName
from tabpipe.data import checks, dates, roles, split, synthetic
from tabpipe.data.frames import clean, coerce
from tabpipe.data.schema import Schema, builtin, infer
from tabpipe.task.choose import choose

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.core.settings import Data, Synthetic

log = logging.getLogger("ingest")

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
PARQUET = (".parquet", ".pq")
DATASETS: tuple[str, ...] = get_args(DatasetName)


@dataclass(frozen=True)
class Loaded:
    """A dataset's clean rows and schema; `unlabelled` counts the rows of a user's table set aside
    because their target is missing."""

    frame: pd.DataFrame
    schema: Schema
    source: str
    unlabelled: int = 0


@dataclass(frozen=True)
class Prepared:
    """What ingest writes: the two splits, the schema they follow, where the rows came from, and
    what was set aside (metrics/ingest.json)."""

    train: pd.DataFrame
    test: pd.DataFrame
    schema: Schema
    source: str
    summary: dict[str, int]


def prepare(data: Data, seed: int, root: Path, raw: Path) -> Prepared:
    """Load the dataset, keep a seeded share of it (`data.fraction`), and split it into train and test."""
    if data.split == "time" and not data.time_column:
        raise PipelineError("params.yaml: data.split is 'time' but data.time_column is empty")
    loaded = load(data, root, raw, seed=seed)
    schema = loaded.schema
    if data.dataset != "csv" and data.key_columns:  # a user's table carries its key; a built-in keys by features
        missing = [c for c in data.key_columns if c not in schema.feature_names]
        if missing:
            raise PipelineError(
                f"params.yaml: data.key names column '{missing[0]}', which is not a {data.dataset} feature"
            )
        schema = replace(schema, key=tuple(data.key_columns))
    frame = split.subsample(loaded.frame, schema, fraction=data.fraction, seed=seed)
    time_column = data.time_column if data.split == "time" else ""
    train, test = split.train_test(frame, schema, test_size=data.test_size, seed=seed, time_column=time_column)
    by = f"time ({time_column})" if time_column else f"the hash of each row's {'key' if schema.key else 'features'}"
    share = 100 * len(test) / len(frame)
    log.info("split by %s: %d train rows, %d test rows (%.1f%%)", by, len(train), len(test), share)
    summary = {
        "rows": len(loaded.frame),
        "rows_without_target": loaded.unlabelled,
        "columns_set_aside": len(schema.set_aside),
        "train_rows": len(train),
        "test_rows": len(test),
    }
    return Prepared(train, test, schema, loaded.source, summary)


def load(data: Data, root: Path, raw: Path, *, seed: int) -> Loaded:
    """Load the dataset named by `data.dataset`, cleaned and typed to its schema.

    The user's files (`data.iris_csv`, `data.path`) are relative to `root`; the bundled ones are in `raw`.
    `seed` (base.seed) generates the synthetic dataset.
    """
    name = data.dataset
    if name == "csv":
        return _user_csv(root, data)
    if name == "iris":
        if not data.iris_csv:
            raise PipelineError("params.yaml: data.dataset is 'iris' but data.iris_csv is empty")
        loaded = _iris(root / data.iris_csv)
    elif name == "employment":
        loaded = _employment(raw / "employment.parquet", data.years)
    elif name == "synthetic":
        loaded = _synthetic(data.synthetic, seed)
    else:
        loaded = _bundled(name, raw / f"{name}.parquet")
    if data.task not in ("auto", loaded.schema.task):
        raise PipelineError(f"params.yaml: data.task is {data.task}, but {name} is a {loaded.schema.task} dataset")
    log.info("task: %s (%s declares it)", loaded.schema.task, name)
    return loaded


def require(frame: pd.DataFrame, schema: Schema, file: str) -> None:
    """Raise one line per structural problem (columns, types, labels); ingest cannot go on without them."""
    problems = checks.structure(frame, schema)
    if problems:
        raise PipelineError("\n".join(p.line(file) for p in problems))


def read_csv(path: Path, markers: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV, turning every way it can be unreadable into one clear line."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, na_values=list(markers), skipinitialspace=True)
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), [])
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise PipelineError(f"{path}: file is empty") from None
    except UnicodeDecodeError as error:
        raise PipelineError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except pd.errors.ParserError as error:
        detail = str(error).strip().splitlines()[-1]
        raise PipelineError(f"{path}: cannot be parsed as CSV ({detail})") from None
    repeated = checks.duplicated_names(pd.Index([name.strip() for name in header]))
    if repeated:
        raise PipelineError("\n".join(f"{path}: column '{c}': appears more than once in the header" for c in repeated))
    return frame


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file, turning every way it can be unreadable into one clear line."""
    import pandas as pd
    import pyarrow

    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except (pyarrow.ArrowException, OSError) as error:
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise PipelineError(f"{path}: cannot be read as Parquet ({detail})") from None
    frame.columns = [str(c) for c in frame.columns]
    repeated = checks.duplicated_names(pd.Index([name.strip() for name in frame.columns]))
    if repeated:
        raise PipelineError("\n".join(f"{path}: column '{c}': appears more than once" for c in repeated))
    return frame


def read_user_table(path: Path, markers: tuple[str, ...] = ()) -> pd.DataFrame:
    """A user's table by its file name: Parquet (.parquet, .pq), a folder of Parquet parts (as
    `tabpipe predict --cluster` writes them), else CSV; names and text cleaned."""
    if path.is_dir():
        raw = read_parts(path)
    else:
        raw = read_parquet(path) if path.suffix in PARQUET else read_csv(path, markers)
    return clean(raw, markers)


def read_parts(folder: Path) -> pd.DataFrame:
    """A folder's Parquet parts as one table."""
    import pandas as pd

    return pd.concat([read_parquet(part) for part in parquet_parts(folder)], ignore_index=True)


def parquet_parts(folder: Path) -> tuple[Path, ...]:
    """A folder's Parquet parts in file-name order, the input's order (`tabpipe predict --cluster`'s part-000000...)."""
    parts = tuple(sorted(p for p in folder.iterdir() if p.suffix in PARQUET))
    if not parts:
        raise PipelineError(f"{folder}: a folder with no Parquet parts (*.parquet)")
    return parts


def read_table(path: Path, schema: Schema) -> pd.DataFrame:
    """A file of rows (CSV or parquet) to check or label, cleaned and typed like training data."""
    return coerce(read_user_table(path, schema.missing_markers), schema)


def _iris(path: Path) -> Loaded:
    schema = builtin("iris")
    if path.exists() and path.stat().st_size > 0:
        raw = read_csv(path)
        if len(raw):
            frame = coerce(clean(raw, ()), schema)
            require(frame, schema, str(path))
            log.info("iris: using %s (%d rows)", path, len(frame))
            return Loaded(frame, schema, str(path))
        log.warning("iris: %s has a header but no rows; using scikit-learn's bundled copy", path)
    elif path.exists():
        log.warning("iris: %s is empty; using scikit-learn's bundled copy", path)
    else:
        log.info("iris: %s not found; using scikit-learn's bundled copy", path)
    return Loaded(coerce(_sklearn_iris(), schema), schema, "sklearn.datasets.load_iris")


def _sklearn_iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [*IRIS_COLUMNS, "species"]
    frame["species"] = [str(bunch.target_names[i]) for i in bunch.target]
    return frame


def _bundled(name: str, path: Path, filters: list[tuple[str, str, Any]] | None = None) -> Loaded:
    """A dataset committed as Parquet; `filters` (pyarrow's) read only the rows they keep."""
    import pandas as pd

    schema = builtin(name)
    _committed(path)
    frame = coerce(clean(pd.read_parquet(path, filters=filters), schema.missing_markers), schema)
    require(frame, schema, str(path))
    log.info("%s: using %s (%d rows)", name, path, len(frame))
    return Loaded(frame, schema, str(path))


def _committed(path: Path) -> None:
    if not path.exists():
        raise PipelineError(f"{path}: bundled dataset missing (it is committed to git; check out the repository again)")


def _employment(path: Path, years: list[int]) -> Loaded:
    """The years asked for, read alone: a year the data lacks is named before any row is read."""
    import pandas as pd

    _committed(path)
    available = sorted(int(y) for y in pd.read_parquet(path, columns=["year"])["year"].unique())
    wanted = list(years) or available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise PipelineError(f"params.yaml: data.years has {unknown}; the data has {available}")
    loaded = _bundled("employment", path, [("year", "in", wanted)])
    log.info("employment: years %s, %d rows", wanted, len(loaded.frame))
    return Loaded(loaded.frame, loaded.schema, f"{loaded.source} (years {', '.join(map(str, wanted))})")


def _synthetic(settings: Synthetic, seed: int) -> Loaded:
    schema = builtin("synthetic")
    frame = coerce(synthetic.generate(settings, schema, seed), schema)
    source = (
        f"sklearn.datasets.make_classification (rows {settings.rows}, signal {settings.signal}, "
        f"label_noise {settings.label_noise}, missing_share {settings.missing_share}, seed {seed})"
    )
    require(frame, schema, "synthetic")
    log.info("synthetic: %s", source)
    return Loaded(frame, schema, source)


def lineage(data: Data) -> str:
    """A user CSV's dataset name, which names its registered model: each CSV is its own lineage.

    `data.name` when set, else the file's name; a built-in dataset's name is not taken.
    """
    name = data.name or re.sub(r"[^a-z0-9_]+", "-", Path(data.path).stem.lower()).strip("-")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise PipelineError(
            f"params.yaml: data.name '{name}': use lower-case letters, digits, '-' and '_' (it names the model)"
        )
    return f"csv-{name}" if name in DATASETS else name


def _user_csv(root: Path, data: Data) -> Loaded:
    if not data.path:
        raise PipelineError("params.yaml: data.dataset is 'csv' but data.path is empty")
    if not data.target:
        raise PipelineError("params.yaml: data.dataset is 'csv' but data.target is empty")
    path = root / data.path
    target = data.target
    markers = tuple(data.missing_markers)
    frame = read_user_table(path, markers)
    if not len(frame):
        raise PipelineError(f"{path}: has a header but no rows")
    if target not in frame.columns:
        hint = " (one column found: is the file comma-separated?)" if frame.shape[1] == 1 else ""
        raise PipelineError(f"{path}: column '{target}': target column missing{hint}")
    keys = key_columns(frame, data)
    declared = {target, *data.column_types, *data.limits, *data.exclude, *keys}
    found = {c: fmt for c in frame.columns if c not in declared and (fmt := dates.detect(frame[c])) is not None}
    aside = roles.excluded(frame, data.exclude, target) + roles.infer(frame, declared | set(found))  # the file as is
    for column in aside:
        log.info("%s", roles.line(column))
    for column, fmt in found.items():
        names = ", ".join(dates.part_name(column, part) for part in dates.PARTS)
        log.info("column '%s': a date (%s), learned from as %s; data.exclude sets it aside", column, fmt, names)
    frame, unlabelled = labelled_rows(frame.drop(columns=[a.column for a in aside]), target, str(path))
    try:
        chosen = choose(frame[target], data.task, target)
    except PipelineError as error:
        raise PipelineError(f"{path}: {error}") from None
    log.info("task: %s (%s)", chosen.task, chosen.reason)
    date_formats = tuple(found.items())
    frame = dates.add_parts(frame, date_formats)
    carried = [*found, *(k for k in keys if k not in data.column_types)]  # ride along, never learned from
    schema = infer(
        frame.drop(columns=carried),
        name=lineage(data),
        target=target,
        column_types=data.column_types,
        missing_markers=markers,
        limits=data.limits,
        task=chosen.task,
        set_aside=tuple((a.column, a.reason) for a in aside),
    )
    schema = replace(schema, meta=tuple(carried), dates=date_formats, key=tuple(keys))
    frame = coerce(frame, schema)[schema.columns]
    require(frame, schema, str(path))
    log.info("csv: using %s (%d rows, %d features)", path, len(frame), len(schema.features))
    return Loaded(frame, schema, str(path), unlabelled)


def key_columns(frame: pd.DataFrame, data: Data) -> list[str]:
    """`data.key`'s columns, each one the table has and neither the target nor set aside by name."""
    for name in data.key_columns:
        if name not in frame.columns:
            raise PipelineError(f"params.yaml: data.key names column '{name}', which the data lacks")
        if name == data.target or name in data.exclude:
            where = "is the target" if name == data.target else "is also in data.exclude"
            raise PipelineError(f"params.yaml: data.key names column '{name}', which {where}")
    return list(data.key_columns)


def labelled_rows(frame: pd.DataFrame, target: str, file: str) -> tuple[pd.DataFrame, int]:
    """The rows that have a target, and how many did not: those are set aside, counted, and said in one line.

    (A target that breaks the task, such as text under regression, is still refused: tabpipe/task/choose.py.)"""
    known = frame[target].notna()
    missing = int((~known).sum())
    if not known.any():
        raise PipelineError(f"{file}: column '{target}': no row has a target")
    if missing:
        log.info("%s: column '%s': %d of %d rows have no target; set aside", file, target, missing, len(frame))
    return frame[known].reset_index(drop=True), missing
