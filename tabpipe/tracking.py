"""Where MLflow runs go, and the tags that tie a run to its code, params and model file.

The default store is `mlflow.db` + `mlruns/` at the repository root. Under `dvc exp run --temp`
or `--queue` a stage runs in a copy under .dvc/tmp/exps/, so a store relative to the current
directory would vanish with the copy: the root comes from DVC_ROOT, which DVC points at the real
repository. MLFLOW_TRACKING_URI (a team's server) overrides all of this.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tabpipe.errors import PipelineError

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Fail fast when a tracking server is down instead of MLflow's default minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")

MODEL_HASH_TAG = "tabpipe.model_sha256"


def repository_root() -> Path:
    root = os.environ.get("DVC_ROOT")
    return Path(root).resolve() if root else Path.cwd().resolve()


def tracking_uri(root: Path | None = None) -> str:
    explicit = os.environ.get("MLFLOW_TRACKING_URI")
    if explicit:
        return explicit
    return f"sqlite:///{(root or repository_root()) / 'mlflow.db'}"


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

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
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


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_tags(dataset: str, params: dict[str, Any]) -> dict[str, str]:
    """Tags on every run: what code, data and params made it, and which DVC experiment."""
    tags = {"git_commit": git_commit(), "dataset": dataset, "params_hash": params_hash(params)}
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("DVC_STAGE"):
        tags["dvc_stage"] = os.environ["DVC_STAGE"]
    return tags


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bytes_sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def requirements() -> list[str]:
    """Pinned requirements for a logged model, from what is installed (MLflow's inference costs seconds)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")]


def log_model(model: Any, x: Any) -> str:
    """Log the sklearn pipeline with its signature and an input example; returns the model URI.

    cloudpickle, not MLflow's default skops: skops refuses forests, boosting and OneHotEncoder
    pipelines as untrusted types.
    """
    import mlflow
    from mlflow.models import infer_signature

    example = x.head(5)
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        serialization_format="cloudpickle",
        pip_requirements=requirements(),
    )
    return info.model_uri


def run_for_model(model_sha256: str) -> str | None:
    """The newest winner run whose model file has this hash (how evaluate finds train's winner)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`{MODEL_HASH_TAG}` = '{model_sha256}' and tags.winner = 'true'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def metric_key(name: str) -> str:
    """MLflow allows only letters, digits and _-. /: class names like '<=50K' become '__50K'."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params or metrics as dotted keys, the way `dvc metrics` shows them."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
