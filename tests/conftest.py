"""Shared fixtures: small frames, a schema to corrupt, and a throwaway copy of the project as a git repo."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.schema import Feature, Schema

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# BentoML reads BENTOML_HOME once per process: keep the tests' model store out of ~/bentoml.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="tabpipe-bentoml-")


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


def make_project(repo: Path) -> Path:
    """A fresh git repository holding a copy of the project, committed, with no outputs yet."""
    for name in project_files():
        if name.startswith(("metrics/", "tests/", "bench/")) or name in ("dvc.lock", "models/serving.json"):
            continue
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "project"], repo)
    return repo


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "repo")


def set_params(repo: Path, **values: object) -> None:
    """Edit the project's params.yaml: set_params(repo, **{"gate.min.roc_auc": 0.5})."""
    import yaml

    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in values.items():
        *parents, key = dotted.split(".")
        node = params
        for name in parents:
            node = node[name]
        node[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(repo: Path, bentoml_home: Path, timeout: float = 90) -> Iterator[str]:
    """A real `bentoml serve` on 127.0.0.1, stopped by its process group when the block ends."""
    port = free_port()
    log = (repo / "serve.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "bentoml"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=repo,
        env=env(BENTOML_HOME=str(bentoml_home)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"bentoml serve exited {process.returncode}:\n{(repo / 'serve.log').read_text()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"bentoml serve not ready in {timeout}s:\n{(repo / 'serve.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


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
