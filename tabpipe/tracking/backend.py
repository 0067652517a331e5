"""Where MLflow runs go, and the one line a person reads when that store cannot be used.

The default store is `mlflow.db` + `mlruns/` at the repository root. Under `dvc exp run --temp`
or `--queue` a stage runs in a copy under .dvc/tmp/exps/, so a store relative to the current
directory would vanish with the copy: the root comes from DVC_ROOT, which DVC points at the real
repository. MLFLOW_TRACKING_URI (a team's server) overrides all of this.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tabpipe.core.errors import PipelineError

# Telemetry off, and fail fast when a tracking server is down instead of MLflow's minutes of retries.
CLIENT_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def repository_root() -> Path:
    root = os.environ.get("DVC_ROOT")
    return Path(root).resolve() if root else Path.cwd().resolve()


def tracking_uri(root: Path | None = None) -> str:
    explicit = os.environ.get("MLFLOW_TRACKING_URI")
    if explicit:
        return explicit
    return f"sqlite:///{(root or repository_root()) / 'mlflow.db'}"


def connect() -> str:
    """Point MLflow at the store (with the client defaults above, unless set); returns its URI."""
    for name, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


def client() -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=connect())


def artifact_location(name: str, uri: str) -> str | None:
    """For a SQLite store, an absolute folder `mlruns/<name>` beside the database; a server decides its own.

    Decided from the URI, not the environment: mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return (Path(uri.removeprefix(prefix)).resolve().parent / "mlruns" / name).as_uri()


def use_experiment(name: str) -> str:
    """Point MLflow at the store and experiment `name`, creating it with an absolute artifact folder."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = connect()
    try:
        experiment = mlflow.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else mlflow.create_experiment(name, artifact_location=artifact_location(name, uri))
        )
        mlflow.set_experiment(experiment_id=experiment_id)
    except (MlflowException, OSError) as error:
        raise unreachable(error) from None
    return experiment_id


def unreachable(error: Exception) -> PipelineError:
    """One line for a tracking store or server that cannot be used."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if len(first) > 300:
        first = first[:300] + "..."
    return PipelineError(f"MLflow tracking server at {tracking_uri()}: {first}")
