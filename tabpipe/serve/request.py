"""The service's request and answer: a row model built from the schema, rows typed as in training."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from tabpipe.data.dates import parse
from tabpipe.data.frames import coerce

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

    from tabpipe.data.schema import Schema


def field_name(column: str) -> str:
    """A Python identifier for a column; the JSON key stays the column name (an alias)."""
    name = re.sub(r"\W", "_", column)
    return f"f_{name}" if not name.isidentifier() or name.startswith("_") else name


def row_model(schema: Schema, unseen: Literal["answer", "refuse"]) -> type[BaseModel]:
    """The request row: every feature typed, bounded and (categories) enumerated from the schema.

    Strict numbers (no "5.1" strings, no NaN or Infinity), strings for categories; unknown keys
    are refused. Nullable features may be null or left out; the others are required. Under
    `unseen="answer"` only declared limits bind: a feature whose limits were observed takes any
    finite number or any string, and may be null or left out (the model imputes it).
    """
    from pydantic import AfterValidator, ConfigDict, Field, StrictStr, create_model

    fields: dict[str, Any] = {}
    arriving = set(schema.request_names)
    for feature in schema.features:
        if feature.name not in arriving:  # a date's parts: derived from the date the row holds
            continue
        open_limits = unseen == "answer" and feature.limits == "observed"
        if feature.kind == "numeric":
            kind: Any = float
            constraints: dict[str, Any] = {"strict": True, "allow_inf_nan": False}
            if not open_limits:
                constraints |= {"ge": feature.minimum, "le": feature.maximum}
        else:
            kind = StrictStr if open_limits else Literal[feature.categories]  # type: ignore[valid-type]
            constraints = {}
        if feature.nullable or open_limits:
            fields[field_name(feature.name)] = (kind | None, Field(None, alias=feature.name, **constraints))
        else:
            fields[field_name(feature.name)] = (kind, Field(..., alias=feature.name, **constraints))
    for column, fmt in schema.dates:  # the text the file had; a malformed date is a 400 naming the field
        kind = Annotated[StrictStr, AfterValidator(_date_check(fmt))]
        fields[field_name(column)] = (kind | None, Field(None, alias=column))
    config = ConfigDict(extra="forbid", populate_by_name=False)
    return create_model(f"{schema.name.title()}Row", __config__=config, **fields)


def _date_check(fmt: str) -> Any:
    def check(value: str) -> str:
        parse(value, fmt)
        return value

    return check


def records(rows: list[Any]) -> list[dict[str, Any]]:
    """Validated request rows as plain dicts keyed by column name (what the prediction log keeps)."""
    return [row.model_dump(by_alias=True) for row in rows]


def rows_frame(records: list[dict[str, Any]], schema: Schema) -> pd.DataFrame:
    """Rows as the frame the model was trained on: same columns, order and dtypes."""
    import pandas as pd

    columns = list(dict.fromkeys([*schema.feature_names, *schema.request_names]))
    return coerce(pd.DataFrame.from_records(records, columns=columns), schema)[schema.feature_names]


def predict(model: Any, records: list[dict[str, Any]], schema: Schema) -> tuple[Any, Any]:
    """(labels, probabilities) for request rows: straight from arrays when the model can (ONNX),
    else through the frame the pipeline was trained on."""
    import numpy as np

    from tabpipe.model.predict import predict as predict_frame

    if hasattr(model, "predict_records"):
        proba = model.predict_records(records)
        return np.asarray(model.classes_)[proba.argmax(axis=1)], proba
    return predict_frame(model, rows_frame(records, schema))


def predict_values(model: Any, records: list[dict[str, Any]], schema: Schema) -> Any:
    """A regressor's values for request rows, as `predict` gets a classifier's probabilities."""
    import numpy as np

    if hasattr(model, "predict_records"):
        return model.predict_records(records).ravel()
    return np.asarray(model.predict(rows_frame(records, schema)), dtype="float64")


def answer_values(
    values: Any, lower: Any, upper: Any, model: dict[str, str], request_id: str | None = None
) -> dict[str, Any]:
    """A regressor's /predict body: each row's value and its interval (at the level /model reports)."""
    return {
        "model": model,
        "request_id": request_id,
        "predictions": [
            {"value": float(value), "interval": [float(low), float(high)]}
            for value, low, high in zip(values, lower, upper, strict=True)
        ],
    }


def answer(
    labels: Any, proba: Any, classes: list[str], model: dict[str, str], request_id: str | None = None
) -> dict[str, Any]:
    """The /predict body; `request_id` (when logged) lets ground truth be joined to the log later."""
    return {
        "model": model,
        "request_id": request_id,
        "predictions": [
            {"label": str(label), "probabilities": {c: float(p) for c, p in zip(classes, row, strict=True)}}
            for label, row in zip(labels, proba, strict=True)
        ],
    }


def encoded(body: dict[str, Any]) -> Any:
    """`body` as a finished JSON response. Returned as is, BentoML would derive its output model's JSON
    schema and serialise with the standard library on every request: about 12% of a worker's time
    at one row per request (BENCHMARKS.md, Serving)."""
    import orjson
    from starlette.responses import Response

    return Response(orjson.dumps(body), media_type="application/json")
