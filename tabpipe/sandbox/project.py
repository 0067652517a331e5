"""Throwaway copies of the project, with their own tools, stores and params (tabpipe/sandbox/servers.py serves them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SKIPPED = ("metrics/", "tests/", "bench/results/")
GENERATED = ("dvc.lock", "models/release.json")
NOT_INHERITED = ("MLFLOW_TRACKING_URI", "TABPIPE_API_TOKEN", "TABPIPE_API_TOKEN_FILE")


def environment(workdir: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    """For commands run in a scratch project: this interpreter's tools first, its own BentoML store,
    the workspace's MLflow server and API token not inherited (its servers are its own, on 127.0.0.1),
    no telemetry, and a git identity for its commits."""
    return {
        **{k: v for k, v in os.environ.items() if k not in NOT_INHERITED},
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
