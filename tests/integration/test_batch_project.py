"""`tabpipe predict` in a copy of the reproduced project: `tabpipe monitor --batch` on its output takes the
scored answers as the served predictions (nothing predicted again) and refuses another model's; and
docs/batch.md's scoring stage reruns under `dvc repro` only when the batch (or the model) changed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.monitor import assess
from tests.support.commands import dvc, env, tabpipe_command
from tests.support.paths import ROOT
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


def documented_stage() -> str:
    """docs/batch.md's scoring stage, as its yaml block gives it."""
    text = (ROOT / "docs/batch.md").read_text()
    section = text[text.index("## A scoring stage in DVC") :]
    return section[section.index("```yaml\n") + len("```yaml\n") : section.index("```\n", section.index("```yaml"))]


def test_the_documented_scoring_stage_reruns_only_when_its_batch_changed(reproduced: Reproduced) -> None:
    repo = reproduced.repo
    text = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(text.replace("\nmetrics:\n", f"\n{documented_stage()}\nmetrics:\n", 1))
    features = [f["name"] for f in json.loads((repo / "models/serving.json").read_text())["schema"]["features"]]
    test = pd.read_parquet(repo / "data/prepared/test.parquet")[features]
    (repo / "data/batches").mkdir(parents=True)
    batch = repo / "data/batches/customers.parquet"
    test.assign(customer_id=[f"c{i}" for i in range(len(test))]).to_parquet(batch)
    environ = env(BENTOML_HOME=str(reproduced.home))

    first = dvc("repro", "score", cwd=repo, env=environ)
    assert "Running stage 'score'" in first.stdout and "Running stage 'package'" not in first.stdout
    scores = pd.read_parquet(repo / "data/scores/customers.parquet")
    assert scores["customer_id"].tolist() == [f"c{i}" for i in range(len(test))]
    assert "Data and pipelines are up to date" in dvc("status", cwd=repo, env=environ).stdout
    assert "Running stage" not in dvc("repro", "score", cwd=repo, env=environ).stdout

    test[:10].assign(customer_id=[f"d{i}" for i in range(10)]).to_parquet(batch)
    assert "changed deps" in dvc("status", "score", cwd=repo, env=environ).stdout
    assert "Running stage 'score'" in dvc("repro", "score", cwd=repo, env=environ).stdout
    assert pd.read_parquet(repo / "data/scores/customers.parquet")["customer_id"].tolist()[-1] == "d9"
