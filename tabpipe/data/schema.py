"""The dataset schema: the one definition of columns, types, ranges and target.

Validation, the featurizer and the service's request model are all built from it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import yaml

from tabpipe.core.errors import PipelineError
from tabpipe.core.files import read_json
from tabpipe.core.settings import ColumnKind
from tabpipe.core.text import as_text
from tabpipe.task import tasks
from tabpipe.task.choose import TaskKind

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.core.settings import ColumnLimits

Kind = ColumnKind
KINDS: tuple[str, ...] = get_args(ColumnKind)
Limits = Literal["declared", "observed"]
LIMITS: tuple[str, ...] = ("declared", "observed")


@dataclass(frozen=True)
class Feature:
    """One input column. Numeric features have a closed range; categorical ones a category list.

    `limits` says where range, categories and nullability come from: `declared` (a built-in
    schema, or `data.limits` in params) is a contract the service enforces; `observed` (inferred
    from a user's CSV) is only what training saw, which `serve.unseen` decides how to treat.
    """

    name: str
    kind: Kind
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    nullable: bool = False
    limits: Limits = "declared"


@dataclass(frozen=True)
class Schema:
    """A dataset's features, target and task; `meta` columns are carried but never learned from.

    Classification lists its classes; a regression target is a number and has none.
    """

    name: str
    features: tuple[Feature, ...]
    target: str
    classes: tuple[str, ...]
    missing_markers: tuple[str, ...] = ()
    meta: tuple[str, ...] = field(default=())
    task: TaskKind = "classification"
    set_aside: tuple[tuple[str, str], ...] = ()  # (column, why) for a raw table's columns that are not features
    dates: tuple[tuple[str, str], ...] = ()  # (column, format): carried in `meta`, learned from as its parts
    key: tuple[str, ...] = ()  # `data.key`: the columns that identify a row (carried in `meta` unless features)

    @property
    def request_names(self) -> list[str]:
        """The columns a row arrives with (a request, a batch file): the features, with each date as the
        text it was in place of its parts (tabpipe/data/dates.py)."""
        parts = {f"{column}." for column, _ in self.dates}
        kept = [name for name in self.feature_names if not any(name.startswith(p) for p in parts)]
        return [*kept, *(column for column, _ in self.dates)]

    @property
    def identity(self) -> list[str]:
        """The columns whose values are a row's identity (data/rows.py): its key, else its features."""
        return list(self.key) or self.feature_names

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def columns(self) -> list[str]:
        """Every column a prepared frame has, in order."""
        return [*self.feature_names, *self.meta, self.target]

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = [_compact(f) for f in data["features"]]
        for name in ("set_aside", "dates"):  # a schema without any stays as it was written before they existed
            data[name] = dict(getattr(self, name))
            if not data[name]:
                del data[name]
        if not self.key:
            del data["key"]
        return _lists(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        try:
            features = tuple(
                Feature(
                    name=str(f["name"]),
                    kind=_kind(f["kind"], f["name"]),
                    minimum=_number(f.get("minimum")),
                    maximum=_number(f.get("maximum")),
                    categories=tuple(str(c) for c in f.get("categories", ())),
                    nullable=bool(f.get("nullable", False)),
                    limits=_limits(f.get("limits", "declared"), f["name"]),
                )
                for f in data["features"]
            )
            return cls(
                name=str(data["name"]),
                features=features,
                target=str(data["target"]),
                classes=tuple(str(c) for c in data["classes"]),
                missing_markers=tuple(str(m) for m in data.get("missing_markers", ())),
                meta=tuple(str(m) for m in data.get("meta", ())),
                task=_task(data.get("task", "classification")),
                set_aside=tuple((str(c), str(why)) for c, why in data.get("set_aside", {}).items()),
                dates=tuple((str(c), str(fmt)) for c, fmt in data.get("dates", {}).items()),
                key=tuple(str(k) for k in data.get("key", ())),
            )
        except (KeyError, TypeError) as error:
            raise PipelineError(f"schema: missing or malformed entry {error}") from None


def builtin(name: str) -> Schema:
    """The declared schema of a bundled dataset (tabpipe/data/builtin/<name>.yaml)."""
    text = resources.files("tabpipe.data").joinpath("builtin", f"{name}.yaml").read_text(encoding="utf-8")
    return Schema.from_dict(yaml.safe_load(text))


def read(path: str | Path) -> Schema:
    """The schema ingest wrote beside the prepared splits (data/prepared/schema.json)."""
    return Schema.from_dict(read_json(path))


def infer(
    frame: pd.DataFrame,
    *,
    name: str,
    target: str,
    column_types: dict[str, str] | None = None,
    missing_markers: tuple[str, ...] = (),
    limits: dict[str, ColumnLimits] | None = None,
    task: TaskKind = "classification",
    set_aside: tuple[tuple[str, str], ...] = (),
) -> Schema:
    """Infer a schema from a normalised user frame: numeric dtypes are numeric unless overridden.

    Ranges, categories and nullability are the observed ones (`limits: observed`), except for
    the columns `limits` declares (params' `data.limits`), which take exactly what is declared.
    """
    import pandas as pd

    overrides = dict(column_types or {})
    for column, kind in overrides.items():
        if column not in frame.columns:
            raise PipelineError(f"params.yaml: data.column_types names column '{column}', which the data lacks")
        _kind(kind, column)
    declared = dict(limits or {})
    for column in declared:
        if column not in frame.columns or column == target:
            raise PipelineError(f"params.yaml: data.limits names column '{column}', which is not a feature of the data")
    features = []
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        kind = overrides.get(column) or ("numeric" if pd.api.types.is_numeric_dtype(values) else "categorical")
        nullable = bool(values.isna().any())
        if column in declared:
            features.append(_declared(column, kind, declared[column]))
        elif kind == "numeric":
            finite = pd.to_numeric(values, errors="coerce")
            finite = finite[finite.abs() != math.inf]
            low, high = _number(finite.min()), _number(finite.max())
            features.append(Feature(column, "numeric", low, high, nullable=nullable, limits="observed"))
        else:
            categories = tuple(sorted(as_text(values).dropna().unique()))
            features.append(Feature(column, "categorical", categories=categories, nullable=nullable, limits="observed"))
    classes = tasks.of(task).classes(frame[target])
    return Schema(name, tuple(features), target, classes, tuple(missing_markers), task=task, set_aside=set_aside)


def _task(value: Any) -> TaskKind:
    if value not in get_args(TaskKind):
        raise PipelineError(f"schema: task '{value}', expected one of {', '.join(get_args(TaskKind))}")
    return value


def _kind(value: Any, column: str) -> Kind:
    if value not in KINDS:
        raise PipelineError(f"schema: column '{column}' has kind '{value}', expected one of {', '.join(KINDS)}")
    return value


def _declared(column: str, kind: str, limits: ColumnLimits) -> Feature:
    """A column whose limits params declare: exactly those (an absent bound is no bound)."""
    where = f"params.yaml: data.limits.{column}"
    if kind == "numeric":
        if limits.categories is not None:
            raise PipelineError(f"{where}: categories given for a numeric column (set data.column_types to change it)")
        low, high = limits.minimum, limits.maximum
        if low is not None and high is not None and low > high:
            raise PipelineError(f"{where}: minimum {low} is above maximum {high}")
        return Feature(column, "numeric", low, high, nullable=limits.nullable)
    if limits.minimum is not None or limits.maximum is not None:
        raise PipelineError(f"{where}: minimum or maximum given for a categorical column")
    if not limits.categories:
        raise PipelineError(f"{where}: a categorical column needs its categories")
    return Feature(column, "categorical", categories=tuple(limits.categories), nullable=limits.nullable)


def _limits(value: Any, column: str) -> Limits:
    if value not in LIMITS:
        raise PipelineError(f"schema: column '{column}' has limits '{value}', expected one of {', '.join(LIMITS)}")
    return value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _compact(feature: dict[str, Any]) -> dict[str, Any]:
    """Drop the fields that do not apply to a feature's kind, for a readable artifact."""
    keep = {"name", "kind", "nullable", "limits"}
    keep |= {"minimum", "maximum"} if feature["kind"] == "numeric" else {"categories"}
    return {k: v for k, v in feature.items() if k in keep}


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value
