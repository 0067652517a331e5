"""The commands the tests run (dvc, `tabpipe`, a stage's) and the environment they run in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.paths import BIN, ROOT


def needs(*commands: str, debian: str) -> pytest.MarkDecorator:
    """Skip unless every command is on PATH; the reason names the Debian packages (.ci/run installs them)."""
    missing = [command for command in commands if shutil.which(command) is None]
    reason = f"needs {', '.join(missing)} (apt-get install {debian}); .ci/run installs it"
    return pytest.mark.skipif(bool(missing), reason=reason)


def env(**extra: str) -> dict[str, str]:
    """The environment for dvc and stage subprocesses: this interpreter's bin first, no telemetry.

    MLFLOW_TRACKING_URI is dropped unless given: mlflow.set_tracking_uri in the test process
    exports it, and a stale one would send a subprocess's runs to another test's store. So is an API
    token in the developer's shell: it would guard every service the tests start.
    """
    dropped = ("MLFLOW_TRACKING_URI", "TABPIPE_API_TOKEN", "TABPIPE_API_TOKEN_FILE")
    inherited = {k: v for k, v in os.environ.items() if k not in dropped}
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


def tabpipe_command(*args: str) -> list[str]:
    """`python -m tabpipe ARGS`; under `pytest --cov`, run by `coverage run` so the command's process counts.

    Only that process is measured, not what it starts: tracing dvc's, MLflow's and BentoML's imports
    makes them about 60% slower, which the suite cannot afford.
    """
    import coverage

    current = coverage.Coverage.current()
    if current is None:
        return [sys.executable, "-m", "tabpipe", *args]
    data = Path(current.get_data().data_filename()).with_name(Path(current.config.data_file).name)
    options = [f"--rcfile={current.config.config_file}", f"--data-file={data}", "--parallel-mode"]
    return [sys.executable, "-m", "coverage", "run", *options, "-m", "tabpipe", *args]


def dvc(*args: str, cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "dvc"), *args], cwd, check, **kwargs)


def stage_argv(stage: str, root: Path = ROOT) -> list[str]:
    """The stage's command-line arguments exactly as dvc.yaml passes them (its vars resolved)."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    values: dict[str, str] = {}
    for entry in spec["vars"]:
        for group, items in entry.items():
            values.update({f"{group}.{name}": str(path) for name, path in items.items()})
    words = spec["stages"][stage]["cmd"].split()
    return [f"stages.{stage}", *(values.get(w[2:-1], w) if w.startswith("${") else w for w in words[3:])]
