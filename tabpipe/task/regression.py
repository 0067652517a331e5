"""Regression: a value per row, with the conformal interval the model carries (tabpipe/task/intervals.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, get_args

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import RegressionMetric
from tabpipe.task import intervals
from tabpipe.task.base import Predicted, Task, Winner, finite, resample_weights, rounded
from tabpipe.task.series import deciles, observe_all

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


MAX_SCATTER_POINTS = 1000
# A target spread this small next to its values' squares is rounding (three equal 0.1s leave ~1e-34): R² is
# undefined there, in the exact score and in the resampled one alike.
NO_SPREAD = 1e-12
INTERVAL = ["lower", "upper"]  # an interval's ends, where a classifier's probabilities go in the log


class Regression(Task):
    name = "regression"
    metrics: ClassVar[tuple[str, ...]] = get_args(RegressionMetric)
    plots = ("actual", "residuals")
    candidates = "train.regression.candidates"
    estimator_type = "regressor"
    onnx_output = 0  # skl2onnx names a regressor's only output `variable`
    column_kind = "numerical"
    predicts = "values"
    paired_tests = ("bootstrap",)
    weighs_classes = False
    calibrates = False

    def coerce(self, values: pd.Series) -> pd.Series:
        import pandas as pd

        with contextlib.suppress(ValueError, TypeError):
            return pd.to_numeric(values).astype("float64")
        return values

    def learned(self, values: pd.Series) -> np.ndarray:
        return values.astype("float64").to_numpy()

    def accept(self, values: pd.Series, column: str) -> None:
        """Numbers, every one finite."""
        import pandas as pd

        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.isna().any():
            bad = values[numbers.isna()].iloc[0]
            raise PipelineError(f"column '{column}': {bad!r} is not a number, and data.task is regression")
        finite(numbers, column)

    def classes(self, values: pd.Series) -> tuple[str, ...]:
        return ()

    def type_problem(self, values: pd.Series, examples: Callable[[pd.Series], str]) -> str | None:
        import pandas as pd

        if pd.api.types.is_numeric_dtype(values):
            return None
        return f"expected numbers (a regression target), found text such as {examples(values)}"

    def label_problems(
        self, values: pd.Series, classes: tuple[str, ...], examples: Callable[[pd.Series], str]
    ) -> list[tuple[str, str]]:
        import numpy as np
        import pandas as pd

        if not pd.api.types.is_numeric_dtype(values):
            return []
        infinite = int(np.isinf(values.to_numpy("float64")).sum())
        return [("infinite_target", f"{infinite} rows are infinite")] if infinite else []

    def predict(self, model: Any, x: Any) -> Predicted:
        import numpy as np

        return self.answered(np.asarray(model.predict(x), dtype="float64"), model)

    def output_names(self, classes: tuple[str, ...]) -> list[str]:
        return INTERVAL

    def answered(self, answer: np.ndarray, model: Any) -> Predicted:
        """The values and, when the model carries one, each value's interval."""
        import numpy as np

        values = answer.ravel()
        interval = intervals.of(model)
        if interval is None:
            return Predicted(values, None, [])
        return Predicted(values, np.column_stack(intervals.bounds(values, interval)), INTERVAL, interval)

    def unfit_to_serve(self, model: Any) -> str | None:
        return None if intervals.of(model) else "the regressor carries no interval; rerun `dvc repro`"

    def decode(self, answer: np.ndarray, model: Any) -> np.ndarray:
        return answer.ravel()

    def estimator_tags(self) -> Any:
        from sklearn.utils import RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True), regressor_tags=RegressorTags())

    def score(self, metric: str, y: np.ndarray, predicted: Predicted) -> float:
        return score(metric, y, predicted.labels)

    def sample_scores(self, metric: str, y: np.ndarray, predicted: Predicted, rows: np.ndarray) -> np.ndarray:
        return sample_scores(metric, y, predicted.labels, rows)

    def measure(self, y: np.ndarray, predicted: Predicted) -> dict[str, Any]:
        """The errors, and the intervals' level, coverage and width."""
        found: dict[str, Any] = {name: rounded(self.score(name, y, predicted)) for name in self.metrics}
        found["rows"] = len(y)
        if predicted.interval is not None:
            lower, upper = predicted.outputs[:, 0], predicted.outputs[:, 1]
            found |= {
                "interval_level": predicted.interval.level,
                "interval_coverage": rounded(intervals.coverage(y, lower, upper)),
                "interval_width": rounded(2 * predicted.interval.halfwidth),
            }
        return found

    def curves(self, y: np.ndarray, predicted: Predicted, seed: int) -> dict[str, list[dict[str, float]]]:
        return scatter_points(y, predicted.labels, seed)

    def table(self, y: np.ndarray, predicted: Predicted) -> pd.DataFrame:
        import pandas as pd

        table = pd.DataFrame({"row": range(len(y)), "actual": y, "predicted": predicted.labels})
        if predicted.outputs is not None:
            table["lower"], table["upper"] = predicted.outputs[:, 0], predicted.outputs[:, 1]
        return table

    def confusion(self, y: np.ndarray, predicted: Predicted) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"actual": [], "predicted": []})

    def agreement(self, reference: Any, compiled: Any, x: Any) -> dict[str, float]:
        return value_agreement(reference.predict(x), compiled.predict(x))

    def finishing(self, winner: Winner) -> str | None:
        level, folds = winner.settings.regression.interval, winner.settings.cv_folds
        return f"calibrating {level:.0%} intervals on {winner.name}'s {folds}-fold errors"

    def finish(self, model: Any, winner: Winner) -> None:
        """The interval, from the winner's out-of-fold errors (tabpipe/task/intervals.py)."""
        level, jobs = winner.settings.regression.interval, winner.settings.n_jobs
        try:
            found = intervals.calibrate(winner.unfitted, winner.x, winner.y, winner.folds, level, jobs)
        except ValueError as error:  # as the search reports a failed fit: one line naming the candidate
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise PipelineError(f"train: calibrating intervals on '{winner.name}' failed: {reason}") from None
        model.interval_ = found.as_dict()

    def carried(self, model: Any) -> dict[str, Any]:
        found = getattr(model, "interval_", None)
        return {"interval": found} if found else {}

    def window_metrics(self, truth: np.ndarray, predicted: Predicted) -> dict[str, float]:
        """The errors, and with the intervals' ends the share of labelled rows inside their interval."""
        found = super().window_metrics(truth, predicted)
        if predicted.outputs is not None:
            lower, upper = predicted.outputs[:, 0], predicted.outputs[:, 1]
            found["interval_coverage"] = rounded(intervals.coverage(truth, lower, upper))
        return found

    def body(self, predicted: Predicted, model: dict[str, str], request_id: str | None) -> dict[str, Any]:
        """Each row's value and its interval (at the level /model reports)."""
        import numpy as np

        values = np.asarray(predicted.labels, dtype="float64").tolist()
        ends = np.asarray(predicted.outputs, dtype="float64").tolist()
        return {
            "model": model,
            "request_id": request_id,
            "predictions": [{"value": value, "interval": pair} for value, pair in zip(values, ends, strict=True)],
        }

    def series(self, metrics: Any, buckets: list[float] | None) -> Any:
        return metrics.Histogram(
            name="tabpipe_predicted_values",
            documentation="A regressor's served values (buckets: the training target's deciles)",
            buckets=buckets or None,
        )

    def buckets(self, target: pd.Series) -> list[float] | None:
        """The training target's deciles."""
        return deciles(target)

    def observe(self, series: Any, predicted: Predicted) -> None:
        observe_all(series, predicted.labels)


def score(metric: str, y_true: np.ndarray, values: np.ndarray) -> float:
    """One regression metric: RMSE, MAE or R² (1 - squared error over the variance around the mean)."""
    import numpy as np

    y = np.asarray(y_true, dtype="float64")
    errors = y - values
    if metric == "rmse":
        return float(np.sqrt(np.mean(errors**2)))
    if metric == "mae":
        return float(np.mean(np.abs(errors)))
    if metric == "r2":
        spread = float(np.sum((y - np.mean(y)) ** 2))
        return 1.0 - float(np.sum(errors**2)) / spread if spread > NO_SPREAD * float(np.sum(y**2)) else float("nan")
    raise ValueError(f"unknown metric '{metric}', expected one of {', '.join(Regression.metrics)}")


def sample_scores(metric: str, y_true: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A regression metric on each resample at once (rows of `rows`: indices drawn with replacement),
    from weighted sums of per-row errors."""
    import numpy as np

    n = len(y_true)
    weights = resample_weights(rows, n)
    y = np.asarray(y_true, dtype="float64")
    errors = y - values
    if metric == "rmse":
        return np.sqrt(weights @ errors**2 / n)
    if metric == "mae":
        return weights @ np.abs(errors) / n
    if metric == "r2":
        spread = weights @ y**2 - (weights @ y) ** 2 / n
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(spread > NO_SPREAD * (weights @ y**2), 1.0 - (weights @ errors**2) / spread, np.nan)
    raise ValueError(f"unknown metric '{metric}', expected one of {', '.join(Regression.metrics)}")


def scatter_points(y_true: np.ndarray, values: np.ndarray, seed: int) -> dict[str, list[dict[str, float]]]:
    """Predicted against actual, and residual against predicted, on a seeded sample of at most
    MAX_SCATTER_POINTS test rows (in row order), so the plot files stay small."""
    import numpy as np

    rows = np.arange(len(values))
    if len(rows) > MAX_SCATTER_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_SCATTER_POINTS, replace=False))
    actual = [{"actual": rounded(y_true[i]), "predicted": rounded(values[i])} for i in rows]
    residuals = [{"predicted": rounded(values[i]), "residual": rounded(y_true[i] - values[i])} for i in rows]
    return {"actual": actual, "residuals": residuals}


def value_agreement(reference: np.ndarray, compiled: np.ndarray) -> dict[str, float]:
    """How far a compiled regressor's values are from the pipeline's on the same rows: the largest
    difference, and the same relative to the spread of the pipeline's values (trees sum in float32)."""
    import numpy as np

    difference = float(np.abs(reference - compiled).max()) if len(reference) else 0.0
    spread = float(np.ptp(reference)) if len(reference) else 0.0
    return {
        "max_value_difference": round(difference, 12),
        "max_relative_difference": round(difference / spread, 12) if spread else 0.0,
    }
