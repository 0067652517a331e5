"""The monitor's figures in Prometheus' text format, for node_exporter's textfile collector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tabpipe.core.settings import Monitor


def text(values: dict[str, Any], settings: Monitor, model: dict[str, str], when: float) -> str:
    """The monitor's figures in Prometheus' text format, for node_exporter's textfile collector.

    Thresholds are exported beside the values, so alert rules compare the two and params.yaml
    stays the one place a threshold is set.
    """
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    labels = {"model": model["name"], "version": model["version"]}

    def gauge(name: str, doc: str, value: float, **extra: str) -> None:
        names = [*labels, *extra]
        metric = gauges.get(name) or Gauge(name, doc, names, registry=registry)
        gauges[name] = metric
        metric.labels(**labels, **extra).set(value)

    gauges: dict[str, Any] = {}
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
    for metric, value in (values.get("labelled") or {}).items():
        gauge("tabpipe_labelled_metric", "Metric on labelled traffic", value, metric=metric)
    gauge("tabpipe_retrain_required", "1 when the monitor advises retraining", values["retrain"])
    gauge("tabpipe_monitor_last_run_timestamp_seconds", "When the monitor last ran", when)
    return generate_latest(registry).decode()
