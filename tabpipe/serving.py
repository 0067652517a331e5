"""What the BentoML service needs, kept out of service.py: the manifest, the model store, request models.

The pipeline's `package` stage writes models/serving.json (deterministic: model hash, dataset,
gated metrics, schema, serving limits) beside models/model.joblib. Any machine holding those two
files, from `dvc repro` or `dvc pull`, can serve: the model is imported into the local BentoML
store under a tag derived from its hash, after checking the file against that hash.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tabpipe import tracking
from tabpipe.errors import PipelineError
from tabpipe.schema import Schema

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

MODEL_FILE = "model.joblib"


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run `dvc repro` (or `dvc pull`) to produce the gated model first")
    from tabpipe.io import read_json

    return read_json(path)


def manifest(schema: Schema, model_sha256: str, metrics: dict[str, Any], serve: dict[str, Any]) -> dict[str, Any]:
    name = f"tabpipe-{schema.name}"
    return {
        "name": name,
        "tag": f"{name}:{model_sha256[:20]}",
        "dataset": schema.name,
        "model_sha256": model_sha256,
        "metrics": metrics,
        "schema": schema.to_dict(),
        "serve": serve,
    }


def release_record(manifest: dict[str, Any]) -> dict[str, str]:
    """The part of the manifest a reviewer needs: which model, for which dataset."""
    return {k: manifest[k] for k in ("name", "tag", "dataset", "model_sha256")}


def ensure_model(manifest: dict[str, Any], model_path: Path, labels: dict[str, str] | None = None) -> str:
    """Make sure the manifest's model is in the local BentoML store; returns its tag.

    A model file whose hash differs from the manifest's is refused: it is not the gated model.
    Several service workers start at once: a lock in the store lets one import while the others wait.
    """
    import os

    from filelock import FileLock

    home = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / ".tabpipe-import.lock")):
        return _ensure_model(manifest, model_path, labels)


def _ensure_model(manifest: dict[str, Any], model_path: Path, labels: dict[str, str] | None) -> str:
    import bentoml
    from bentoml.exceptions import NotFound

    tag = manifest["tag"]
    try:
        bentoml.models.get(tag)
        return tag
    except NotFound:
        pass
    if not model_path.is_file():
        raise PipelineError(f"{model_path}: model file missing; run `dvc pull` or `dvc repro`")
    actual = tracking.file_sha256(model_path)
    if actual != manifest["model_sha256"]:
        raise PipelineError(
            f"{model_path}: sha256 {actual[:12]}... does not match the gated model {manifest['model_sha256'][:12]}..."
        )
    metadata = {k: manifest[k] for k in ("dataset", "model_sha256", "metrics", "schema")}
    with bentoml.models.create(
        tag, labels={"dataset": manifest["dataset"], **(labels or {})}, metadata=metadata
    ) as model:
        shutil.copyfile(model_path, model.path_of(MODEL_FILE))
    return tag


def load_model(model_ref: Any) -> Any:
    """Load the stored pipeline after checking its bytes against the hash the pipeline recorded."""
    return load_file(Path(model_ref.path_of(MODEL_FILE)), model_ref.info.metadata.get("model_sha256"))


def load_file(path: Path, expected: str | None) -> Any:
    """Load a model file only if its sha256 is `expected`: a tampered or stale file is never unpickled."""
    import joblib

    if not path.is_file():
        raise PipelineError(f"{path}: model file missing; run `dvc pull` or `dvc repro`")
    actual = tracking.file_sha256(path)
    if actual != expected:
        raise PipelineError(f"{path}: sha256 {actual[:12]}... does not match the recorded {str(expected)[:12]}...")
    return single_threaded(joblib.load(path))


def single_threaded(model: Any) -> Any:
    """Set every n_jobs in the model to 1: a request predicts a few rows, and joblib's dispatch to
    worker threads costs more than a forest's trees take on them (several ms per call)."""
    if hasattr(model, "get_params"):
        jobs = {key: 1 for key, value in model.get_params().items() if key.split("__")[-1] == "n_jobs" and value != 1}
        if jobs:
            model.set_params(**jobs)
    return model


def field_name(column: str) -> str:
    """A Python identifier for a column; the JSON key stays the column name (an alias)."""
    name = re.sub(r"\W", "_", column)
    return f"f_{name}" if not name.isidentifier() or name.startswith("_") else name


def row_model(schema: Schema) -> type[BaseModel]:
    """The request row: every feature typed, bounded and (categories) enumerated from the schema.

    Strict numbers (no "5.1" strings, no NaN or Infinity); unknown keys are refused. Nullable
    features may be null or left out; the others are required.
    """
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    for feature in schema.features:
        if feature.kind == "numeric":
            kind: Any = float
            constraints = {"ge": feature.minimum, "le": feature.maximum, "strict": True, "allow_inf_nan": False}
        else:
            kind = Literal[feature.categories]  # type: ignore[valid-type]
            constraints = {}
        if feature.nullable:
            fields[field_name(feature.name)] = (kind | None, Field(None, alias=feature.name, **constraints))
        else:
            fields[field_name(feature.name)] = (kind, Field(..., alias=feature.name, **constraints))
    config = ConfigDict(extra="forbid", populate_by_name=False)
    return create_model(f"{schema.name.title()}Row", __config__=config, **fields)


def records(rows: list[Any]) -> list[dict[str, Any]]:
    """Validated request rows as plain dicts keyed by column name (what the prediction log keeps)."""
    return [row.model_dump(by_alias=True) for row in rows]


def rows_frame(records: list[dict[str, Any]], schema: Schema) -> pd.DataFrame:
    """Rows as the frame the model was trained on: same columns, order and dtypes."""
    import pandas as pd

    from tabpipe.datasets import coerce

    return coerce(pd.DataFrame.from_records(records, columns=schema.feature_names), schema)


def answer(
    labels: Any, proba: Any, classes: list[str], model: dict[str, str], request_id: str | None = None
) -> dict[str, Any]:
    """The /predict body; `request_id` (when logged) lets ground truth be joined to the log later."""
    return {
        "model": model,
        "request_id": request_id,
        "predictions": [
            {"label": str(label), "probabilities": {c: float(p) for c, p in zip(classes, row, strict=True)}}
            for label, row in zip(labels, proba, strict=True)
        ],
    }
