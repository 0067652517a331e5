"""Where the pipeline's files live, read from dvc.yaml's `vars`: the one place each path is written.

Stages get their paths from dvc.yaml's commands; the service, the tools, the benchmarks and the
tests ask here, so they follow dvc.yaml when it changes.
"""

from __future__ import annotations

from pathlib import Path

from tabpipe.core.errors import PipelineError
from tabpipe.core.files import read_mapping


def paths(root: Path = Path(".")) -> dict[str, dict[str, Path]]:
    """dvc.yaml's path variables, e.g. paths()["models"]["model"] == root / "models/model.joblib"."""
    file = root / "dvc.yaml"
    if not file.is_file():
        raise PipelineError(f"{file}: not found; run this from the project's root")
    spec = read_mapping(file, "`vars` and `stages`")
    merged: dict[str, dict[str, str]] = {}
    for entry in spec.get("vars") or []:
        if isinstance(entry, dict):
            merged.update(entry)
    return {group: {name: root / value for name, value in items.items()} for group, items in merged.items()}
