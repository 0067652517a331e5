"""The monitor's figures for Prometheus, as a textfile for node_exporter's textfile collector.

Thresholds are exported beside the values, so alert rules compare the two and params.yaml
stays the one place a threshold is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from tabpipe.core.settings import Monitor


def collect(
    values: dict[str, Any], settings: Monitor, model: dict[str, str], gated: dict[str, Any], when: float
) -> CollectorRegistry:
    """Every figure of one monitor run as gauges labelled with the served model's name and version.

    `gated` is the model's gated test metrics: a labelled metric's threshold is its gated value
    minus `monitor.max_metric_drop` (a floor), or plus `monitor.max_metric_rise` (a ceiling, for
    errors and costs), the same rules the monitor's retrain decision applies.
    """
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    labels = {"model": model["name"], "version": model["version"]}
    gauges: dict[str, Gauge] = {}

    def gauge(name: str, doc: str, value: float, **extra: str) -> None:
        if name not in gauges:
            gauges[name] = Gauge(name, doc, [*labels, *extra], registry=registry)
        gauges[name].labels(**labels, **extra).set(value)

    gauge("tabpipe_monitor_rows", "Rows in the monitored window", values["rows"])
    gauge("tabpipe_drift_share", "Share of features drifted in the window", values["drift_share"])
    gauge("tabpipe_drift_share_threshold", "monitor.drift.max_drifted_share", settings.drift.max_drifted_share)
    gauge(
        "tabpipe_important_features_drifted", "Drifted features among the most important", values["important_drifted"]
    )
    gauge("tabpipe_prediction_drift", "Distance of the predicted-class distribution", values["prediction_drift"])
    gauge("tabpipe_prediction_drift_threshold", "monitor.prediction_threshold", settings.prediction_threshold)
    for feature, score in values["feature_drift"].items():
        gauge("tabpipe_feature_drift_score", "Per-feature drift score (p-value or distance)", score, feature=feature)
    for feature, kinds in (values.get("unseen_values") or {}).items():
        for kind, count in kinds.items():
            gauge(
                "tabpipe_monitor_unseen_values",
                "Values in the window outside the schema's limits, by feature and kind",
                count,
                feature=feature,
                kind=kind,
            )
    for metric, value in (values.get("labelled") or {}).items():
        gauge("tabpipe_labelled_metric", "Metric on labelled traffic", value, metric=metric)
    for metric, drop in settings.max_metric_drop.items():
        if isinstance(gated.get(metric), int | float):
            gauge(
                "tabpipe_labelled_metric_threshold",
                "Gated test value minus monitor.max_metric_drop: below it, retraining is advised",
                round(float(gated[metric]) - drop, 6),
                metric=metric,
            )
    for metric, rise in settings.max_metric_rise.items():
        if isinstance(gated.get(metric), int | float):
            gauge(
                "tabpipe_labelled_metric_ceiling",
                "Gated test value plus monitor.max_metric_rise: above it, retraining is advised",
                round(float(gated[metric]) + rise, 6),
                metric=metric,
            )
    gauge("tabpipe_retrain_required", "1 when the monitor advises retraining", values["retrain"])
    gauge("tabpipe_monitor_last_run_timestamp_seconds", "When the monitor last ran", when)
    return registry


def write(path: Path, registry: CollectorRegistry) -> None:
    """Write the textfile atomically (prometheus_client renames a temporary file over it)."""
    from prometheus_client import write_to_textfile

    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
