"""Scratch projects: fresh copies of the checkout in git repositories, reproduced ones, and their params."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tabpipe.sandbox import project
from tests.support.commands import dvc, env
from tests.support.paths import ROOT


def make_project(repo: Path) -> Path:
    """A fresh git repository holding a copy of the project, committed, with no outputs yet."""
    return project.copy_project(ROOT, repo, env())


def set_params(repo: Path, **values: object) -> None:
    """Edit the project's params.yaml: set_params(repo, **{"gate.min.roc_auc": 0.5})."""
    project.set_params(repo, values)


@dataclass(frozen=True)
class Reproduced:
    """A project after `dvc repro` (of all stages, or up to one), and the BentoML store package fills."""

    repo: Path
    home: Path


def reproduce(base: Path) -> Reproduced:
    """Copy the project to `base/repo` and run the whole pipeline in it (tests share one: copy_reproduced)."""
    repo, home = make_project(base / "repo"), base / "bentoml"
    dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(home)))
    return Reproduced(repo, home)


def copy_reproduced(source: Reproduced, base: Path) -> Reproduced:
    """A reproduced project copied to `base`, as if `dvc repro` had run there: git, DVC cache, MLflow, BentoML.

    The MLflow store names artifact folders by absolute path (tabpipe/tracking/backend.py), so those
    are moved to the copy; DVC's temporary state stays behind, as in a fresh clone.
    """
    repo, home = base / "repo", base / "bentoml"
    shutil.copytree(source.repo, repo, symlinks=True)
    shutil.rmtree(repo / ".dvc" / "tmp", ignore_errors=True)
    if source.home.exists():
        shutil.copytree(source.home, home, symlinks=True)
    old, new = str(source.repo), str(repo)
    if not (repo / "mlflow.db").exists():  # reproduced only as far as a stage before train
        return Reproduced(repo, home)
    with contextlib.closing(sqlite3.connect(repo / "mlflow.db")) as db, db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in db.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    name = column[1]
                    db.execute(
                        f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) WHERE instr("{name}", ?) > 0',
                        (old, new, old),
                    )
    for path in (repo / "mlruns").rglob("MLmodel"):
        path.write_text(path.read_text().replace(old, new))
    return Reproduced(repo, home)
