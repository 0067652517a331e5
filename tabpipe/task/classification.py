"""Classification: the label is the argmax of the class probabilities, or a binary decision's threshold.

evaluate, the gate, the service and the monitor all predict through `Classification.predict` (or,
for request rows, `answered`), and every label comes from `labels`, so served and evaluated
predictions can be compared exactly. A decision (params.yaml `decision`) is chosen on the winner's
out-of-fold probabilities and travels inside the model as `decision_`, as a regressor's interval does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, get_args

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import DecisionMetric, Metric
from tabpipe.core.text import as_text
from tabpipe.task import calibration
from tabpipe.task.base import Predicted, Task, Winner, classes_of, resample_weights, rounded, thin

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.core.settings import Decision as DecisionRule


ECE_BINS = 15  # the expected calibration error's equal-width bins of [0, 1] (docs/training.md)
THRESHOLDS = tuple(round(i / 1000, 3) for i in range(1, 1000))  # the grid a decision's threshold is chosen on


@dataclass(frozen=True)
class Decision:
    """How labels follow from probabilities: `positive` when its probability reaches `threshold` (None:
    the most probable class), and what each mistake costs (None: unset). `cv_value` is the objective's
    cross-validated value at the threshold."""

    objective: str
    positive: str
    threshold: float | None
    false_positive: float | None = None
    false_negative: float | None = None
    cv_value: float | None = None

    @property
    def costs(self) -> tuple[float, float] | None:
        if self.false_positive is None or self.false_negative is None:
            return None
        return self.false_positive, self.false_negative


def decision_of(model: Any) -> Decision | None:
    """The decision a fitted classifier carries (`decision_`, a dict), or None (argmax, no costs)."""
    found = getattr(model, "decision_", None)
    return Decision(**found) if found else None


def labels(proba: np.ndarray, classes: Any, decision: Decision | None = None) -> np.ndarray:
    """The one prediction rule: each row's most probable class, or with a decision's threshold the
    positive class wherever its probability reaches the threshold, else the other class."""
    import numpy as np

    classes = np.asarray(classes)
    if decision is None or decision.threshold is None:
        return classes[proba.argmax(axis=1)]
    positive = [str(c) for c in classes].index(decision.positive)
    return np.where(proba[:, positive] >= decision.threshold, classes[positive], classes[1 - positive])


def positive_class(declared: str, y: Any) -> str:
    """`decision.positive_class`, or when empty the less frequent class (ties: the later name)."""
    import pandas as pd

    counts = pd.Series(y).astype(str).value_counts()
    if declared:
        if declared not in counts.index:
            known = ", ".join(sorted(counts.index))
            raise PipelineError(f"params.yaml: decision.positive_class '{declared}' is not a class ({known})")
        return declared
    return min(reversed(sorted(counts.index)), key=lambda name: counts[name])


def objective_values(
    objective: str, positive: np.ndarray, score: np.ndarray, costs: tuple[float, float] | None
) -> np.ndarray:
    """The objective at each threshold of THRESHOLDS, predicting positive where `score` reaches it:
    expected cost per row (smaller is better), or F1 of the positive class or balanced accuracy."""
    import numpy as np

    grid = np.asarray(THRESHOLDS)
    positive = np.asarray(positive, dtype=bool)
    above = lambda scores: len(scores) - np.searchsorted(np.sort(scores), grid, side="left")  # noqa: E731
    tp, fp = above(score[positive]), above(score[~positive])
    fn, tn = positive.sum() - tp, (~positive).sum() - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        if objective == "cost":
            false_positive, false_negative = costs
            return (fp * false_positive + fn * false_negative) / len(score)
        if objective == "f1":
            return np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        if objective == "balanced_accuracy":
            recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
            specificity = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
            return (recall + specificity) / 2
    raise ValueError(f"unknown objective '{objective}'")


def choose_threshold(
    objective: str, positive: np.ndarray, score: np.ndarray, costs: tuple[float, float] | None
) -> tuple[float, float]:
    """(threshold, the objective there): the best on THRESHOLDS; of tied thresholds, the middle one."""
    import numpy as np

    values = objective_values(objective, positive, score, costs)
    best = values.min() if objective == "cost" else values.max()
    tied = np.flatnonzero(values == best)
    return THRESHOLDS[int(tied[(len(tied) - 1) // 2])], float(best)


class Classification(Task):
    name = "classification"
    metrics: ClassVar[tuple[str, ...]] = get_args(Metric)
    plots = ("roc", "pr", "decision", "reliability", "cost")
    candidates = "train.candidates"
    estimator_type = "classifier"
    onnx_output = 1  # skl2onnx's classifiers give labels first, then probabilities
    column_kind = "categorical"
    predicts = "classes"
    paired_tests = ("bootstrap", "mcnemar")
    weighs_classes = True
    calibrates = True

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

        return self.answered(np.asarray(model.predict_proba(x), dtype="float64"), model)

    def output_names(self, classes: tuple[str, ...]) -> list[str]:
        return list(classes)

    def answered(self, answer: np.ndarray, model: Any) -> Predicted:
        """The model's probabilities through its calibration (when it carries one), and its decision's labels."""
        decision, proba = decision_of(model), calibration.apply(answer, getattr(model, "calibration_", None))
        return Predicted(labels(proba, model.classes_, decision), proba, classes_of(model), decision=decision)

    def decode(self, answer: np.ndarray, model: Any) -> np.ndarray:
        return self.answered(answer, model).labels

    def logged(self, labels: np.ndarray, outputs: np.ndarray, names: list[str], model: Any) -> Predicted:
        """The served labels were decided by the served model's rule: its metrics on the log are too."""
        return Predicted(labels, outputs, names, decision=decision_of(model))

    def estimator_tags(self) -> Any:
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags()
        )

    def score(self, metric: str, y: np.ndarray, predicted: Predicted) -> float:
        return score(metric, y, predicted.outputs, predicted.names, predicted.decision)

    def sample_scores(self, metric: str, y: np.ndarray, predicted: Predicted, rows: np.ndarray) -> np.ndarray:
        return sample_scores(metric, y, predicted.outputs, predicted.names, rows, predicted.decision)

    def measure(self, y: np.ndarray, predicted: Predicted) -> dict[str, Any]:
        """Every metric, the row count and per-class F1; with a decision, its threshold and the positive
        class's precision, recall and F1 there, and with costs the expected cost per row there and at argmax."""
        from sklearn.metrics import f1_score

        classes = predicted.names
        values: dict[str, Any] = {name: rounded(self.score(name, y, predicted)) for name in self.metrics}
        values["rows"] = len(y)
        per_class = f1_score(y, predicted.labels, labels=classes, average=None, zero_division=0)
        values["f1_per_class"] = {label: rounded(f1) for label, f1 in zip(classes, per_class, strict=True)}
        decision = predicted.decision
        if decision is not None:  # numbers only: every metric reaches MLflow (the rule itself is in train.json)
            if decision.threshold is not None:
                values["threshold"] = decision.threshold
            for name in ("precision_positive", "recall_positive", "f1_positive"):
                values[name] = rounded(self.score(name, y, predicted))
            if decision.costs:
                values["expected_cost"] = rounded(self.score("expected_cost", y, predicted))
                argmax = replace(decision, threshold=None)
                values["expected_cost_argmax"] = rounded(score("expected_cost", y, predicted.outputs, classes, argmax))
        return values

    def curves(self, y: np.ndarray, predicted: Predicted, seed: int) -> dict[str, list[dict[str, float]]]:
        return {
            "roc": roc_points(y, predicted),
            "pr": pr_points(y, predicted),
            "decision": decision_point(y, predicted),
            "reliability": reliability_points(y, predicted),
            "cost": cost_points(y, predicted),
        }

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
        """The two models' labels (each by its own decision) and probabilities on the same rows."""
        return agreement(self.predict(reference, x), self.predict(compiled, x))

    def check(self, decision: DecisionRule, y: Any) -> None:
        """A named positive class must be a class, and a threshold needs two classes."""
        import pandas as pd

        positive_class(decision.positive_class, y)
        found = pd.Series(y).nunique()
        if decision.objective != "argmax" and found != 2:
            raise PipelineError(
                f"params.yaml: decision.objective {decision.objective} is binary only; the target has {found} "
                "classes (use argmax)"
            )

    def finishing(self, winner: Winner) -> str | None:
        steps = [
            *([f"{winner.settings.calibration} calibration"] if winner.settings.calibration != "none" else []),
            *([f"the {winner.decision.objective} threshold"] if winner.decision.objective != "argmax" else []),
        ]
        if not steps:
            return None
        return f"fitting {' and '.join(steps)} on {winner.name}'s {winner.settings.cv_folds}-fold probabilities"

    def finish(self, model: Any, winner: Winner) -> None:
        """Calibration, then the decision, both from the winner's out-of-fold probabilities (never the
        test rows): the map first, then a threshold on the mapped probabilities, and the costs. Nothing
        at all without calibration, a threshold or costs, so the model stays as it was."""
        import numpy as np
        from sklearn.model_selection import cross_val_predict

        decision, y, method = winner.decision, winner.y, winner.settings.calibration
        thresholded = decision.objective != "argmax"
        if method != "none" or thresholded:
            proba = cross_val_predict(
                winner.unfitted, winner.x, y, cv=winner.folds, method="predict_proba", n_jobs=winner.settings.n_jobs
            )
        if method != "none":
            classes = classes_of(model)
            fitted = calibration.fit(method, proba, y, classes)
            mapped = calibration.apply(proba, fitted)
            model.calibration_ = fitted | {"out_of_fold": calibration_evidence(np.asarray(y), proba, mapped, classes)}
            proba = mapped
        if not thresholded and not decision.cost.set:
            return
        positive = positive_class(decision.positive_class, y)
        chosen = Decision(
            decision.objective, positive, None, decision.cost.false_positive, decision.cost.false_negative
        )
        if thresholded:
            index = classes_of(model).index(positive)
            truth = np.asarray(y).astype(str) == positive
            threshold, value = choose_threshold(decision.objective, truth, proba[:, index], chosen.costs)
            chosen = replace(chosen, threshold=threshold, cv_value=rounded(value))
        model.decision_ = asdict(chosen)

    def window_metrics(self, truth: np.ndarray, predicted: Predicted) -> dict[str, float]:
        """evaluate's metrics on the labelled rows and, under a decision, its positive class's metrics,
        the share of rows it decided positive, and with costs its expected cost per row."""
        found = super().window_metrics(truth, predicted)
        decision = predicted.decision
        if decision is None:
            return found
        found["positive_rate"] = positive_rates(truth, predicted.labels, decision.positive)["positive_rate"]
        names = ["precision_positive", "recall_positive", "f1_positive"] + (["expected_cost"] if decision.costs else [])
        return found | {name: rounded(self.score(name, truth, predicted)) for name in names}

    def slice_metrics(self, truth: np.ndarray, predicted: Predicted, everyone: np.ndarray) -> dict[str, float]:
        """The window's metrics and, for two classes, the rates fairness compares at the served labels:
        how often the positive class (the decision's, else the whole test set's less frequent class)
        is predicted, and the true and false positive rates (each left out where it has no rows)."""
        found = self.window_metrics(truth, predicted)
        if len(predicted.names) != 2:
            return found
        positive = predicted.decision.positive if predicted.decision else positive_class("", everyone)
        return found | positive_rates(truth, predicted.labels, positive)

    def judged_like(self, champion: Predicted, candidate: Predicted) -> Predicted:
        """The champion decides by its own threshold, and its mistakes cost what the candidate's do, so
        expected cost compares the two decisions at one price."""
        ours = candidate.decision
        if ours is None or ours.costs is None:
            return champion
        theirs = champion.decision or Decision("argmax", ours.positive, None)
        return replace(
            champion, decision=replace(theirs, false_positive=ours.false_positive, false_negative=ours.false_negative)
        )

    def carried(self, model: Any) -> dict[str, Any]:
        found = {name: getattr(model, f"{name}_", None) for name in ("decision", "calibration")}
        return {name: value for name, value in found.items() if value}

    def reported(self, model: Any) -> dict[str, Any]:
        """The calibration's method and its out-of-fold evidence, without its map (the model keeps that)."""
        found = self.carried(model)
        if "calibration" in found:
            found["calibration"] = {k: v for k, v in found["calibration"].items() if k != "maps"}
        return found

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


def score(
    metric: str, y_true: np.ndarray, proba: np.ndarray, classes: list[str], decision: Decision | None = None
) -> float:
    """One metric, computed alone (the gate's bootstrap calls this thousands of times), on the labels
    `decision` gives (argmax without one).

    ROC AUC is one-vs-rest macro for multiclass and of the second class for binary. The decision's
    metrics (DecisionMetric) are of its positive class, and expected cost is per row.
    """
    import numpy as np
    from sklearn import metrics as m

    known = (*Classification.metrics, *get_args(DecisionMetric))
    if metric not in known:
        raise ValueError(f"unknown metric '{metric}', expected one of {', '.join(known)}")
    if metric == "roc_auc":
        if len(classes) == 2:
            return float(m.roc_auc_score(y_true == classes[1], proba[:, 1]))
        return float(m.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes))
    if metric == "log_loss":
        return float(m.log_loss(y_true, proba, labels=classes))
    if metric == "brier":
        return float(m.brier_score_loss(y_true, proba, labels=classes))
    if metric == "ece":
        return expected_calibration_error(y_true, proba, classes, decision)
    predicted = labels(proba, classes, decision)
    if metric in get_args(DecisionMetric):
        return decision_score(metric, np.asarray(y_true) == decision.positive, predicted == decision.positive, decision)
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, predicted))
    if metric == "balanced_accuracy":
        return float(m.balanced_accuracy_score(y_true, predicted))
    average = {"labels": classes, "average": "macro", "zero_division": 0}
    scorer = {"precision_macro": m.precision_score, "recall_macro": m.recall_score, "f1_macro": m.f1_score}[metric]
    return float(scorer(y_true, predicted, **average))


def sample_scores(
    metric: str,
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    rows: np.ndarray,
    decision: Decision | None = None,
) -> np.ndarray:
    """The metric on each resample of the test set (one per row of `rows`, row indices drawn with replacement).

    ROC AUC and accuracy are computed for all resamples at once, as weighted statistics over the
    original rows (a resample weights each row by how often it was drawn): the gate's bootstrap
    takes milliseconds instead of seconds. Other metrics are computed one resample at a time.
    A resample holding a single class has no ROC AUC: NaN.
    """
    import numpy as np

    if metric not in ("roc_auc", "accuracy"):
        return np.array([score(metric, y_true[r], proba[r], classes, decision) for r in rows])
    n = len(y_true)
    weights = resample_weights(rows, n)
    if metric == "accuracy":
        right = labels(proba, classes, decision) == y_true
        return weights @ right / n
    if len(classes) == 2:
        return _weighted_auc(weights, y_true == classes[1], proba[:, 1])
    per_class = [_weighted_auc(weights, y_true == label, proba[:, i]) for i, label in enumerate(classes)]
    return np.mean(per_class, axis=0)


def decision_score(metric: str, truth: np.ndarray, chosen: np.ndarray, decision: Decision) -> float:
    """Precision, recall or F1 of the positive class (`truth`, `chosen`: positive or not per row), or the
    expected cost per row of `decision`'s costs."""
    tp, fp, fn = int((truth & chosen).sum()), int((~truth & chosen).sum()), int((truth & ~chosen).sum())
    if metric == "expected_cost":
        if decision.costs is None:
            raise ValueError("expected_cost needs decision.cost.false_positive and false_negative")
        false_positive, false_negative = decision.costs
        return (fp * false_positive + fn * false_negative) / len(truth) if len(truth) else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    if metric == "precision_positive":
        return precision
    if metric == "recall_positive":
        return recall
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def expected_calibration_error(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], decision: Decision | None = None
) -> float:
    """The gap between confidence and frequency, averaged over ECE_BINS equal-width bins weighted by their
    rows. Binary: the positive class's probability (the decision's, else the second class) against how
    often it is the truth; multiclass: the top class's probability against how often it is right."""
    import numpy as np

    rows, confidence, frequency = reliability(y_true, proba, classes, decision)
    return float(np.sum(rows * np.abs(frequency - confidence)) / rows.sum()) if rows.sum() else 0.0


def reliability(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], decision: Decision | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of ECE_BINS that holds rows: (rows, mean probability, how often it was so), of the positive
    class's probability for a binary task and of the top class's for a multiclass one."""
    import numpy as np

    y_true = np.asarray(y_true)
    if len(classes) == 2:
        index = classes.index(decision.positive) if decision else 1
        confidence, hit = proba[:, index], y_true == classes[index]
    else:
        confidence, hit = proba.max(axis=1), labels(proba, classes) == y_true
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    rows = np.bincount(bins, minlength=ECE_BINS).astype(float)
    held = rows > 0
    sums = np.bincount(bins, confidence, ECE_BINS), np.bincount(bins, hit.astype(float), ECE_BINS)
    return rows[held], sums[0][held] / rows[held], sums[1][held] / rows[held]


def reliability_points(y_true: np.ndarray, predicted: Predicted) -> list[dict[str, float]]:
    """The reliability diagram's points: each bin's mean probability against how often it was so."""
    rows, confidence, frequency = reliability(y_true, predicted.outputs, predicted.names, predicted.decision)
    return [
        {"probability": rounded(c), "frequency": rounded(f), "rows": int(n)}
        for n, c, f in zip(rows, confidence, frequency, strict=True)
    ]


def cost_points(y_true: np.ndarray, predicted: Predicted) -> list[dict[str, float]]:
    """The expected cost per test row at every hundredth threshold, when the decision has costs (else none)."""
    import numpy as np

    decision = predicted.decision
    if decision is None or decision.costs is None:
        return []
    index = predicted.names.index(decision.positive)
    truth = np.asarray(y_true) == decision.positive
    values = objective_values("cost", truth, predicted.outputs[:, index], decision.costs)
    return [{"threshold": t, "expected_cost": rounded(v)} for t, v in zip(THRESHOLDS, values, strict=True)][9::10]


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


def positive_rates(truth: np.ndarray, labels: np.ndarray, positive: str) -> dict[str, float]:
    """How often `positive` was predicted, and the true and false positive rates (each left out where
    the rows hold no such truth)."""
    import numpy as np

    said = np.asarray(labels).astype(str) == positive
    actual = np.asarray(truth).astype(str) == positive
    found = {"positive_rate": rounded(float(said.mean()))}
    if actual.any():
        found["true_positive_rate"] = rounded(float(said[actual].mean()))
    if (~actual).any():
        found["false_positive_rate"] = rounded(float(said[~actual].mean()))
    return found


def calibration_evidence(y: np.ndarray, raw: np.ndarray, mapped: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Brier score and ECE of the out-of-fold probabilities before and after the map: whether it helped."""
    return {
        f"{metric}_{when}": rounded(score(metric, y.astype(str), proba, classes))
        for metric in ("brier", "ece")
        for when, proba in (("before", raw), ("after", mapped))
    }


def decision_point(y_true: np.ndarray, predicted: Predicted) -> list[dict[str, float]]:
    """The point the decision's threshold chose on the precision-recall curve (of its positive class),
    marked on that plot; none without a threshold."""
    decision = predicted.decision
    if decision is None or decision.threshold is None:
        return []
    recall, precision = (
        score(name, y_true, predicted.outputs, predicted.names, decision)
        for name in ("recall_positive", "precision_positive")
    )
    return [{"recall": rounded(recall), "precision": rounded(precision), "threshold": decision.threshold}]


def _one_vs_rest(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    if len(classes) == 2:
        return (y_true == classes[1]).astype(int), proba[:, 1]
    onehot = (np.asarray(y_true)[:, None] == np.asarray(classes)[None, :]).astype(int)
    return onehot.ravel(), proba.ravel()


def agreement(reference: Predicted, compiled: Predicted) -> dict[str, float]:
    """How far the compiled model's labels and probabilities are from the pipeline's, on the same rows.

    Labels can differ only on near-ties: where the pipeline's two top classes (or its probability and
    a decision's threshold) are closer than the largest probability difference (a forest's 25 votes
    against 25, summed in float32).
    """
    import numpy as np

    same = np.asarray(reference.labels).astype(str) == np.asarray(compiled.labels).astype(str)
    difference = float(np.abs(reference.outputs - compiled.outputs).max()) if len(same) else 0.0
    return {
        "label_agreement": round(float(same.mean()), 6) if len(same) else 1.0,
        "label_disagreements": int((~same).sum()),
        # Twelve decimals: float64 noise (1e-16, which differs between CPUs) rounds away, float32's stays.
        "max_probability_difference": round(difference, 12),
    }
