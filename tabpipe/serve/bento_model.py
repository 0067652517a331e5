"""The gated model in the local BentoML store, and loading it only when its bytes are the gated ones.

The model is imported under a tag derived from its hash, after checking the file against that hash;
the trained pipeline goes with it, for explanations.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.core.hashing import bytes_sha256

if TYPE_CHECKING:
    from tabpipe.serve.manifest import Manifest
    from tabpipe.task.base import Task

PIPELINE_FILE = "pipeline.joblib"  # beside the served file in the store: what POST /explain explains


def require(manifest: Manifest, model_path: Path) -> None:
    """Refuse to build a service with nothing to serve: the gated model must be in the BentoML store.

    Read-only: the package stage puts it there, and after a `dvc pull` `tabpipe store-model` does.
    """
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bentoml.models.get(manifest.tag)
    except NotFound:
        if not model_path.is_file():
            raise PipelineError(f"{model_path}: model file missing; run `dvc pull` or `dvc repro`") from None
        raise PipelineError(
            f"model {manifest.tag} is not in the BentoML store; run `tabpipe store-model` first"
        ) from None


def ensure_model(
    manifest: Manifest, model_path: Path, pipeline_path: Path | None = None, labels: dict[str, str] | None = None
) -> str:
    """Make sure the manifest's model is in the local BentoML store; returns its tag.

    A model file whose hash differs from the manifest's is refused: it is not the gated model. The
    trained pipeline (`pipeline_path`, models/model.joblib) is stored beside it, checked against the
    manifest's `pipeline_sha256`: it is what POST /explain explains. A model stored without it is stored again.
    A lock in the store makes concurrent imports (two pipelines, say) wait for each other.
    """
    from filelock import FileLock

    home = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / ".tabpipe-import.lock")):
        return _ensure_model(manifest, model_path, pipeline_path, labels)


def _ensure_model(
    manifest: Manifest, model_path: Path, pipeline_path: Path | None, labels: dict[str, str] | None
) -> str:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        stored = bentoml.models.get(manifest.tag)
        if pipeline_path is None or stored.info.metadata.get("pipeline_sha256") == manifest.pipeline_sha256:
            return manifest.tag
        bentoml.models.delete(manifest.tag)  # stored before it carried its pipeline
    except NotFound:
        pass
    checked_bytes(model_path, manifest.model_sha256, "the gated model")
    metadata = {k: manifest.raw[k] for k in ("dataset", "model_file", "model_sha256", "metrics", "schema")}
    if pipeline_path is not None:
        checked_bytes(pipeline_path, manifest.pipeline_sha256, "the gated model's trained pipeline")
        metadata["pipeline_sha256"] = manifest.pipeline_sha256
    with bentoml.models.create(
        manifest.tag, labels={"dataset": manifest.raw["dataset"], **(labels or {})}, metadata=metadata
    ) as model:
        shutil.copyfile(model_path, model.path_of(manifest.model_file))
        if pipeline_path is not None:
            shutil.copyfile(pipeline_path, model.path_of(PIPELINE_FILE))
    return manifest.tag


def load_model(model_ref: Any, task: Task) -> Any:
    """Load the stored model after checking its bytes against the hash the pipeline recorded."""
    metadata = model_ref.info.metadata
    return load_file(Path(model_ref.path_of(metadata.get("model_file", ""))), metadata.get("model_sha256"), task)


def stored(tag: str) -> Any:
    """The model `tag` in the store BENTOML_HOME names now: bentoml.models.get keeps the store it first
    used in this process, so a release run beside another store would miss the model."""
    from bentoml._internal.models.model import ModelStore

    home = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    return ModelStore(home / "models").get(tag)


def load_pipeline(model_ref: Any, task: Task) -> Any:
    """The trained scikit-learn pipeline stored beside the served model, checked against its hash."""
    expected = model_ref.info.metadata.get("pipeline_sha256")
    if expected is None:
        raise PipelineError(
            f"model {model_ref.tag} was stored without its trained pipeline; run `tabpipe store-model` and restart"
        )
    return load_file(Path(model_ref.path_of(PIPELINE_FILE)), expected, task)


def load_file(path: Path, expected: str | None, task: Task) -> Any:
    """Load a served model file only if its sha256 is `expected`: a tampered or stale file is never loaded."""
    from tabpipe.model.runtime import from_bytes

    return from_bytes(checked_bytes(path, expected), path.suffix, task)


def checked_bytes(path: Path, expected: str | None, what: str = "the recorded") -> bytes:
    """A model file's bytes, only if their sha256 is `expected` (what load_file loads, ships or stores);
    the refusal names `what` the hash is of."""
    if not path.is_file():
        raise PipelineError(f"{path}: model file missing; run `dvc pull` or `dvc repro`")
    blob = path.read_bytes()
    actual = bytes_sha256(blob)
    if actual != expected:
        raise PipelineError(f"{path}: sha256 {actual[:12]}... does not match {what} {str(expected)[:12]}...")
    return blob
