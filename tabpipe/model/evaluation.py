"""Test-set evaluation: metrics as flat scalars, plot data for DVC's templates, predictions to keep."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from tabpipe.core.settings import Metric, RegressionMetric
from tabpipe.model import intervals
from tabpipe.model.predict import classes_of, predict

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.core.settings import Evaluate

log = logging.getLogger("evaluate")

DIGITS = 6
METRICS: tuple[str, ...] = get_args(Metric)  # every metric evaluate reports, in metrics/evaluate.json's order
REGRESSION_METRICS: tuple[str, ...] = get_args(RegressionMetric)  # the same, for a regression
MAX_CURVE_POINTS = 400


@dataclass(frozen=True)
class Evaluation:
    """Everything evaluate writes: metrics, plot data, and the per-row predictions.

    `curves` holds every plot's points by name (PLOTS); a task leaves the other task's plots empty,
    so the stage writes the same files either way. A regressor has no classes or probabilities:
    its `labels` are its values.
    """

    classes: list[str]
    labels: np.ndarray
    proba: np.ndarray | None
    metrics: dict[str, Any]
    curves: dict[str, list[dict[str, float]]]
    importance: list[dict[str, Any]]
    confusion: pd.DataFrame
    predictions: pd.DataFrame

    @property
    def regression(self) -> bool:
        return self.proba is None


PLOTS = ("roc", "pr", "actual", "residuals")  # plot data files, besides the confusion rows and importance
MAX_SCATTER_POINTS = 1000


def evaluate(model: Any, x: pd.DataFrame, y: np.ndarray, settings: Evaluate, seed: int) -> Evaluation:
    """Score the model on the test split: metrics, ROC and PR curves (a regressor's: see
    evaluate_regression), permutation importance."""
    if not hasattr(model, "classes_"):
        return evaluate_regression(model, x, y, settings, seed)
    labels, proba = predict(model, x)
    classes = classes_of(model)
    return Evaluation(
        classes=classes,
        labels=labels,
        proba=proba,
        metrics=metrics(y, proba, classes),
        curves={
            "roc": roc_points(y, proba, classes),
            "pr": pr_points(y, proba, classes),
            "actual": [],
            "residuals": [],
        },
        importance=_importance(model, x, y, settings, seed),
        confusion=confusion_rows(y, labels),
        predictions=predictions(x, y, labels, proba, classes),
    )


def evaluate_regression(model: Any, x: pd.DataFrame, y: np.ndarray, settings: Evaluate, seed: int) -> Evaluation:
    """Score a regressor: errors, the intervals' coverage, predicted-against-actual and residual points."""
    import numpy as np
    import pandas as pd

    values = np.asarray(model.predict(x), dtype="float64")
    interval = intervals.of(model)
    table = pd.DataFrame({"row": range(len(x)), "actual": y, "predicted": values})
    found = regression_metrics(y, values)
    if interval is not None:
        lower, upper = intervals.bounds(values, interval)
        table["lower"], table["upper"] = lower, upper
        found |= {
            "interval_level": interval.level,
            "interval_coverage": _round(intervals.coverage(y, lower, upper)),
            "interval_width": _round(2 * interval.halfwidth),
        }
    return Evaluation(
        classes=[],
        labels=values,
        proba=None,
        metrics=found,
        curves={"roc": [], "pr": [], **scatter_points(y, values, seed)},
        importance=_importance(model, x, y, settings, seed),
        confusion=pd.DataFrame({"actual": [], "predicted": []}),
        predictions=table,
    )


def regression_metrics(y_true: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """Every metric in REGRESSION_METRICS and the row count, rounded so reruns give the same bytes."""
    found: dict[str, Any] = {name: _round(regression_score(name, y_true, values)) for name in REGRESSION_METRICS}
    found["rows"] = len(y_true)
    return found


def regression_score(metric: str, y_true: np.ndarray, values: np.ndarray) -> float:
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
        return 1.0 - float(np.sum(errors**2)) / spread if spread else float("nan")
    raise ValueError(f"unknown metric '{metric}', expected one of {', '.join(REGRESSION_METRICS)}")


def regression_sample_scores(metric: str, y_true: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
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
            return np.where(spread > 0, 1.0 - (weights @ errors**2) / spread, np.nan)
    raise ValueError(f"unknown metric '{metric}', expected one of {', '.join(REGRESSION_METRICS)}")


def scatter_points(y_true: np.ndarray, values: np.ndarray, seed: int) -> dict[str, list[dict[str, float]]]:
    """Predicted against actual, and residual against predicted, on a seeded sample of at most
    MAX_SCATTER_POINTS test rows (in row order), so the plot files stay small."""
    import numpy as np

    rows = np.arange(len(values))
    if len(rows) > MAX_SCATTER_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_SCATTER_POINTS, replace=False))
    actual = [{"actual": _round(y_true[i]), "predicted": _round(values[i])} for i in rows]
    residuals = [{"predicted": _round(values[i]), "residual": _round(y_true[i] - values[i])} for i in rows]
    return {"actual": actual, "residuals": residuals}


def _importance(model: Any, x: pd.DataFrame, y: np.ndarray, settings: Evaluate, seed: int) -> list[dict[str, Any]]:
    return importance(
        model,
        x,
        y,
        scoring=settings.importance_scoring,
        repeats=settings.importance_repeats,
        seed=seed,
        rows=settings.importance_rows,
    )


def metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Every metric in METRICS, the row count and per-class F1, rounded so reruns give the same bytes."""
    import numpy as np
    from sklearn.metrics import f1_score

    labels = np.asarray(classes)[proba.argmax(axis=1)]
    values: dict[str, Any] = {name: _round(score(name, y_true, proba, classes)) for name in METRICS}
    values["rows"] = len(y_true)
    per_class = f1_score(y_true, labels, labels=classes, average=None, zero_division=0)
    values["f1_per_class"] = {label: _round(f1) for label, f1 in zip(classes, per_class, strict=True)}
    return values


def score(metric: str, y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    """One metric, computed alone (the gate's bootstrap calls this thousands of times).

    ROC AUC is one-vs-rest macro for multiclass and of the second class for binary.
    """
    import numpy as np
    from sklearn import metrics as m

    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}', expected one of {', '.join(METRICS)}")
    if metric == "roc_auc":
        if len(classes) == 2:
            return float(m.roc_auc_score(y_true == classes[1], proba[:, 1]))
        return float(m.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes))
    if metric == "log_loss":
        return float(m.log_loss(y_true, proba, labels=classes))
    labels = np.asarray(classes)[proba.argmax(axis=1)]
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, labels))
    if metric == "balanced_accuracy":
        return float(m.balanced_accuracy_score(y_true, labels))
    average = {"labels": classes, "average": "macro", "zero_division": 0}
    scorer = {"precision_macro": m.precision_score, "recall_macro": m.recall_score, "f1_macro": m.f1_score}[metric]
    return float(scorer(y_true, labels, **average))


def sample_scores(
    metric: str, y_true: np.ndarray, proba: np.ndarray, classes: list[str], rows: np.ndarray
) -> np.ndarray:
    """The metric on each resample of the test set (one per row of `rows`, row indices drawn with replacement).

    ROC AUC and accuracy are computed for all resamples at once, as weighted statistics over the
    original rows (a resample weights each row by how often it was drawn): the gate's bootstrap
    takes milliseconds instead of seconds. Other metrics are computed one resample at a time.
    A resample holding a single class has no ROC AUC: NaN.
    """
    import numpy as np

    if metric not in ("roc_auc", "accuracy"):
        return np.array([score(metric, y_true[r], proba[r], classes) for r in rows])
    n = len(y_true)
    weights = resample_weights(rows, n)
    if metric == "accuracy":
        right = np.asarray(classes)[proba.argmax(axis=1)] == y_true
        return weights @ right / n
    if len(classes) == 2:
        return _weighted_auc(weights, y_true == classes[1], proba[:, 1])
    per_class = [_weighted_auc(weights, y_true == label, proba[:, i]) for i, label in enumerate(classes)]
    return np.mean(per_class, axis=0)


def resample_weights(rows: np.ndarray, n: int) -> np.ndarray:
    """How often each of the n original rows was drawn, per resample (one row of `rows` each)."""
    import numpy as np

    counts = np.bincount((rows + n * np.arange(len(rows))[:, None]).ravel(), minlength=len(rows) * n)
    return counts.reshape(len(rows), n).astype(float)


def _weighted_auc(weights: np.ndarray, positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC per row of `weights`: the weighted share of (positive, negative) pairs ranked right, ties half."""
    import numpy as np

    order = np.argsort(scores, kind="stable")
    _, starts = np.unique(scores[order], return_index=True)
    ordered, is_positive = weights[:, order], positive[order]
    pos = np.add.reduceat(ordered * is_positive, starts, axis=1)
    neg = np.add.reduceat(ordered * ~is_positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, (pos * (below + neg / 2)).sum(axis=1) / pairs, np.nan)


def roc_points(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> list[dict[str, float]]:
    """ROC of the positive class (binary) or micro-averaged over classes (multiclass)."""
    from sklearn.metrics import roc_curve

    truth, score = _one_vs_rest(y_true, proba, classes)
    fpr, tpr, _ = roc_curve(truth, score)
    return _thin([{"fpr": _round(f), "tpr": _round(t)} for f, t in zip(fpr, tpr, strict=True)])


def pr_points(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> list[dict[str, float]]:
    """Precision-recall of the positive class (binary) or micro-averaged (multiclass)."""
    from sklearn.metrics import precision_recall_curve

    truth, score = _one_vs_rest(y_true, proba, classes)
    precision, recall, _ = precision_recall_curve(truth, score)
    points = [{"recall": _round(r), "precision": _round(p)} for p, r in zip(precision, recall, strict=True)]
    return _thin(points[::-1])


def confusion_rows(y_true: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per test example, the shape DVC's confusion template counts."""
    import pandas as pd

    return pd.DataFrame({"actual": y_true, "predicted": labels})


def importance(
    model: Any, x: pd.DataFrame, y: np.ndarray, *, scoring: str, repeats: int, seed: int, rows: int = 0
) -> list[dict[str, Any]]:
    """Permutation importance on the test set, per original feature (before one-hot).

    With `rows` (evaluate.importance_rows) below the test set's size, on a seeded stratified sample
    of that many rows: the ranking settles long before a large test set runs out, and the cost is
    features x repeats predictions of every row used.
    """
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import get_scorer

    started = time.perf_counter()
    if 0 < rows < len(x):
        from tabpipe.data.split import stratified_sample

        total = len(x)
        x, y = stratified_sample(x, y, rows, seed)
        log.info(
            "permutation importance: %d features x %d repeats on a seeded sample of %d of %d test rows"
            " (evaluate.importance_rows)",
            x.shape[1],
            repeats,
            len(x),
            total,
        )
    else:
        log.info("permutation importance: %d features x %d repeats on %d rows", x.shape[1], repeats, len(x))
    scorer = _Counted(get_scorer(scoring), total=1 + x.shape[1] * repeats, repeats=repeats, started=started)
    result = permutation_importance(model, x, y, scoring=scorer, n_repeats=repeats, random_state=seed, n_jobs=1)
    log.info("permutation importance: done in %.1f s", time.perf_counter() - started)
    rows_out = [
        {"feature": name, "importance": _round(mean), "std": _round(std)}
        for name, mean, std in zip(x.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows_out, key=lambda r: (-r["importance"], r["feature"]))


class _Counted:
    """A scorer that logs how many features permutation importance has finished, every few seconds.

    permutation_importance scores once for the baseline and `repeats` times per feature, in order;
    on large test sets a feature takes seconds, and the stage must not look hung.
    """

    def __init__(self, scorer: Any, *, total: int, repeats: int, started: float, every: float = 5.0) -> None:
        self.scorer, self.total, self.repeats, self.started, self.every = scorer, total, repeats, started, every
        self.calls, self.shown = 0, started

    def __call__(self, estimator: Any, x: Any, y: Any) -> float:
        score = self.scorer(estimator, x, y)
        self.calls += 1
        now = time.perf_counter()
        if now - self.shown >= self.every and self.calls < self.total:
            self.shown = now
            elapsed = now - self.started
            log.info(
                "permutation importance: %d/%d features, %.0f s elapsed, about %.0f s left",
                (self.calls - 1) // self.repeats,
                (self.total - 1) // self.repeats,
                elapsed,
                elapsed / self.calls * (self.total - self.calls),
            )
        return score


def predictions(
    x: pd.DataFrame, y_true: np.ndarray, labels: np.ndarray, proba: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """The test rows with truth, prediction and every class probability (kept for parity checks)."""
    import pandas as pd

    out = pd.DataFrame({"row": range(len(x)), "actual": y_true, "predicted": labels})
    for index, label in enumerate(classes):
        out[f"proba_{label}"] = proba[:, index]
    return out


def _one_vs_rest(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    if len(classes) == 2:
        return (y_true == classes[1]).astype(int), proba[:, 1]
    onehot = (np.asarray(y_true)[:, None] == np.asarray(classes)[None, :]).astype(int)
    return onehot.ravel(), proba.ravel()


def _thin(points: list[dict[str, float]]) -> list[dict[str, float]]:
    """At most MAX_CURVE_POINTS evenly spaced points, keeping both ends, so the files stay small."""
    if len(points) <= MAX_CURVE_POINTS:
        return points
    step = (len(points) - 1) / (MAX_CURVE_POINTS - 1)
    return [points[round(i * step)] for i in range(MAX_CURVE_POINTS)]


def _round(value: Any) -> Any:
    return round(float(value), DIGITS)
