"""A binary decision end to end through real DVC: `dvc repro` with `decision.objective: cost`, a
`dvc exp run -S decision.cost.false_negative=...` that moves the threshold, the gate, and `bentoml serve`
answering a row between the two thresholds as each run decided."""

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.support.client import post
from tests.support.commands import dvc, env, run
from tests.support.projects import Reproduced, copy_reproduced, set_params
from tests.support.servers import serving

pytestmark = pytest.mark.integration

LOGREG = {"logreg": {"estimator": "logistic_regression", "grid": {"C": [1.0]}}}


def read(repo: Path, name: str):
    return json.loads((repo / name).read_text())


def request_row(repo: Path, row: int) -> dict:
    features = [f["name"] for f in read(repo, "data/prepared/schema.json")["features"]]
    test = pd.read_parquet(repo / "data/prepared/test.parquet")[features].iloc[[row]]
    return test.astype(object).where(test.notna(), None).to_dict(orient="records")[0]


def test_a_cost_decision_reproduces_sweeps_gates_and_serves(small_adult: Reproduced, tmp_path: Path) -> None:
    project = copy_reproduced(small_adult, tmp_path)
    repo, run_env = project.repo, env(BENTOML_HOME=str(project.home))
    set_params(
        repo,
        **{
            "train.candidates": LOGREG,
            "decision.objective": "cost",
            "decision.cost.false_positive": 1,
            "decision.cost.false_negative": 5,
            # Macro F1 judges labels as argmax makes them; a dear miss trades it away by design (1:20
            # gives about 0.6 here), so this gate holds the ranking and the cost instead.
            "gate.min": {"roc_auc": 0.85},
            "gate.max": {"expected_cost": 0.5},
        },
    )
    dvc("repro", cwd=repo, env=run_env)

    decided = read(repo, "metrics/train.json")["decision"]
    assert decided["objective"] == "cost" and decided["positive"] == ">50K"  # the less frequent class
    first = decided["threshold"]
    assert 0 < first < 0.5  # a miss costs five false alarms: act on less than an even chance
    found = read(repo, "metrics/evaluate.json")
    assert found["threshold"] == first and found["expected_cost"] < found["expected_cost_argmax"]
    [point] = read(repo, "metrics/plots/decision.json")  # marked on the precision-recall plot
    assert point == {"recall": found["recall_positive"], "precision": found["precision_positive"], "threshold": first}
    assert read(repo, "metrics/gate.json")["passed"]
    before = pd.read_parquet(repo / "data/predictions/test.parquet")
    assert ((before["proba_>50K"] >= first) == (before["predicted"] == ">50K")).all()
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "cost 1:5"], repo)

    dvc("exp", "run", "-S", "decision.cost.false_negative=20", cwd=repo, env=run_env)
    second = read(repo, "metrics/train.json")["decision"]["threshold"]
    assert second < first  # a dearer miss: act sooner
    assert read(repo, "metrics/gate.json")["passed"]
    between = before.index[(before["proba_>50K"] >= second) & (before["proba_>50K"] < first)]
    assert len(between), "no test row between the two thresholds"
    row = int(between[0])
    assert before.loc[row, "predicted"] == "<=50K"  # what the 1:5 model decided for it

    with serving(repo, project.home) as url:
        status, answer = post(url, {"rows": [request_row(repo, row)]})
        assert status == 200 and answer["predictions"][0]["label"] == ">50K"  # what the 1:20 model decides
        served = answer["predictions"][0]["probabilities"][">50K"]
        assert served == pytest.approx(before.loc[row, "proba_>50K"], abs=1e-9)  # the same probability
        status, model = post(url, {}, "/model")
        assert status == 200 and model["decision"]["threshold"] == second
