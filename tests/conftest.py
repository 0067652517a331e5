"""Shared fixtures: small frames, a schema to corrupt, and a throwaway copy of the project as a git repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.schema import Feature, Schema

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    """The environment for dvc and stage subprocesses: this interpreter's bin first, no telemetry.

    MLFLOW_TRACKING_URI is dropped unless given: mlflow.set_tracking_uri in the test process
    exports it, and a stale one would send a subprocess's runs to another test's store.
    """
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {
        **inherited,
        **extra,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }


def run(args: list[str], cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command, showing its output when it fails unexpectedly."""
    result = subprocess.run(args, cwd=cwd, env=kwargs.pop("env", env()), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def dvc(*args: str, cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "dvc"), *args], cwd, check, **kwargs)


def project_files() -> list[str]:
    """Files git would version in the project (tracked or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [f for f in listed if f and (ROOT / f).is_file()]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh git repository holding a copy of the project, committed, with no outputs yet."""
    repo = tmp_path / "repo"
    for name in project_files():
        if name.startswith(("metrics/", "tests/", "bench/")) or name == "dvc.lock":
            continue
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "project"], repo)
    return repo


TOY = Schema(
    name="toy",
    features=(
        Feature("x", "numeric", minimum=0.0, maximum=10.0),
        Feature("z", "numeric", minimum=-5.0, maximum=5.0, nullable=True),
        Feature("c", "categorical", categories=("a", "b", "c")),
    ),
    target="y",
    classes=("no", "yes"),
)


@pytest.fixture
def toy() -> Schema:
    return TOY


def toy_frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """A frame that passes every check against TOY: balanced classes, no duplicates."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.uniform(0, 10, rows),
            "z": rng.uniform(-5, 5, rows),
            "c": pd.Series(rng.choice(["a", "b", "c"], rows), dtype="str"),
            "y": pd.Series(np.where(np.arange(rows) % 2 == 0, "no", "yes"), dtype="str"),
        }
    )
