"""Data drift between two frames, measured by Evidently with per-column methods from params.yaml.

Only the explicit drift tests here decide; Evidently's auto-generated preset tests (its +/-10%
summary bounds) fail on honest random splits, so they only decorate the HTML report.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabpipe.task import tasks

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.core.settings import Drift
    from tabpipe.data.schema import Schema


@dataclass(frozen=True)
class DriftResult:
    """Per-feature flags and scores, the drifted share of features, and the `extra` columns' own results."""

    drifted: dict[str, bool]
    scores: dict[str, float]
    share: float
    extra_drifted: dict[str, bool] = field(default_factory=dict)
    extra_scores: dict[str, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.drifted.values())


def load_evidently() -> None:
    """Import Evidently now: 4-7 s on a cold start, which a caller can report apart from the tests."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # before Evidently loads: no telemetry
    for module in ("evidently", "evidently.metrics", "evidently.presets", "evidently.tests"):
        importlib.import_module(module)


def measure(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: Schema,
    settings: Drift,
    *,
    summary: bool = False,
    extra: dict[str, float] | None = None,
) -> tuple[DriftResult, Any]:
    """Per-feature drift of `current` against `reference`; returns the result and Evidently's snapshot.

    With `summary`, the snapshot also holds a data summary of both frames, for a person to read.
    `extra` names further columns of both frames (the model's predictions) with their distance
    thresholds, reported apart from the features' share. They are read as the task reads its target:
    classes are tested with `cat_method`, a regressor's values with the normed Wasserstein distance,
    a distance on the same scale as the categorical ones.
    """
    load_evidently()
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift
    from evidently.presets import DataSummaryPreset
    from evidently.tests import lte

    features = schema.feature_names

    def method(name: str) -> tuple[str, float]:
        if schema.feature(name).kind == "numeric":
            return settings.num_method, settings.num_threshold
        return settings.cat_method, settings.cat_threshold

    per_column = {name: DriftedColumnsCount(columns=[name], **_kw(*method(name))) for name in features}
    scores = {name: ValueDrift(column=name, method=method(name)[0], threshold=method(name)[1]) for name in features}
    overall = DriftedColumnsCount(
        columns=features,
        num_method=settings.num_method,
        num_threshold=settings.num_threshold,
        cat_method=settings.cat_method,
        cat_threshold=settings.cat_threshold,
        share_tests=[lte(settings.max_drifted_share)],
    )
    extra = extra or {}
    read_as = tasks.of(schema.task).column_kind
    extra_method = "wasserstein" if read_as == "numerical" else settings.cat_method
    extra_flags = {name: DriftedColumnsCount(columns=[name], **_kw(extra_method, t)) for name, t in extra.items()}
    extra_scores = {name: ValueDrift(column=name, method=extra_method, threshold=t) for name, t in extra.items()}
    metrics: list[Any] = [
        overall,
        *per_column.values(),
        *scores.values(),
        *extra_flags.values(),
        *extra_scores.values(),
    ]
    columns = [c for c in (*features, *extra, schema.target) if c in current.columns and c in reference.columns]
    if summary:
        metrics.append(DataSummaryPreset(columns=columns, include_tests=True))
    # The target is in the summary only, read as its task reads it (a class is categorical), and so are the
    # predictions among `extra`.
    kinds = {"numerical": [*schema.numeric], "categorical": [*schema.categorical]}
    kinds[read_as] += [*extra, *([schema.target] if schema.target in columns else [])]
    definition = DataDefinition(
        numerical_columns=kinds["numerical"],
        categorical_columns=[c for c in kinds["categorical"] if c in columns],
    )
    snapshot = Report(metrics).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    result_of = snapshot.context.get_metric_result
    result = DriftResult(
        drifted={name: result_of(m).count.value > 0 for name, m in per_column.items()},
        scores={name: float(result_of(m).value) for name, m in scores.items()},
        share=float(result_of(overall).share.value),
        extra_drifted={name: result_of(m).count.value > 0 for name, m in extra_flags.items()},
        extra_scores={name: float(result_of(m).value) for name, m in extra_scores.items()},
    )
    return result, snapshot


def _kw(method: str, threshold: float) -> dict[str, Any]:
    return {"method": method, "threshold": threshold}
