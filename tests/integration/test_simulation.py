"""The drift simulation end to end on a small employment sample: replay, monitor, retrain through DVC and the gate.

The default suite replays one batch (the retrain path included); `pytest -m slow` replays all three.
"""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support.commands import env, tabpipe_command
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration


def simulate(tmp_path: Path, *extra: str) -> tuple[pd.DataFrame, str]:
    # A hair-trigger on prediction drift makes the retrain path run on a sample small enough for CI.
    settings = ["data.fraction=0.05", "gate.min.roc_auc=0.7", "monitor.prediction_threshold=0.003"]
    args = [*tabpipe_command("simulate", "employment"), "--out", str(tmp_path / "out")]
    args += ["--workdir", str(tmp_path / "work"), *(f"--set={s}" for s in settings), *extra]
    result = subprocess.run(args, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out/employment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| batch |" in (tmp_path / "out/employment.md").read_text()
    return pd.read_csv(tmp_path / "out/employment.csv"), result.stderr


def test_one_batch_is_replayed_monitored_and_retrained_with_dvc_exp_runs_output_streamed(tmp_path: Path) -> None:
    table, stderr = simulate(tmp_path, "--batches", "1")
    assert table["batch"].tolist() == [2016] and bool(table.loc[0, "retrain_advised"])
    assert table.loc[0, "retrained"].startswith("years 2015-2016: ")
    lines = stderr.splitlines()
    retrain = lines.index("simulation: batch 2016: retraining on years 2015-2016")
    streamed = lines[retrain + 1 :]
    assert streamed[0] == "simulation: dvc exp run -S data.years=[2015, 2016]"
    assert any(line.startswith("  | Running stage 'train'") for line in streamed)
    assert any(line.startswith("  | train: ") and "about" in line for line in streamed)
    assert any(line.startswith("  | monitor: drift of ") for line in lines)
    experiments = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "exp", "show", "--csv"],
        cwd=tmp_path / "work/repo",
        env=env(),
        capture_output=True,
        text=True,
    )
    assert experiments.returncode == 0 and "data.years" in experiments.stdout.splitlines()[0]


@pytest.mark.slow
def test_employment_replay_retrains_through_the_pipeline_when_advised(tmp_path: Path) -> None:
    table, _ = simulate(tmp_path)
    assert table["batch"].tolist() == [2016, 2017, 2018]
    assert (table["rows"] > 3000).all() and table["roc_auc"].between(0.75, 1).all()
    advised = table[table["retrain_advised"]]
    assert len(advised) >= 1 and advised["reasons"].str.contains("prediction drift").all()
    first = advised.index[0]
    assert table.loc[first, "retrained"].startswith(f"years 2015-{table.loc[first, 'batch']}: ")
    if "gate passed" in table.loc[first, "retrained"] and first + 1 < len(table):
        assert table.loc[first + 1, "model"] != table.loc[first, "model"]  # the next batch met the new champion
