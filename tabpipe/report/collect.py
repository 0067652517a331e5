"""The report's edges: DVC's structured diffs, the pipeline's JSON files, and writing the result.

from tabpipe.report import collect
body, images = collect.report("origin/main", Path("."), image_prefix="plots/")
collect.write(Path("reports/pr"), body, images)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tabpipe.core import files, layout
from tabpipe.core.errors import PipelineError
from tabpipe.report import pr


def dvc_binary() -> str:
    """The dvc of this interpreter's environment (a CI job may not have the venv on PATH), else PATH's."""
    found = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
    if found is None:
        raise PipelineError("dvc: not found next to this Python or on PATH; install the project's requirements")
    return found


def dvc_json(*args: str, cwd: Path = Path(".")) -> Any:
    """`dvc <args> --json`, parsed; a failure is one line naming the command and DVC's last word on it."""
    command = f"dvc {' '.join(args)} --json"
    result = subprocess.run([dvc_binary(), *args, "--json"], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        reason = lines[-1].removeprefix("ERROR: ") if lines else f"exit status {result.returncode}"
        raise PipelineError(f"{command}: {reason}")
    try:
        return json.loads(result.stdout or "{}")
    except json.JSONDecodeError as error:
        raise PipelineError(f"{command}: output is not JSON ({error.msg} at line {error.lineno})") from None


def params_diff(base: str, cwd: Path = Path(".")) -> dict[str, Any]:
    """{params file: {key: {"old", "new"[, "diff"]}}}, changed keys only."""
    return dvc_json("params", "diff", base, cwd=cwd)


def metrics_diff(base: str, cwd: Path = Path(".")) -> dict[str, Any]:
    """{metrics file: {key: {"old", "new"[, "diff"]}}}, changed keys only."""
    return dvc_json("metrics", "diff", base, cwd=cwd)


def plots_diff(base: str, cwd: Path = Path(".")) -> dict[str, Any]:
    """{"data": {plot id: [{"type", "revisions", "content"}]}[, "errors": [...]]}, specs with data inlined."""
    return dvc_json("plots", "diff", base, cwd=cwd)


def optional_json(path: Path) -> Any | None:
    """A file's JSON, or None when a stage never wrote it (the report says so instead of failing)."""
    return files.read_json(path) if path.is_file() else None


def report(base: str, root: Path = Path("."), image_prefix: str = "plots/") -> tuple[str, dict[str, bytes]]:
    """The comment body and its PNGs for the working tree at `root` against `base`."""
    where = layout.paths(root)
    images = pr.render_plots(plots_diff(base, root))
    body = pr.markdown(
        base,
        params_diff=params_diff(base, root),
        metrics_diff=metrics_diff(base, root),
        gate=optional_json(where["reports"]["gate"]),
        gate_flags=optional_json(where["metrics"]["gate"]),
        validation=optional_json(where["metrics"]["validation"]),
        images=list(images),
        image_prefix=image_prefix,
    )
    return body, images


def write(out: Path, body: str, images: dict[str, bytes]) -> None:
    """<out>/report.md and <out>/plots/*.png, each atomically; PNGs of an earlier report that this one
    no longer has are removed, so the folder holds exactly this report's plots."""
    plots = out / "plots"
    for name, png in images.items():
        if Path(name).name != name:
            raise PipelineError(f"plot image name '{name}' is not a plain file name")
        files.write_with(plots / name, lambda tmp, png=png: tmp.write_bytes(png))
    for old in plots.glob("*.png") if plots.is_dir() else []:
        if old.name not in images:
            old.unlink()
    files.write_text(out / "report.md", body)
