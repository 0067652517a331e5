"""The drift simulation end to end on a small employment sample: replay, monitor, retrain through DVC and the gate."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ROOT, env

pytestmark = pytest.mark.integration


def test_employment_replay_retrains_through_the_pipeline_when_advised(tmp_path: Path) -> None:
    # A hair-trigger on prediction drift makes the retrain path run on a sample small enough for CI.
    settings = ["data.fraction=0.05", "gate.min.roc_auc=0.7", "monitor.prediction_threshold=0.003"]
    args = [sys.executable, "-m", "tools.simulate", "employment", "--out", str(tmp_path / "out")]
    args += ["--workdir", str(tmp_path / "work"), *(f"--set={s}" for s in settings)]
    result = subprocess.run(args, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr

    table = pd.read_csv(tmp_path / "out/employment.csv")
    assert table["batch"].tolist() == [2016, 2017, 2018]
    assert (table["rows"] > 3000).all() and table["roc_auc"].between(0.75, 1).all()
    advised = table[table["retrain_advised"]]
    assert len(advised) >= 1 and advised["reasons"].str.contains("prediction drift").all()
    first = advised.index[0]
    assert table.loc[first, "retrained"].startswith(f"years 2015-{table.loc[first, 'batch']}: ")
    if "gate passed" in table.loc[first, "retrained"] and first + 1 < len(table):
        assert table.loc[first + 1, "model"] != table.loc[first, "model"]  # the next batch met the new champion
    experiments = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "exp", "show", "--csv"],
        cwd=tmp_path / "work/repo",
        env=env(),
        capture_output=True,
        text=True,
    )
    assert experiments.returncode == 0 and "data.years" in experiments.stdout.splitlines()[0]
    assert (tmp_path / "out/employment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| batch |" in (tmp_path / "out/employment.md").read_text()
