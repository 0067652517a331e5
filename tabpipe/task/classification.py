"""Classification: the label is the argmax of the class probabilities, everywhere.

evaluate, the gate, the service and the monitor all predict through `Classification.predict` (or,
for request rows, `labels`), so served and evaluated predictions can be compared exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, get_args

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Metric
from tabpipe.core.text import as_text
from tabpipe.task.base import Predicted, Task, classes_of, resample_weights, rounded, thin

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def labels(proba: np.ndarray, classes: Any) -> np.ndarray:
    """The one prediction rule: each row's most probable class."""
    import numpy as np

    return np.asarray(classes)[proba.argmax(axis=1)]


class Classification(Task):
    name = "classification"
    metrics: ClassVar[tuple[str, ...]] = get_args(Metric)
    plots = ("roc", "pr")
    candidates = "train.candidates"
    estimator_type = "classifier"
    onnx_output = 1  # skl2onnx's classifiers give labels first, then probabilities
    column_kind = "categorical"
    predicts = "classes"
    paired_tests = ("bootstrap", "mcnemar")

    def coerce(self, values: pd.Series) -> pd.Series:
        return as_text(values)

    def learned(self, values: pd.Series) -> np.ndarray:
        return values.astype(str).to_numpy()

    def classes(self, values: pd.Series) -> tuple[str, ...]:
        return tuple(sorted(as_text(values).dropna().unique()))

    def check_split(self, target: pd.Series, train: pd.Series | None = None, test: pd.Series | None = None) -> None:
        """Two rows per class before; after, every class on both sides (an absent one can be neither
        learned nor evaluated)."""
        column = target.name
        if train is None or test is None:
            counts = target.value_counts()
            short = counts[counts < 2]
            if len(short):
                raise PipelineError(
                    f"column '{column}': class '{short.index[0]}' has only {int(short.iloc[0])} row; "
                    "a split needs 2 per class"
                )
            return
        for name, part in (("train", train), ("test", test)):
            missing = sorted(set(target.unique()) - set(part.unique()), key=str)
            if missing:
                count = int((target == missing[0]).sum())
                raise PipelineError(
                    f"column '{column}': class '{missing[0]}': none of its {count} rows fell in the {name} split; "
                    "each row's hash decides its split (docs/data.md): add rows of it, or change data.test_size"
                )

    def label_problems(
        self, values: pd.Series, classes: tuple[str, ...], examples: Callable[[pd.Series], str]
    ) -> list[tuple[str, str]]:
        present = values.dropna().astype(str)
        unknown = present[~present.isin(classes)]
        if not len(unknown):
            return []
        found = f"{len(unknown)} unknown labels, such as {examples(unknown)} (classes: {', '.join(classes)})"
        return [("unknown_labels", found)]

    def count_problems(self, values: pd.Series, classes: tuple[str, ...], min_rows: int) -> list[tuple[str, str]]:
        counts = values.astype(str).value_counts()
        return [
            (
                "min_rows_per_class",
                f"class '{label}' has {int(counts.get(label, 0))} rows, fewer than {min_rows} "
                "(validate.min_rows_per_class)",
            )
            for label in classes
            if int(counts.get(label, 0)) < min_rows
        ]

    def predict(self, model: Any, x: Any) -> Predicted:
        import numpy as np

        proba = np.asarray(model.predict_proba(x), dtype="float64")
        return Predicted(labels(proba, model.classes_), proba, classes_of(model))

    def output_names(self, classes: tuple[str, ...]) -> list[str]:
        return list(classes)

    def answered(self, answer: np.ndarray, model: Any) -> Predicted:
        return Predicted(labels(answer, model.classes_), answer, classes_of(model))

    def decode(self, answer: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        return labels(answer, classes)

    def estimator_tags(self) -> Any:
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags()
        )

    def score(self, metric: str, y: np.ndarray, predicted: Predicted) -> float:
        return score(metric, y, predicted.outputs, predicted.names)

    def sample_scores(self, metric: str, y: np.ndarray, predicted: Predicted, rows: np.ndarray) -> np.ndarray:
        return sample_scores(metric, y, predicted.outputs, predicted.names, rows)

    def measure(self, y: np.ndarray, predicted: Predicted) -> dict[str, Any]:
        """Every metric, the row count and per-class F1."""
        from sklearn.metrics import f1_score

        classes = predicted.names
        values: dict[str, Any] = {name: rounded(self.score(name, y, predicted)) for name in self.metrics}
        values["rows"] = len(y)
        per_class = f1_score(y, labels(predicted.outputs, classes), labels=classes, average=None, zero_division=0)
        values["f1_per_class"] = {label: rounded(f1) for label, f1 in zip(classes, per_class, strict=True)}
        return values

    def curves(self, y: np.ndarray, predicted: Predicted, seed: int) -> dict[str, list[dict[str, float]]]:
        return {"roc": roc_points(y, predicted), "pr": pr_points(y, predicted)}

    def table(self, y: np.ndarray, predicted: Predicted) -> pd.DataFrame:
        """Truth, prediction and every class probability."""
        import pandas as pd

        out = pd.DataFrame({"row": range(len(y)), "actual": y, "predicted": predicted.labels})
        for index, label in enumerate(predicted.names):
            out[f"proba_{label}"] = predicted.outputs[:, index]
        return out

    def confusion(self, y: np.ndarray, predicted: Predicted) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"actual": y, "predicted": predicted.labels})

    def agreement(self, reference: Any, compiled: Any, x: Any) -> dict[str, float]:
        return agreement(reference.predict_proba(x), compiled.predict_proba(x))

    def body(self, predicted: Predicted, model: dict[str, str], request_id: str | None) -> dict[str, Any]:
        """Each row's label and the probability of every class; `request_id` (when logged) lets ground
        truth be joined to the log later."""
        import numpy as np

        names = [str(c) for c in predicted.names]
        # Whole arrays to Python values at once: a 1,000-row answer in 0.75 ms instead of 2 (BENCHMARKS.md).
        proba = np.asarray(predicted.outputs, dtype="float64")
        if proba.shape[1:] != (len(names),):
            raise ValueError(f"the model gave {proba.shape[1:]} probabilities per row for {len(names)} classes")
        texts, rows = np.asarray(predicted.labels).astype(str).tolist(), proba.tolist()
        return {
            "model": model,
            "request_id": request_id,
            "predictions": [
                {"label": label, "probabilities": dict(zip(names, row, strict=False))}  # checked above
                for label, row in zip(texts, rows, strict=True)
            ],
        }

    def series(self, metrics: Any, buckets: list[float] | None) -> Any:
        return metrics.Counter(
            name="tabpipe_predictions", documentation="Rows predicted, by predicted class", labelnames=["label"]
        )

    def observe(self, series: Any, predicted: Predicted) -> None:
        """One increment per class, not per row: each is a lock and a write to the multiprocess file
        (a tenth of a worker's time on 1,000-row requests, counted one by one)."""
        for label, count in Counter(str(label) for label in predicted.labels).items():
            series.labels(label=label).inc(count)


def score(metric: str, y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    """One metric, computed alone (the gate's bootstrap calls this thousands of times).

    ROC AUC is one-vs-rest macro for multiclass and of the second class for binary.
    """
    from sklearn import metrics as m

    known = Classification.metrics
    if metric not in known:
        raise ValueError(f"unknown metric '{metric}', expected one of {', '.join(known)}")
    if metric == "roc_auc":
        if len(classes) == 2:
            return float(m.roc_auc_score(y_true == classes[1], proba[:, 1]))
        return float(m.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes))
    if metric == "log_loss":
        return float(m.log_loss(y_true, proba, labels=classes))
    predicted = labels(proba, classes)
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, predicted))
    if metric == "balanced_accuracy":
        return float(m.balanced_accuracy_score(y_true, predicted))
    average = {"labels": classes, "average": "macro", "zero_division": 0}
    scorer = {"precision_macro": m.precision_score, "recall_macro": m.recall_score, "f1_macro": m.f1_score}[metric]
    return float(scorer(y_true, predicted, **average))


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
        right = labels(proba, classes) == y_true
        return weights @ right / n
    if len(classes) == 2:
        return _weighted_auc(weights, y_true == classes[1], proba[:, 1])
    per_class = [_weighted_auc(weights, y_true == label, proba[:, i]) for i, label in enumerate(classes)]
    return np.mean(per_class, axis=0)


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


def roc_points(y_true: np.ndarray, predicted: Predicted) -> list[dict[str, float]]:
    """ROC of the positive class (binary) or micro-averaged over classes (multiclass)."""
    from sklearn.metrics import roc_curve

    truth, score = _one_vs_rest(y_true, predicted.outputs, predicted.names)
    fpr, tpr, _ = roc_curve(truth, score)
    return thin([{"fpr": rounded(f), "tpr": rounded(t)} for f, t in zip(fpr, tpr, strict=True)])


def pr_points(y_true: np.ndarray, predicted: Predicted) -> list[dict[str, float]]:
    """Precision-recall of the positive class (binary) or micro-averaged (multiclass)."""
    from sklearn.metrics import precision_recall_curve

    truth, score = _one_vs_rest(y_true, predicted.outputs, predicted.names)
    precision, recall, _ = precision_recall_curve(truth, score)
    points = [{"recall": rounded(r), "precision": rounded(p)} for p, r in zip(precision, recall, strict=True)]
    return thin(points[::-1])


def _one_vs_rest(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    if len(classes) == 2:
        return (y_true == classes[1]).astype(int), proba[:, 1]
    onehot = (np.asarray(y_true)[:, None] == np.asarray(classes)[None, :]).astype(int)
    return onehot.ravel(), proba.ravel()


def agreement(reference: np.ndarray, compiled: np.ndarray) -> dict[str, float]:
    """How far the compiled model's probabilities are from the pipeline's, on the same rows.

    Labels can differ only on near-ties: where the pipeline's two top classes are closer than twice
    the largest probability difference (a forest's 25 votes against 25, summed in float32).
    """
    import numpy as np

    same = reference.argmax(axis=1) == compiled.argmax(axis=1)
    difference = float(np.abs(reference - compiled).max()) if len(reference) else 0.0
    return {
        "label_agreement": round(float(same.mean()), 6) if len(reference) else 1.0,
        "label_disagreements": int((~same).sum()),
        # Twelve decimals: float64 noise (1e-16, which differs between CPUs) rounds away, float32's stays.
        "max_probability_difference": round(difference, 12),
    }
