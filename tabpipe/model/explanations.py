"""Exact per-row explanations: how much each column a user sends moved the trained pipeline's raw output.

For every row, `output` = `base` + the sum of `contributions` (to float precision), in the model's raw
units: log-odds for linear and boosted classifiers (of the positive, second class when binary; each
class's softmax score when multiclass), probability for a forest classifier (its trees average
probabilities), the value for a regressor (`log_value` for a Poisson, gamma or Tweedie boosting
objective, whose prediction is exp(raw)). Both precede a classifier's calibration and decision
threshold, which the model applies afterwards. A one-hot column's and a date part's contributions
are summed back to the column the request holds.

- linear models: c_j = w_j * (x_j - mean_j) on the transformed row, base = intercept + w . mean, the
  exact SHAP values for independent features. The mean is the training rows', which the refitted
  pipeline carries as `background_` (attached by tabpipe/model/training.py);
- LightGBM: its own exact TreeSHAP (`pred_contrib`);
- random forests, extra trees and histogram boosting: shap's TreeExplainer (exact path-dependent
  TreeSHAP on the final estimator: it takes no Pipeline), imported only for them.

The trained scikit-learn pipeline is explained, never the compiled ONNX graph: no tree contributions
exist inside ONNX, and both answer the same (tabpipe/model/conversion.py's agreement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.data import dates
from tabpipe.task.base import classes_of, rounded

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.data.schema import Schema

ATTRIBUTE = "background_"
# The final estimator's class: how its contributions are found. Every family in tabpipe/core/catalog.py
# has a line (tests/unit/test_explanations.py checks).
METHODS = {
    "LogisticRegression": "linear",
    "Ridge": "linear",
    "RandomForestClassifier": "forest",
    "ExtraTreesClassifier": "forest",
    "RandomForestRegressor": "forest",
    "HistGradientBoostingClassifier": "boosting",
    "HistGradientBoostingRegressor": "boosting",
    "LGBMClassifier": "lightgbm",
    "LGBMRegressor": "lightgbm",
}
# A boosted regressor with one of these objectives predicts exp(raw): its contributions add up to the log.
LOG_LINKS = frozenset({"poisson", "gamma", "tweedie"})


@dataclass(frozen=True)
class Explanation:
    """Rows explained in `units`: `output` (rows x outputs) = `base` (rows x outputs) + `contributions`
    (rows x columns x outputs) summed over `columns` (the request's). The outputs are `classes`' for a
    multiclass model, the positive class's alone for a binary one, and one value for a regressor."""

    units: str
    columns: list[str]
    classes: list[str]
    output: np.ndarray
    base: np.ndarray
    contributions: np.ndarray

    @property
    def keyed(self) -> bool:
        """Whether each row's numbers are keyed by class (a multiclass model)."""
        return len(self.classes) > 1


@dataclass(frozen=True)
class Explainer:
    """What explaining one model takes, worked out once (shap reads every tree, 36 ms for a 100-tree forest
    and 110 ms for 300 boosting iterations): build it when the model loads, then explain any rows."""

    model: Any
    method: str
    units: str
    columns: list[str]
    classes: list[str]
    member: np.ndarray  # transformed columns x request columns: 1 where the first comes from the second
    background: np.ndarray | None  # a linear model's training mean
    trees: Any  # shap's TreeExplainer, for a forest or histogram boosting


def attach(model: Any, features: np.ndarray) -> None:
    """The refitted pipeline carries its transformed training rows' mean, a list of floats: the linear
    method's reference row, which no request can supply (the compiled ONNX model never needs it)."""
    setattr(model, ATTRIBUTE, [float(v) for v in features.mean(axis=0)])


def explainer(model: Any, schema: Schema) -> Explainer:
    """The explainer of a trained pipeline (preprocessor, then a catalog family's estimator) of `schema`."""
    import numpy as np

    estimator = model[-1]
    method = METHODS.get(type(estimator).__name__)
    if method is None:
        known = ", ".join(METHODS)
        raise PipelineError(f"no exact explanation for {type(estimator).__name__}; explanations cover {known}")
    found, columns = sources(model[0], schema), schema.request_names
    member = np.zeros((len(found), len(columns)))
    member[np.arange(len(found)), [columns.index(c) for c in found]] = 1.0
    classes = classes_of(estimator)
    return Explainer(
        model=model,
        method=method,
        units=_units(method, estimator, classes),
        columns=columns,
        classes=classes[1:] if len(classes) == 2 else classes,
        member=member,
        background=_background(model, len(found)) if method == "linear" else None,
        trees=_trees(estimator) if method in ("forest", "boosting") else None,
    )


def explain(explainer: Explainer, x: pd.DataFrame) -> Explanation:
    """Each row of `x` (features as the pipeline takes them, date parts included) explained exactly."""
    return explain_transformed(explainer, explainer.model[:-1].transform(x))


def explain_transformed(explainer: Explainer, transformed: Any) -> Explanation:
    """Rows the pipeline's preprocessor has already transformed, explained exactly: the service gets them
    from the compiled graph (tabpipe/model/compiled.py), a hundred times faster than scikit-learn on a row."""
    import numpy as np

    model, method = explainer.model, explainer.method
    estimator, features = model[-1], np.asarray(transformed, dtype="float64")
    if method == "linear":
        output, base, each = _linear(estimator, features, explainer.background)
    elif method == "lightgbm":
        output, base, each = _lightgbm(estimator, features)
    else:
        output, base, each = _tree(estimator, features, method, explainer.trees)
    if output.shape[1] > max(len(explainer.classes), 1):  # a binary forest's two probabilities: the positive's
        output, base, each = output[:, 1:], base[:, 1:], each[:, :, 1:]
    return Explanation(
        units=explainer.units,
        columns=explainer.columns,
        classes=explainer.classes,
        output=output,
        base=base,
        contributions=np.einsum("rfk,fc->rck", each, explainer.member),
    )


def sources(preprocessor: Any, schema: Schema) -> list[str]:
    """The request column each of the fitted preprocessor's output columns comes from: a numeric
    column itself, a one-hot column its categorical column, a date part its date column."""
    parts = {dates.part_name(column, part): column for column, _ in schema.dates for part in dates.PARTS}
    found: list[str] = []
    for name, transformer, columns in preprocessor.transformers_:
        where = preprocessor.output_indices_[name]
        width = where.stop - where.start
        if not width:
            continue
        last = transformer[-1] if hasattr(transformer, "steps") else transformer
        if hasattr(last, "categories_"):
            names = [c for c, n in zip(columns, _encoded(last), strict=True) for _ in range(n)]
        else:
            names = [str(c) for c in transformer.get_feature_names_out(columns)]
        if len(names) != width:
            raise PipelineError(f"preprocessor part '{name}': {len(names)} columns traced back, {width} made")
        found += names
    return [parts.get(name, name) for name in found]


def as_json(explanation: Explanation) -> list[dict[str, Any]]:
    """Each row as the service answers it: `output`, `base` and `contributions` ({column: value}) as
    floats, each keyed by class first for a multiclass model."""
    columns, classes = explanation.columns, explanation.classes
    outputs, bases = explanation.output.tolist(), explanation.base.tolist()
    contributions = explanation.contributions.tolist()  # rows x columns x outputs
    if not explanation.keyed:
        return [
            {"output": o[0], "base": b[0], "contributions": {c: v[0] for c, v in zip(columns, row, strict=True)}}
            for o, b, row in zip(outputs, bases, contributions, strict=True)
        ]
    return [
        {
            "output": dict(zip(classes, o, strict=True)),
            "base": dict(zip(classes, b, strict=True)),
            "contributions": {
                label: {c: v[k] for c, v in zip(columns, row, strict=True)} for k, label in enumerate(classes)
            },
        }
        for o, b, row in zip(outputs, bases, contributions, strict=True)
    ]


def mean_absolute(explanation: Explanation) -> list[dict[str, Any]]:
    """Each request column's mean |contribution| over the rows (and the classes), largest first: which
    columns move this model's answers most, in its own units (metrics/plots/contributions.json)."""
    import numpy as np

    values = np.abs(explanation.contributions).mean(axis=(0, 2))
    rows = [{"feature": c, "contribution": rounded(v)} for c, v in zip(explanation.columns, values, strict=True)]
    return sorted(rows, key=lambda r: (-r["contribution"], r["feature"]))


def _background(model: Any, width: int) -> np.ndarray:
    import numpy as np

    mean = getattr(model, ATTRIBUTE, None)
    if mean is None or len(mean) != width:
        raise PipelineError("the model carries no training mean (background_) to explain it by: retrain it")
    return np.asarray(mean, dtype="float64")


def _linear(estimator: Any, features: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, ...]:
    """w_j * (x_j - mean_j) and intercept + w . mean, against the decision function (or a regressor's value)."""
    import numpy as np

    weights, intercept = np.atleast_2d(estimator.coef_), np.atleast_1d(estimator.intercept_)  # outputs x features
    raw = getattr(estimator, "decision_function", estimator.predict)(features)
    base = np.broadcast_to(intercept + weights @ mean, (len(features), len(intercept)))
    return _columns(raw, len(features)), base, (features - mean)[:, :, None] * weights.T[None]


def _lightgbm(estimator: Any, features: np.ndarray) -> tuple[np.ndarray, ...]:
    """LightGBM's exact TreeSHAP: per output, a block of one value per feature and the base last."""
    raw = _columns(estimator.predict(features, raw_score=True), len(features))
    blocks = estimator.predict(features, pred_contrib=True).reshape(len(features), raw.shape[1], -1)
    return raw, blocks[:, :, -1], blocks[:, :, :-1].transpose(0, 2, 1)


def _trees(estimator: Any) -> Any:
    import shap

    return shap.TreeExplainer(estimator, model_output="raw", feature_perturbation="tree_path_dependent")


def _tree(estimator: Any, features: np.ndarray, method: str, trees: Any) -> tuple[np.ndarray, ...]:
    """shap's exact path-dependent TreeSHAP, against what the trees sum: a forest's averaged probabilities
    (or values), histogram boosting's raw score (its private `_raw_predict`, the margin before any link)."""
    import numpy as np

    values = np.asarray(trees.shap_values(features, check_additivity=False), dtype="float64")
    each = values if values.ndim == 3 else values[:, :, None]
    base = np.broadcast_to(np.atleast_1d(trees.expected_value).astype("float64"), (len(features), each.shape[2]))
    if method == "boosting":
        raw = estimator._raw_predict(features)
    else:
        raw = estimator.predict_proba(features) if classes_of(estimator) else estimator.predict(features)
    return _columns(raw, len(features)), base, each


def _columns(raw: Any, rows: int) -> np.ndarray:
    import numpy as np

    return np.asarray(raw, dtype="float64").reshape(rows, -1)


def _encoded(encoder: Any) -> list[int]:
    """How many columns a fitted OneHotEncoder makes of each input: its categories, with the
    infrequent ones (`featurize.min_frequency`) sharing one."""
    rare = getattr(encoder, "infrequent_categories_", None) or [None] * len(encoder.categories_)
    return [len(c) - (0 if r is None else len(r) - 1) for c, r in zip(encoder.categories_, rare, strict=True)]


def _units(method: str, estimator: Any, classes: list[str]) -> str:
    if classes:
        return "probability" if method == "forest" else "log_odds"
    link = getattr(estimator, "objective_", None) or getattr(estimator, "loss", "")
    return "log_value" if str(link) in LOG_LINKS else "value"
