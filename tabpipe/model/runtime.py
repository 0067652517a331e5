"""What serves: the compiled ONNX model, or the scikit-learn pipeline when `serve.runtime` allows it.

Serve-time: finding and loading the served file (tabpipe/model/conversion.py writes it).

The compile stage writes one file into the served folder: `model.onnx` or `model.joblib`.
evaluate, the gate, the service and the monitor all load that same file, so what is served is
what was measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    from tabpipe.task.base import Task

FILES = {"onnx": "model.onnx", "sklearn": "model.joblib"}


def model_file(folder: Path) -> Path:
    """The one model file in a served folder."""
    found = [folder / name for name in FILES.values() if (folder / name).is_file()]
    if len(found) != 1:
        raise PipelineError(f"{folder}: expected one of {', '.join(FILES.values())}; run `dvc repro` or `dvc pull`")
    return found[0]


def load(path: Path, task: Task) -> Any:
    """A served model file as an estimator of `task` (the schema's), sized for serving: one thread."""
    return from_bytes(path.read_bytes(), path.suffix, task)


def from_bytes(blob: bytes, suffix: str, task: Task) -> Any:
    """A served model from its file's bytes and suffix (.onnx or .joblib): what a Dask worker gets, as it
    may not have the file."""
    if suffix == ".onnx":
        from tabpipe.model.compiled import Compiled

        return Compiled(blob, task)
    import io

    import joblib

    return single_threaded(joblib.load(io.BytesIO(blob)))


def single_threaded(model: Any) -> Any:
    """Set every n_jobs in the model to 1: a request predicts a few rows, and joblib's dispatch to
    worker threads costs more than a forest's trees take on them (several ms per call)."""
    if hasattr(model, "get_params"):
        jobs = {key: 1 for key, value in model.get_params().items() if key.split("__")[-1] == "n_jobs" and value != 1}
        if jobs:
            model.set_params(**jobs)
    return model
