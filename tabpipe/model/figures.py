"""Images for people (logged to MLflow): the confusion matrix and curves, or a regressor's scatter plots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure


def confusion(y_true: np.ndarray, labels: np.ndarray, classes: list[str]) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.metrics import ConfusionMatrixDisplay

    display = ConfusionMatrixDisplay.from_predictions(y_true, labels, labels=classes, colorbar=False)
    display.ax_.set_title("Confusion matrix (test set)")
    display.figure_.tight_layout()
    return display.figure_


def curve(points: list[dict[str, Any]], x: str, y: str, title: str, marked: list[dict[str, Any]]) -> Figure:
    """A curve, with `marked` points on it (the decision's on the precision-recall curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([p[x] for p in points], [p[y] for p in points])
    for point in marked:
        axes.plot(point[x], point[y], "o", color="crimson", label=f"threshold {point['threshold']}")
    if marked:
        axes.legend(loc="lower left")
    axes.set(xlabel=x, ylabel=y, title=title, xlim=(0, 1), ylim=(0, 1.02))
    figure.tight_layout()
    return figure


def scatter(points: list[dict[str, Any]], x: str, y: str, title: str, *, diagonal: bool) -> Figure:
    """Points: a regressor's predicted against actual, or a reliability diagram's bins (each with the
    diagonal where the two are equal), or a regressor's residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    xs, ys = [p[x] for p in points], [p[y] for p in points]
    axes.scatter(xs, ys, s=4, alpha=0.5)
    if points:
        ends = [min(xs + ys), max(xs + ys)] if diagonal else [min(xs), max(xs)]
        axes.plot(ends, ends if diagonal else [0, 0], color="grey", linewidth=1)
    axes.set(xlabel=x, ylabel=y, title=title)
    figure.tight_layout()
    return figure


# Each plot file's figure in MLflow: (file name, x, y, title), and for a scatter whether it draws y = x.
# The decision's point has none of its own: it is marked on the precision-recall curve.
PLOT_FIGURES: dict[str, tuple[str, str, str, str, bool | None]] = {
    "roc": ("roc_curve.png", "fpr", "tpr", "ROC (test set)", None),
    "pr": ("pr_curve.png", "recall", "precision", "Precision-recall (test set)", None),
    "reliability": ("reliability.png", "probability", "frequency", "Reliability (test set)", True),
    "cost": ("expected_cost.png", "threshold", "expected_cost", "Expected cost per row (test set)", None),
    "actual": ("predicted_vs_actual.png", "actual", "predicted", "Predicted (test set)", True),
    "residuals": ("residuals.png", "predicted", "residual", "Residuals (test set)", False),
}


def of_plot(plot: str, curves: dict[str, list[dict[str, Any]]]) -> tuple[str, Figure]:
    """The figure for one of evaluate's plot files (`curves` holds them all), and its file name: a
    curve, or a scatter."""
    name, x, y, title, diagonal = PLOT_FIGURES[plot]
    points = curves[plot]
    if diagonal is None:
        return name, curve(points, x, y, title, curves.get("decision", []) if plot == "pr" else [])
    return name, scatter(points, x, y, title, diagonal=diagonal)
