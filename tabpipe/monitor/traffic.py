"""A window of served traffic, from the prediction log, a batch file or `tabpipe predict`'s output, ready to assess.

The window holds the schema's features (typed as in training) and the class the model predicted
for each row; with ground truth, also the labels of the rows that have one; and how many values
fell outside the schema's limits, by column and kind (tabpipe.serve.unseen).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.data.frames import coerce
from tabpipe.monitor.assess import PREDICTION
from tabpipe.serve import unseen
from tabpipe.task import tasks

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.data.schema import Schema
    from tabpipe.task.base import Predicted, Task


@dataclass(frozen=True)
class Traffic:
    """The window to compare with the reference, (when known) labels with the model's probabilities,
    and the values outside the schema's limits: {column: {kind: rows}}."""

    window: pd.DataFrame
    labelled: dict[str, Any]
    unseen_rows: int
    unseen: dict[str, dict[str, int]]

    def unseen_summary(self) -> dict[str, Any]:
        """The monitor's report entries: rows holding any such value, and the counts by column and kind."""
        return {"unseen_rows": self.unseen_rows, "unseen_values": self.unseen}


def from_batch(batch: pd.DataFrame, model: Any, schema: Schema, file: str) -> Traffic:
    """A file of rows: the model predicts them now; a target column, where present, gives the truth.

    Numbers past a feature's range reach the model as the range's end, as in the service."""
    import pandas as pd

    task = tasks.of(schema.task)
    rows = unseen.clipped_frame(batch[schema.feature_names], schema)
    truth = batch[schema.target] if schema.target in batch.columns else None
    flags = unseen.unseen(batch[schema.feature_names].to_dict(orient="records"), schema)
    predicted = task.predict(model, rows)
    window = batch[schema.feature_names].assign(**{PREDICTION: task.learned(pd.Series(predicted.labels))})
    labelled = _labelled(truth, predicted, task, file)
    return Traffic(window, labelled, sum(bool(f) for f in flags), unseen.counts(flags))


SCORED = ("row", "unseen", "model", "version")  # the columns every `tabpipe predict` output has (batch/scoring.py)


def is_scored(columns: Any) -> bool:
    """Whether a batch is `tabpipe predict`'s output: its answers are then the served predictions."""
    return all(name in columns for name in SCORED)


def from_scored(scored: pd.DataFrame, model: Any, schema: Schema, identity: dict[str, str], file: str) -> Traffic:
    """`tabpipe predict`'s output: its answers stand for the served model's, so nothing is predicted
    again; they must be the served model's own. The features are those the run kept (`--keep`)."""
    scored_by(scored, identity, file)
    missing = [name for name in schema.feature_names if name not in scored.columns]
    if missing:
        raise PipelineError(
            f"{file}: column '{missing[0]}': missing; drift needs the features: score with --keep for each of them"
        )
    task = tasks.of(schema.task)
    names = task.output_names(schema.classes)
    answered, outputs = answer_columns(schema, names)
    absent = [c for c in (answered, *outputs) if c not in scored.columns]
    if absent:
        raise PipelineError(f"{file}: column '{absent[0]}': missing from the scored rows (was another model served?)")
    labels = task.learned(scored[answered])
    window = scored[schema.feature_names].assign(**{PREDICTION: labels})
    predicted = task.logged(labels, scored[outputs].to_numpy(dtype="float64"), names, model)
    truth = scored[schema.target] if schema.target in scored.columns else None
    flags = logged_unseen(scored)
    return Traffic(window, _labelled(truth, predicted, task, file), sum(bool(f) for f in flags), unseen.counts(flags))


def scored_by(scored: pd.DataFrame, identity: dict[str, str], file: str) -> None:
    """Refuse answers from a model other than the served one: they would not be the served predictions."""
    found = scored[["model", "version"]].astype(str).drop_duplicates()
    other = found[(found["model"] != identity["name"]) | (found["version"] != str(identity["version"]))]
    if len(other):
        name, version = other.iloc[0]
        raise PipelineError(
            f"{file}: scored by {name} version {version}, but {identity['name']} version {identity['version']}"
            " is served; score it again with `tabpipe predict`"
        )


def answer_columns(schema: Schema, names: list[str]) -> tuple[str, list[str]]:
    """Where a scored output keeps the served label (or value), and its outputs: `proba_<class>` or the interval."""
    if schema.classes:
        return "label", [f"proba_{name}" for name in names]
    return "value", list(names)


def from_log(logged: pd.DataFrame, model: Any, schema: Schema, labels: pd.DataFrame | None, file: str) -> Traffic:
    """Logged rows with the probabilities the service answered; `labels` (request_id, row, target) joined on.

    `model` is the served one: its rule (a classifier's decision) made the logged labels."""
    window = window_from_log(logged, schema)
    truth = None if labels is None else join_labels(logged, labels, schema.target, file)
    task = tasks.of(schema.task)
    names = task.output_names(schema.classes)  # a classifier's probabilities, a regressor's interval ends
    predicted = task.logged(window[PREDICTION].to_numpy(), logged_probabilities(logged, names), names, model)
    labelled = _labelled(truth, predicted, task, file)
    flags = logged_unseen(logged)
    return Traffic(window, labelled, sum(bool(f) for f in flags), unseen.counts(flags))


def logged_unseen(logged: pd.DataFrame) -> list[dict[str, str]]:
    """Each logged row's flagged values ({column: kind}); prediction_log.read gives `{}` for rows logged
    before flagging."""
    return [json.loads(text) if isinstance(text, str) and text else {} for text in logged["unseen"]]


def _labelled(truth: pd.Series | None, predicted: Predicted, task: Task, file: str) -> dict[str, Any]:
    """The rows whose truth is known, as assess() takes them: their truth as the task learns it, and
    what was predicted for them; empty without truth."""
    if truth is None:
        return {}
    known = truth.notna().to_numpy()
    if not known.any():
        raise PipelineError(f"{file}: no row of the window has a label")
    try:
        values = task.learned(truth[known])
    except (TypeError, ValueError):
        raise PipelineError(f"{file}: the target column holds values that are not numbers") from None
    return {"truth": values, "predicted": predicted.take(known)}


def window_from_log(logged: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Logged rows as a window: features typed as in training, the served class in PREDICTION."""
    missing = [name for name in schema.request_names if name not in logged.columns]
    if missing:
        raise PipelineError(f"prediction log: column '{missing[0]}': not logged (was another model served?)")
    window = coerce(logged[schema.request_names].copy(), schema)[schema.feature_names]
    window[PREDICTION] = tasks.of(schema.task).learned(logged["label"])
    return window


def logged_probabilities(logged: pd.DataFrame, classes: list[str]) -> np.ndarray:
    columns = [f"proba_{c}" for c in classes]
    absent = [c for c in columns if c not in logged.columns]
    if absent:
        raise PipelineError(f"prediction log: column '{absent[0]}': the logged classes differ from the model's")
    return logged[columns].to_numpy(dtype="float64")


def join_labels(logged: pd.DataFrame, labels: pd.DataFrame, target: str, file: str) -> pd.Series:
    """Ground truth for each logged row, matched on (request_id, row); rows without a label are NaN."""
    needed = ["request_id", "row", target]
    absent = [c for c in needed if c not in labels.columns]
    if absent:
        raise PipelineError(f"{file}: column '{absent[0]}': missing (labels need request_id, row and {target})")
    keyed = labels[needed].astype({"request_id": str, "row": int})
    if keyed.duplicated(["request_id", "row"]).any():
        raise PipelineError(f"{file}: column 'row': the same (request_id, row) is labelled twice")
    merged = logged[["request_id", "row"]].merge(keyed, how="left", on=["request_id", "row"])
    return merged[target]
