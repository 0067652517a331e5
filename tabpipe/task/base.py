"""The shape every task has: what the split, evaluate, the gate, compile, the service and the monitor
ask of it. A task is one subclass in its own module (classification.py, regression.py), listed in
tasks.py; nothing outside those branches on a task's name."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.core.settings import Decision, Train

DIGITS = 6  # metrics and plot points are rounded so reruns give the same bytes
MAX_CURVE_POINTS = 400


@dataclass(frozen=True)
class Predicted:
    """A model's answer for some rows, in the prediction log's shape: `labels` (a class, or a
    regressor's value) and `outputs`, one column per name in `names` (each class's probability, or
    an interval's ends; none for a regressor without an interval)."""

    labels: np.ndarray
    outputs: np.ndarray | None
    names: list[str]
    interval: Any = None  # the interval the outputs' ends come from, for a task that answers with one
    decision: Any = None  # how the labels followed from the outputs, for a task that decides by a rule

    def take(self, rows: np.ndarray) -> Predicted:
        """The same answer for `rows` only (a mask or positions)."""
        outputs = None if self.outputs is None else self.outputs[rows]
        return Predicted(self.labels[rows], outputs, self.names, self.interval, self.decision)


@dataclass(frozen=True)
class Winner:
    """What a task finishes the search's refitted winner with: its name, an unfitted copy, the training
    rows and the search's folds (for out-of-fold predictions), and the settings."""

    name: str
    unfitted: Any
    x: Any
    y: Any
    folds: list[Any]
    settings: Train
    decision: Decision


class Task(ABC):
    """One kind of learning problem; each attribute and method is one thing the pipeline does differently."""

    name: ClassVar[str]  # data.task's value, the schema's `task`, and the estimator catalog's third field
    metrics: ClassVar[tuple[str, ...]]  # what evaluate reports, in metrics/evaluate.json's order
    plots: ClassVar[tuple[str, ...]]  # the plot files it fills (evaluate writes every task's; others stay empty)
    candidates: ClassVar[str]  # the params.yaml section listing its candidates
    estimator_type: ClassVar[str]  # scikit-learn's estimator type: what its scorers expect
    onnx_output: ClassVar[int]  # which output of the compiled graph holds the answer
    column_kind: ClassVar[str]  # how Evidently reads its target and predictions: categorical or numerical
    predicts: ClassVar[str]  # what the monitor calls its predictions in a drift line
    weighs_classes: ClassVar[bool]  # whether train.class_weight applies to its estimators
    calibrates: ClassVar[bool]  # whether train.calibration applies (it answers with probabilities)
    paired_tests: ClassVar[tuple[str, ...]]  # gate.champion.test's choices: McNemar needs labels right or wrong

    # The data: its target in a prepared frame, as the model learns it, and what validate checks.
    @abstractmethod
    def coerce(self, values: pd.Series) -> pd.Series:
        """The target column of a prepared frame (read from any file format)."""

    @abstractmethod
    def learned(self, values: pd.Series) -> np.ndarray:
        """The target (or a logged prediction) as the model learns and predicts it."""

    def accept(self, values: pd.Series, column: str) -> None:
        """Raise PipelineError (one line naming `column`) when declared, this task cannot learn these
        target values (missing ones dropped)."""
        return None

    @abstractmethod
    def classes(self, values: pd.Series) -> tuple[str, ...]:
        """What the schema lists as its classes."""

    def check_split(self, target: pd.Series, train: pd.Series | None = None, test: pd.Series | None = None) -> None:
        """Raise PipelineError (one line) when the split cannot serve this task: before splitting, with
        only `target`; after, with both parts."""
        return None

    def type_problem(self, values: pd.Series, examples: Callable[[pd.Series], str]) -> str | None:
        """Why the target column's type cannot be this task's, or None (`examples` shows some values)."""
        return None

    @abstractmethod
    def label_problems(
        self, values: pd.Series, classes: tuple[str, ...], examples: Callable[[pd.Series], str]
    ) -> list[tuple[str, str]]:
        """(check, message) for present target values this task cannot learn from (`examples` shows some)."""

    def count_problems(self, values: pd.Series, classes: tuple[str, ...], min_rows: int) -> list[tuple[str, str]]:
        """(check, message) for a target with too few rows of something the task needs."""
        return []

    # The model: predictions, scores, plots, and the compiled model's agreement.
    @abstractmethod
    def predict(self, model: Any, x: Any) -> Predicted:
        """What a fitted pipeline (or the compiled model) answers for a frame."""

    @abstractmethod
    def output_names(self, classes: tuple[str, ...]) -> list[str]:
        """The names of `Predicted.outputs`' columns, as the prediction log keeps them."""

    @abstractmethod
    def answered(self, answer: np.ndarray, model: Any) -> Predicted:
        """What the compiled `model` predicts, from its graph's answer for request rows."""

    def logged(self, labels: np.ndarray, outputs: np.ndarray, names: list[str], model: Any) -> Predicted:
        """What the served `model` answered, as its prediction log kept it (the served labels and outputs)."""
        return Predicted(labels, outputs, names)

    def unfit_to_serve(self, model: Any) -> str | None:
        """Why a loaded model cannot serve this task (what it lacks), or None."""
        return None

    @abstractmethod
    def decode(self, answer: np.ndarray, model: Any) -> np.ndarray:
        """The predictions in the compiled `model`'s answer (its graph's `onnx_output`)."""

    @abstractmethod
    def estimator_tags(self) -> Any:
        """scikit-learn's tags for a model of this task (the compiled model has no class to take them from)."""

    @abstractmethod
    def score(self, metric: str, y: np.ndarray, predicted: Predicted) -> float:
        """One metric, computed alone."""

    @abstractmethod
    def sample_scores(self, metric: str, y: np.ndarray, predicted: Predicted, rows: np.ndarray) -> np.ndarray:
        """The metric on each resample (one per row of `rows`, indices drawn with replacement)."""

    @abstractmethod
    def measure(self, y: np.ndarray, predicted: Predicted) -> dict[str, Any]:
        """metrics/evaluate.json: every metric and the row count, rounded."""

    @abstractmethod
    def curves(self, y: np.ndarray, predicted: Predicted, seed: int) -> dict[str, list[dict[str, float]]]:
        """Each of `plots`' points."""

    @abstractmethod
    def table(self, y: np.ndarray, predicted: Predicted) -> pd.DataFrame:
        """evaluate's per-row predictions (kept for parity checks)."""

    @abstractmethod
    def confusion(self, y: np.ndarray, predicted: Predicted) -> pd.DataFrame:
        """The rows DVC's confusion template counts (none for a task without classes)."""

    @abstractmethod
    def agreement(self, reference: Any, compiled: Any, x: Any) -> dict[str, float]:
        """How far the compiled model is from the pipeline on the same rows."""

    def check(self, decision: Decision, y: Any) -> None:
        """Raise PipelineError (one line) before any fit when `decision` cannot apply to this target."""
        if decision.objective != "argmax":
            raise PipelineError(f"params.yaml: decision.objective {decision.objective} applies to classification")

    def finishing(self, winner: Winner) -> str | None:
        """What `finish` will do to the refitted winner, for the progress line; None when nothing slow."""
        return None

    def finish(self, model: Any, winner: Winner) -> None:
        """Give the refitted winner what it must carry besides itself, from the search's folds."""
        return None

    def carried(self, model: Any) -> dict[str, Any]:
        """What the refitted winner carries, whole, for the ONNX file's metadata (the compiled model reads it back)."""
        return {}

    def reported(self, model: Any) -> dict[str, Any]:
        """What it carries, as metrics/train.json and /model show it."""
        return self.carried(model)

    def judged_like(self, champion: Predicted, candidate: Predicted) -> Predicted:
        """The champion's answer, scored by the candidate's rules where scores depend on them (costs)."""
        return champion

    def window_metrics(self, truth: np.ndarray, predicted: Predicted) -> dict[str, float]:
        """evaluate's metrics on the monitor's labelled rows; a metric undefined there is left out."""
        import math

        values = {}
        for name in self.metrics:
            try:
                value = self.score(name, truth, predicted)
            except ValueError:
                continue
            if math.isfinite(value):
                values[name] = rounded(value)
        return values

    def slice_metrics(self, truth: np.ndarray, predicted: Predicted, everyone: np.ndarray) -> dict[str, float]:
        """A slice's figures (evaluate.slices): its metrics as a monitor's window has them. `everyone` is
        the whole test set's truth, for what must be the same in every slice."""
        return self.window_metrics(truth, predicted)

    # The service: its answer body and its Prometheus series.
    @abstractmethod
    def body(self, predicted: Predicted, model: dict[str, str], request_id: str | None) -> dict[str, Any]:
        """The /predict body."""

    @abstractmethod
    def series(self, metrics: Any, buckets: list[float] | None) -> Any:
        """The task's Prometheus series, made with `metrics` (bentoml.metrics)."""

    def buckets(self, target: pd.Series) -> list[float] | None:
        """The buckets of its Prometheus histogram of served values, from the training target; None when
        it keeps no such histogram."""
        return None

    @abstractmethod
    def observe(self, series: Any, predicted: Predicted) -> None:
        """Count one request's answers in `series`."""


def finite(numbers: pd.Series, column: str) -> None:
    """A numeric target must be finite: one error line otherwise."""
    infinite = int(numbers.abs().eq(math.inf).sum())
    if infinite:
        raise PipelineError(f"column '{column}': {infinite} rows are infinite; a target must be finite")


def classes_of(model: Any) -> list[str]:
    """The model's classes as text, in the order of its probability columns; none for a regressor."""
    return [str(c) for c in getattr(model, "classes_", [])]


def rounded(value: Any) -> float:
    return round(float(value), DIGITS)


def thin(points: list[dict[str, float]]) -> list[dict[str, float]]:
    """At most MAX_CURVE_POINTS evenly spaced points, keeping both ends, so the files stay small."""
    if len(points) <= MAX_CURVE_POINTS:
        return points
    step = (len(points) - 1) / (MAX_CURVE_POINTS - 1)
    return [points[round(i * step)] for i in range(MAX_CURVE_POINTS)]


def resample_weights(rows: np.ndarray, n: int) -> np.ndarray:
    """How often each of the n original rows was drawn, per resample (one row of `rows` each)."""
    import numpy as np

    counts = np.bincount((rows + n * np.arange(len(rows))[:, None]).ravel(), minlength=len(rows) * n)
    return counts.reshape(len(rows), n).astype(float)
