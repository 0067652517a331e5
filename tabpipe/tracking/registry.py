"""The MLflow model registry: find the champion, register a gated model, move the aliases.

Aliases, not stages (deprecated): `champion` is what serves; `previous` keeps the one it replaced.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from tabpipe.core.errors import PipelineError
from tabpipe.tracking import backend
from tabpipe.tracking.keys import MODEL_HASH_TAG, flatten, metric_key
from tabpipe.tracking.runs import logged_model_of, run_for_model, run_tags

CHAMPION, PREVIOUS = "champion", "previous"


@dataclass(frozen=True)
class Champion:
    name: str
    version: str
    model_sha256: str
    model_uri: str


def model_name(prefix: str, dataset: str) -> str:
    return f"{prefix}-{dataset}"


def champion(name: str) -> Champion | None:
    """The version holding the `champion` alias, or None before the first release."""
    from mlflow.exceptions import MlflowException

    try:
        version = backend.client().get_model_version_by_alias(name, CHAMPION)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise backend.unreachable(error) from None
    # Pinned to the version read here: the alias may move (a queued experiment's package) before it loads.
    return Champion(
        name, str(version.version), version.tags.get(MODEL_HASH_TAG, ""), f"models:/{name}/{version.version}"
    )


def load(champion: Champion) -> Any:
    import mlflow

    backend.connect()
    return mlflow.sklearn.load_model(champion.model_uri)


def challenger(name: str, model_sha256: str) -> tuple[Champion | None, Any | None]:
    """The serving champion, and its model loaded when it is not this very model file (else None)."""
    current = champion(name)
    if current is None or current.model_sha256 == model_sha256:
        return current, None
    return current, load(current)


def release(name: str, model_sha256: str, tags: dict[str, str]) -> str:
    """Register the winner's logged model as a new version and make it champion; returns the version.

    Idempotent: when the champion already is this exact model file, nothing changes.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    current = champion(name)
    if current and current.model_sha256 == model_sha256:
        return current.version
    run_id = run_for_model(model_sha256)
    if run_id is None:
        raise PipelineError(
            f"MLflow store {backend.tracking_uri()}: no run holds this model; rerun `dvc repro -f -s train`"
        )
    backend.connect()
    try:
        model_id = logged_model_of(run_id)
        if model_id is None:
            raise PipelineError(f"MLflow run {run_id} has no logged model; rerun `dvc repro -f -s train`")
        version = mlflow.register_model(f"models:/{model_id}", name, tags={**tags, MODEL_HASH_TAG: model_sha256})
        registry = backend.client()
        if current:
            registry.set_registered_model_alias(name, PREVIOUS, current.version)
        registry.set_registered_model_alias(name, CHAMPION, str(version.version))
    except MlflowException as error:
        raise backend.unreachable(error) from None
    return str(version.version)


def version_metrics(name: str, version: str) -> dict[str, float]:
    """A registered version's gated metrics, read back from its `metric.*` tags (for "was ... before")."""
    from mlflow.exceptions import MlflowException

    try:
        tags = backend.client().get_model_version(name, version).tags
    except MlflowException as error:
        raise backend.unreachable(error) from None
    found = {}
    for key, value in tags.items():
        if key.startswith("metric."):
            with contextlib.suppress(ValueError):
                found[key.removeprefix("metric.")] = float(value)
    return found


def metric_tags(metrics: dict[str, Any]) -> dict[str, str]:
    """The gated test metrics as version tags (`metric.roc_auc`, ...)."""
    return {f"metric.{metric_key(key)}": str(value) for key, value in flatten(metrics).items()}


def release_gated(
    prefix: str, dataset: str, model_sha256: str, metrics: dict[str, Any], params_digest: str, served: dict[str, str]
) -> tuple[str, str]:
    """Register the gated model as `<prefix>-<dataset>`, tagged with its run tags, metrics and what
    serves it (`served.runtime`, `served.sha256`, `served.model_id`); (name, version)."""
    name = model_name(prefix, dataset)
    tags = {**run_tags(dataset, params_digest), **metric_tags(metrics), **{f"served.{k}": v for k, v in served.items()}}
    return name, release(name, model_sha256, tags)
