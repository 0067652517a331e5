"""The service's request and answer: a row model built from the schema, rows typed as in training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from tabpipe.data.dates import parse
from tabpipe.data.frames import coerce

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.data.schema import Schema
    from tabpipe.task.base import Predicted, Task


def row_model(schema: Schema, unseen: Literal["answer", "refuse"]) -> Any:
    """The request row: every feature typed, bounded and (categories) enumerated from the schema.

    Strict numbers (no "5.1" strings, no NaN or Infinity), strings for categories; unknown keys
    are refused. Nullable features may be null or left out; the others are required. Under
    `unseen="answer"` only declared limits bind: a feature whose limits were observed takes any
    finite number or any string, and may be null or left out (the model imputes it).

    A TypedDict keyed by the column names: pydantic validates a row into a plain dict, with no
    object to build and dump per row (about 1.5 ms per 1,000 rows, bench/results/HISTORY.md).
    """
    from typing import NotRequired, Required

    from pydantic import AfterValidator, ConfigDict, Field, StrictStr, with_config
    from typing_extensions import TypedDict

    fields: dict[str, Any] = {}
    arriving = set(schema.request_names)
    for feature in schema.features:
        if feature.name not in arriving:  # a date's parts: derived from the date the row holds
            continue
        open_limits = unseen == "answer" and feature.limits == "observed"
        if feature.kind == "numeric":
            constraints: dict[str, Any] = {"strict": True, "allow_inf_nan": False}
            if not open_limits:
                constraints |= {"ge": feature.minimum, "le": feature.maximum}
            kind: Any = Annotated[float, Field(**constraints)]
        else:
            kind = StrictStr if open_limits else Literal[feature.categories]  # type: ignore[valid-type]
        optional = feature.nullable or open_limits
        fields[feature.name] = NotRequired[kind | None] if optional else Required[kind]
    for column, fmt in schema.dates:  # the text the file had; a malformed date is a 400 naming the field
        fields[column] = NotRequired[Annotated[StrictStr, AfterValidator(_date_check(fmt))] | None]
    row = TypedDict(f"{schema.name.title()}Row", fields)  # type: ignore[misc]
    return with_config(ConfigDict(extra="forbid"))(row)


def _date_check(fmt: str) -> Any:
    def check(value: str) -> str:
        parse(value, fmt)
        return value

    return check


def records(rows: list[dict[str, Any]], schema: Schema) -> list[dict[str, Any]]:
    """Validated request rows with every column the request model knows (one left out is None, as
    the model imputes it): what the prediction log keeps and the model reads. A row that has every
    column is used as it came (no copy: about 0.4 ms per 1,000 rows); one that lacks some is filled
    in the model's order."""
    empty = dict.fromkeys(schema.request_names)
    width = len(empty)
    return [row if len(row) == width else empty | row for row in rows]


def rows_frame(records: list[dict[str, Any]], schema: Schema) -> pd.DataFrame:
    """Rows as the frame the model was trained on: same columns, order and dtypes."""
    import pandas as pd

    columns = list(dict.fromkeys([*schema.feature_names, *schema.request_names]))
    return coerce(pd.DataFrame.from_records(records, columns=columns), schema)[schema.feature_names]


def predict(model: Any, records: list[dict[str, Any]], schema: Schema, task: Task) -> Predicted:
    """What the model answers for request rows: straight from arrays when the model can (ONNX), else
    through the frame the pipeline was trained on."""
    if hasattr(model, "predict_records"):
        return task.answered(model.predict_records(records), model)
    return task.predict(model, rows_frame(records, schema))


def encoded(body: dict[str, Any]) -> Any:
    """`body` as a finished JSON response. Returned as is, BentoML would derive its output model's JSON
    schema and serialise with the standard library on every request: about 12% of a worker's time
    at one row per request (bench/results/HISTORY.md, Serving)."""
    import orjson
    from starlette.responses import Response

    return Response(orjson.dumps(body), media_type="application/json")
