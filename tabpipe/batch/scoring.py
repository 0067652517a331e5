"""One chunk of a batch scored under the service's contract, by the functions the service calls.

Each file row becomes the JSON row a client would send (numbers as numbers, categories and dates as
text, a missing value as null), is validated by the service's row model, and is answered through
`request.records`, `unseen.model_rows`, `request.predict` and the task's `body`, as POST /predict
answers it. Columns beyond the features are not the row's: the service would refuse them as unknown
keys, a batch carries them (`--keep`) or leaves them. For a compiled model, the rows a columnar check
accepts are answered from arrays instead (columnar.py), to the same bytes; the row path takes the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from tabpipe.serve import request, unseen

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.batch import columnar
    from tabpipe.data.schema import Schema
    from tabpipe.task.base import Task

ROW = "row"  # the input row's position, counted from 0 over the whole input (a folder's parts in name order)
REJECT_COLUMNS = ("field", "type", "message", "detail")


@dataclass(frozen=True)
class Scorer:
    """What every chunk is scored with: the served model, its schema and task, the request row model
    (a pydantic TypeAdapter of a list of rows) and its `serve.unseen` policy, the model's name and
    version, and the columns kept."""

    model: Any
    schema: Schema
    task: Task
    rows: Any
    policy: str
    identity: dict[str, str]
    keep: tuple[str, ...] = ()


def scorer(
    model: Any, schema: Schema, task: Task, policy: str, identity: dict[str, str], keep: tuple[str, ...]
) -> Scorer:
    """A Scorer whose row model is the service's (`request.row_model` under `serve.unseen`)."""
    from pydantic import TypeAdapter

    adapter = TypeAdapter(list[request.row_model(schema, policy)])  # type: ignore[misc]
    return Scorer(model, schema, task, adapter, policy, identity, keep)


def required(schema: Schema, policy: str) -> list[str]:
    """The columns the row model requires (the others may be left out, as a request may)."""
    row = request.row_model(schema, policy)  # type: ignore[arg-type]
    return [name for name in schema.request_names if name in row.__required_keys__]


@dataclass(frozen=True)
class Scored:
    """A chunk's answers (one row per valid input row) and rejects (one per invalid one); `flagged`
    counts answered rows holding a value outside the schema's limits."""

    scored: pd.DataFrame
    rejected: pd.DataFrame
    flagged: int


def request_rows(frame: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    """The file's rows as a client's JSON rows: only the columns the row model knows, each typed as JSON
    would carry it. A numeric column's text that is no number stays text, so the row model refuses it."""
    import pandas as pd

    from tabpipe.core.text import as_text

    columns: dict[str, list[Any]] = {}
    numeric = set(schema.numeric)
    for name in schema.request_names:
        if name not in frame.columns:
            continue
        values = frame[name]
        if name in numeric:
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                as_float = values.astype("float64")
                columns[name] = as_float.astype(object).where(as_float.notna(), None).tolist()
            else:
                columns[name] = [_number(v) for v in values.astype(object).tolist()]
        else:
            texts = as_text(values).astype(object)
            columns[name] = texts.where(texts.notna(), None).tolist()
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)] or [
        {} for _ in range(len(frame))
    ]


def _number(value: Any) -> Any:
    """A numeric column's value as JSON would carry it: missing as null, text that reads as a number as it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def validate(
    rows: list[dict[str, Any]], adapter: Any
) -> tuple[list[dict[str, Any]], list[int], dict[int, list[dict[str, Any]]]]:
    """The valid rows as the row model returns them, their positions, and each invalid row's problems.

    The whole list is validated at once (pydantic's loop, not ours); only a chunk with invalid rows is
    validated twice, the second time without them."""
    from pydantic import ValidationError

    try:
        return adapter.validate_python(rows), list(range(len(rows))), {}
    except ValidationError as error:
        problems: dict[int, list[dict[str, Any]]] = {}
        for found in error.errors(include_url=False, include_input=False):
            position, *where = found["loc"]
            field = str(where[0]) if where else ""  # the key after the row's index: the 400's field
            problems.setdefault(int(position), []).append(
                {"field": field, "type": found["type"], "message": found["msg"]}
            )
    kept = [i for i in range(len(rows)) if i not in problems]
    return adapter.validate_python([rows[i] for i in kept]), kept, problems


def score(frame: pd.DataFrame, first_row: int, scorer: Scorer) -> Scored:
    """Answer every valid row of a chunk as /predict would, and reject each invalid one with the 400's reason.

    A compiled model answers the rows whose every column the columnar check accepts from arrays
    (columnar.py); the rest, and every row of a scikit-learn pipeline, take the row path."""
    import numpy as np
    import pandas as pd

    from tabpipe.batch import columnar
    from tabpipe.model.compiled import Compiled

    positions = np.arange(first_row, first_row + len(frame))
    if not isinstance(scorer.model, Compiled):  # the scikit-learn pipeline: only the row path answers it
        return by_rows(frame, positions, scorer)
    checked = columnar.checked(frame, scorer.schema, scorer.policy)
    if not checked.accepted.any():
        return by_rows(frame, positions, scorer)
    if checked.accepted.all():  # the common chunk: nothing to select
        return by_columns(frame, positions, checked, scorer)
    fast = by_columns(
        frame[checked.accepted], positions[checked.accepted], columnar.rows_of(checked, checked.accepted), scorer
    )
    slow = by_rows(frame[~checked.accepted], positions[~checked.accepted], scorer)
    if slow.scored.empty:
        return Scored(fast.scored, slow.rejected, fast.flagged)
    scored = pd.concat([fast.scored, slow.scored]).sort_values(ROW, kind="stable").reset_index(drop=True)
    return Scored(scored, slow.rejected, fast.flagged + slow.flagged)


def by_columns(frame: pd.DataFrame, positions: np.ndarray, checked: columnar.Checked, scorer: Scorer) -> Scored:
    """Rows the columnar check accepted (`checked`: their model columns), answered from arrays in one
    model call: the same columns and values the row path writes."""
    import pandas as pd

    from tabpipe.batch import columnar

    answer = scorer.model.run(*columnar.inputs(checked, scorer.schema, scorer.model))
    predicted = scorer.task.answered(answer, scorer.model)
    unseen_texts, flagged = columnar.flagged(checked, scorer.schema)
    scored = pd.DataFrame(
        {
            **{name: frame[name].reset_index(drop=True) for name in scorer.keep},
            ROW: positions,
            **columnar.answer_columns(predicted, scorer.schema.classes),
        }
    )
    scored["unseen"] = unseen_texts
    scored["model"], scored["version"] = scorer.identity["name"], scorer.identity["version"]
    return Scored(scored, rejects(frame, positions, {}, scorer.keep), flagged)


def by_rows(frame: pd.DataFrame, positions: np.ndarray, scorer: Scorer) -> Scored:
    """The row path: each row as the JSON a client sends, validated by the service's row model and
    answered by the service's functions."""
    import pandas as pd

    valid, kept, problems = validate(request_rows(frame, scorer.schema), scorer.rows)
    rejected = rejects(frame, positions, problems, scorer.keep)
    kept_frame = pd.DataFrame(
        {**{name: frame[name].iloc[kept].reset_index(drop=True) for name in scorer.keep}, ROW: positions[kept]}
    )
    if not valid:
        return Scored(kept_frame, rejected, 0)
    answers, flags = answer(valid, scorer)
    scored = pd.concat([kept_frame, answers], axis=1)
    scored["unseen"] = [orjson.dumps(f).decode() for f in flags]
    scored["model"], scored["version"] = scorer.identity["name"], scorer.identity["version"]
    return Scored(scored, rejected, sum(bool(f) for f in flags))


def rejects(
    frame: pd.DataFrame, positions: np.ndarray, problems: dict[int, list[dict[str, Any]]], keep: tuple[str, ...]
) -> pd.DataFrame:
    """One row per invalid input row (`problems` by its place in `frame`): the first problem, and all as JSON."""
    import pandas as pd

    rejected_at = sorted(problems)
    return pd.DataFrame(
        {
            **{name: frame[name].iloc[rejected_at].reset_index(drop=True) for name in keep},
            ROW: positions[rejected_at],
            "field": [problems[i][0]["field"] for i in rejected_at],
            "type": [problems[i][0]["type"] for i in rejected_at],
            "message": [problems[i][0]["message"] for i in rejected_at],
            "detail": [orjson.dumps(problems[i]).decode() for i in rejected_at],
        }
    )


def answer(rows: list[dict[str, Any]], scorer: Scorer) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Validated rows answered exactly as the service answers them, as columns, and each row's flags."""
    records = request.records(rows, scorer.schema)
    model_rows, flags = unseen.model_rows(records, scorer.schema)
    predicted = request.predict(scorer.model, model_rows, scorer.schema, scorer.task)
    body = scorer.task.body(predicted, scorer.identity, None)
    return answer_columns(body["predictions"]), flags


def answer_columns(predictions: list[dict[str, Any]]) -> pd.DataFrame:
    """The body's predictions flattened: `label` and `proba_<class>`, or `value`, `lower` and `upper`."""
    import pandas as pd

    first = predictions[0]
    if "probabilities" in first:
        names = list(first["probabilities"])
        columns = {"label": [p["label"] for p in predictions]}
        columns |= {f"proba_{n}": [p["probabilities"][n] for p in predictions] for n in names}
        return pd.DataFrame(columns)
    return pd.DataFrame(
        {
            "value": [p["value"] for p in predictions],
            "lower": [p["interval"][0] for p in predictions],
            "upper": [p["interval"][1] for p in predictions],
        }
    )


def empty_scored(scorer: Scorer) -> pd.DataFrame:
    """The output's columns with no rows (every row rejected): those of a one-row answer, emptied."""
    import numpy as np
    import pandas as pd

    from tabpipe.task.base import Predicted

    names = scorer.task.output_names(scorer.schema.classes)
    one = Predicted(np.asarray([names[0]] if scorer.schema.classes else [0.0]), np.zeros((1, len(names))), names)
    columns = answer_columns(scorer.task.body(one, scorer.identity, None)["predictions"])
    frame = pd.concat([_empty_kept(scorer.keep), columns.iloc[:0]], axis=1)
    return frame.assign(unseen=pd.Series(dtype="str"), model=pd.Series(dtype="str"), version=pd.Series(dtype="str"))


def empty_rejected(scorer: Scorer) -> pd.DataFrame:
    """The rejects' columns with no rows (every row scored)."""
    import pandas as pd

    return _empty_kept(scorer.keep).assign(**{name: pd.Series(dtype="str") for name in REJECT_COLUMNS})


def _empty_kept(keep: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({**{name: pd.Series(dtype="str") for name in keep}, ROW: pd.Series(dtype="int64")})
