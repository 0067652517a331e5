"""`tabpipe monitor --batch` on `tabpipe predict`'s output, in a copy of the reproduced project: the scored
answers are the served predictions (nothing predicted again), and another model's answers are refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.monitor import assess
from tests.support.commands import env, tabpipe_command
from tests.support.projects import Reproduced

pytestmark = pytest.mark.integration


def tabpipe(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tabpipe_command(*args), cwd=project, env=env(), capture_output=True, text=True, check=False)


def test_monitor_judges_a_scored_output_by_its_own_answers_and_refuses_another_model_s(
    reproduced: Reproduced, tmp_path: Path
) -> None:
    repo = reproduced.repo
    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    names, target = [f["name"] for f in schema["features"]], schema["target"]
    # Like traffic: every iris row (the 33 test rows alone are a noisy reference: test_monitor_service.py).
    every_row = pd.concat(
        [pd.read_parquet(repo / f"data/prepared/{split}.parquet") for split in ("train", "test")], ignore_index=True
    )
    every_row.to_parquet(tmp_path / "rows.parquet")
    keep = [arg for name in [*names, target] for arg in ("--keep", name)]
    scored = tabpipe(
        repo, "predict", str(tmp_path / "rows.parquet"), "--output", str(tmp_path / "scores.parquet"), *keep
    )
    assert scored.returncode == 0, scored.stderr

    raw = tabpipe(repo, "monitor", "--batch", str(tmp_path / "rows.parquet"), "--out", str(tmp_path / "raw"))
    assert raw.returncode == assess.HEALTHY, raw.stderr
    assert "is tabpipe predict's output" not in raw.stderr
    taken = tabpipe(repo, "monitor", "--batch", str(tmp_path / "scores.parquet"), "--out", str(tmp_path / "taken"))
    assert taken.returncode == assess.HEALTHY, taken.stderr
    assert "scores.parquet is tabpipe predict's output: its answers are taken as" in taken.stderr
    # The served model's answers, whether the monitor asked it or read them from the scored file.
    predicted, read = (json.loads((tmp_path / out / "drift.json").read_text()) for out in ("raw", "taken"))
    assert read["rows"] == len(every_row) and read["labelled"]["accuracy"] >= 0.9
    assert read == predicted

    answers = pd.read_parquet(tmp_path / "scores.parquet")
    answers["version"] = answers["version"] + "-other"
    answers.to_parquet(tmp_path / "other.parquet")
    other = tabpipe(repo, "monitor", "--batch", str(tmp_path / "other.parquet"), "--out", str(tmp_path / "other"))
    assert other.returncode == 1
    last = other.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "other.parquet: scored by tabpipe-iris version " in last
    assert "score it again with `tabpipe predict`" in last and "Traceback" not in other.stderr
    assert not (tmp_path / "other").exists()
