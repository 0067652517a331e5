"""A regression end to end through real DVC: `dvc repro`, `dvc exp run`, MLflow, and the gate against a champion.

(`bentoml serve` of a regressor, its parity with evaluate, the fuzz and the load: the `lightgbm_regressor`
served family in test_service.py, test_fuzz.py and test_load.py.)"""

import json
from pathlib import Path

import pytest

from tests.support.commands import dvc, env, run
from tests.support.projects import Reproduced, copy_reproduced, set_params

pytestmark = pytest.mark.integration

RIDGE = {"linear": {"estimator": "ridge", "grid": {"alpha": [1.0]}}}
TREES = {"lightgbm": {"estimator": "lightgbm_regressor", "fixed": {"n_estimators": 100}}}


def read(repo: Path, name: str):
    return json.loads((repo / name).read_text())


def test_a_regression_reproduces_runs_experiments_and_meets_its_champion(
    small_california: Reproduced, tmp_path: Path
) -> None:
    project = copy_reproduced(small_california, tmp_path)
    repo, run_env = project.repo, env(BENTOML_HOME=str(project.home))
    set_params(repo, **{"train.regression.candidates": {**RIDGE, **TREES}})
    dvc("repro", cwd=repo, env=run_env)

    found = read(repo, "metrics/evaluate.json")
    assert {"rmse", "mae", "r2", "interval_level", "interval_coverage", "interval_width"} <= set(found)
    assert found["r2"] > 0.6 and abs(found["interval_coverage"] - 0.9) <= 0.05  # 516 test rows
    flags = read(repo, "metrics/gate.json")
    assert flags["passed"] and flags["interval_coverage"] and flags["compiled_values"]
    assert read(repo, "metrics/train.json")["winner"] == "lightgbm"
    assert len(read(repo, "metrics/plots/actual.json")) == found["rows"] and read(repo, "metrics/plots/roc.json") == []
    plots = json.loads(dvc("plots", "show", "--json", cwd=repo, env=run_env).stdout)
    assert any("Predicted against actual" in name for name in plots["data"]), list(plots["data"])
    manifest = read(repo, "models/serving.json")
    assert manifest["schema"]["task"] == "regression" and len(manifest["value_buckets"]) == 9

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    (winner,) = client.search_runs(
        [client.get_experiment_by_name("tabpipe-california").experiment_id], "tags.winner = 'true'"
    )
    assert winner.data.metrics["test_rmse"] == found["rmse"]
    assert winner.data.metrics["test_interval_coverage"] == found["interval_coverage"]
    artifacts = {a.path for a in client.list_artifacts(winner.info.run_id)}
    assert {"predicted_vs_actual.png", "residuals.png"} <= artifacts
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "california"], repo)

    # An experiment at another level: the same predictions, so the champion rule passes; the intervals narrow.
    # (The gate allows the coverage the assertion below allows: 0.05, about 3 standard errors on ~520 rows.)
    dvc(
        "exp",
        "run",
        "-S",
        "train.regression.interval=0.8",
        "-S",
        "gate.regression.interval_tolerance=0.05",
        cwd=repo,
        env=run_env,
    )
    narrower = read(repo, "metrics/evaluate.json")
    assert narrower["interval_level"] == 0.8 and narrower["interval_width"] < found["interval_width"]
    assert abs(narrower["interval_coverage"] - 0.8) <= 0.05 and narrower["rmse"] == found["rmse"]
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo, env=run_env).stdout)
    assert "interval_level" in json.dumps(shown)
    report = read(repo, "reports/gate.json")
    assert report["comparison"]["metric"] == "r2" and report["comparison"]["difference"] == 0

    # A clearly worse regressor (ridge alone) fails the champion rule on R², in one line, and ships nothing.
    released = read(repo, "models/release.json")
    set_params(repo, **{"train.regression.candidates": RIDGE})
    failed = dvc("exp", "run", cwd=repo, env=run_env, check=False)
    assert failed.returncode != 0
    lines = [line for line in failed.stderr.splitlines() if "gate: champion_not_worse" in line]
    assert lines and "r2 0." in lines[0] and "worse than the champion's" in lines[0], failed.stderr[-2000:]
    assert read(repo, "models/release.json") == released
