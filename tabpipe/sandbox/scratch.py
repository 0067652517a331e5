"""Throwaway copies of the project and the servers run beside them (tests and the drift simulation share these)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

SKIPPED = ("metrics/", "tests/", "bench/results/")
GENERATED = ("dvc.lock", "models/release.json")


def environment(workdir: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    """For commands run in a scratch project: this interpreter's tools first, its own BentoML store,
    the workspace's MLflow server not inherited, no telemetry, and a git identity for its commits."""
    return {
        **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "BENTOML_HOME": str(workdir / "bentoml"),
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GIT_AUTHOR_NAME": "tabpipe",
        "GIT_AUTHOR_EMAIL": "tabpipe@localhost",
        "GIT_COMMITTER_NAME": "tabpipe",
        "GIT_COMMITTER_EMAIL": "tabpipe@localhost",
        **extra,
    }


def project_files(root: Path) -> list[str]:
    """Files git would version in the project (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [f for f in listed if f and (root / f).is_file()]


def copy_project(root: Path, repo: Path, run_env: dict[str, str]) -> Path:
    """A fresh git repository holding a copy of the project at `root`, committed, with no outputs yet."""
    for name in project_files(root):
        if name.startswith(SKIPPED) or name in GENERATED:
            continue
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    for args in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "project"]):
        subprocess.run(args, cwd=repo, env=run_env, check=True, capture_output=True)
    return repo


def set_params(repo: Path, values: dict[str, object]) -> None:
    """Set dotted keys in a project's params.yaml: set_params(repo, {"gate.min.roc_auc": 0.5})."""
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
def background(
    args: list[str], cwd: Path, run_env: dict[str, str], ready: str, log: Path, timeout: float = 90
) -> Iterator[int]:
    """Start a server process, wait until `ready` answers 200, and stop its process group afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=cwd, env=run_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited {process.returncode}:\n{log.read_text()}")
                with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=2) as answer:
                    if answer.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} not ready in {timeout}s:\n{log.read_text()}")
                time.sleep(0.5)
            yield process.pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def bentoml_serve(repo: Path, bin_dir: Path, run_env: dict[str, str], ready: str = "/readyz") -> Iterator[str]:
    """A real `bentoml serve` of the project at `repo` on 127.0.0.1; yields its URL once `ready` answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(bin_dir / "bentoml"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with background(args, repo, run_env, f"{url}{ready}", repo / "serve.log"):
        yield url
