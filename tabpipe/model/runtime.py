"""What serves: the compiled ONNX model, or the scikit-learn pipeline when `serve.runtime` allows it.

The compile stage writes one file into the served folder: `model.onnx` or `model.joblib`.
evaluate, the gate, the service and the monitor all load that same file, so what is served is
what was measured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    from tabpipe.data.schema import Schema

log = logging.getLogger("compile")

Runtime = Literal["onnx", "auto", "sklearn"]
FILES = {"onnx": "model.onnx", "sklearn": "model.joblib"}


@dataclass(frozen=True)
class Built:
    """The served model's bytes, which runtime runs them, and why it is not ONNX (when it is not)."""

    runtime: str
    blob: bytes
    reason: str = ""

    @property
    def file_name(self) -> str:
        return FILES[self.runtime]


def build(pipeline_bytes: bytes, pipeline: Any, schema: Schema, runtime: Runtime) -> Built:
    """Compile the pipeline as `runtime` says.

    onnx: compile, or fail saying why. auto: compile, or serve the pipeline with one warning line
    saying why. sklearn: serve the pipeline as it is.
    """
    from tabpipe.model import compiled

    if runtime == "sklearn":
        return Built("sklearn", pipeline_bytes, "serve.runtime is sklearn")
    try:
        return Built("onnx", compiled.compile_pipeline(pipeline, schema))
    except PipelineError as error:
        if runtime == "onnx":
            raise PipelineError(f"{error} (set serve.runtime: auto to serve scikit-learn instead)") from None
        log.warning("serving scikit-learn, not ONNX: %s", error)
        return Built("sklearn", pipeline_bytes, str(error))


def model_file(folder: Path) -> Path:
    """The one model file in a served folder."""
    found = [folder / name for name in FILES.values() if (folder / name).is_file()]
    if len(found) != 1:
        raise PipelineError(f"{folder}: expected one of {', '.join(FILES.values())}; run `dvc repro` or `dvc pull`")
    return found[0]


def load(path: Path) -> Any:
    """A served model file as an estimator (`classes_`, `predict_proba`), sized for serving: one thread."""
    if path.suffix == ".onnx":
        from tabpipe.model.compiled import Compiled

        return Compiled(path.read_bytes())
    import joblib

    return single_threaded(joblib.load(path))


def single_threaded(model: Any) -> Any:
    """Set every n_jobs in the model to 1: a request predicts a few rows, and joblib's dispatch to
    worker threads costs more than a forest's trees take on them (several ms per call)."""
    if hasattr(model, "get_params"):
        jobs = {key: 1 for key, value in model.get_params().items() if key.split("__")[-1] == "n_jobs" and value != 1}
        if jobs:
            model.set_params(**jobs)
    return model
