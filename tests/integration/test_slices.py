"""Slices through real DVC: `evaluate.slices` on small adult fills metrics/slices.json and its plot, a
slice gate with a tight equalized-odds cap fails naming `sex` (and tells the webhook the same line),
and a looser cap lets the same model through with only the gate rerun."""

import json
from pathlib import Path

import pytest

from tests.support.commands import dvc, env
from tests.support.projects import Reproduced, copy_reproduced, set_params
from tests.support.webhook import webhook_receiver

pytestmark = pytest.mark.integration

LOGREG = {"logreg": {"estimator": "logistic_regression", "grid": {"C": [1.0]}}}


def read(repo: Path, name: str):
    return json.loads((repo / name).read_text())


def test_a_slice_gate_fails_naming_the_column_and_passes_when_loosened(small_adult: Reproduced, tmp_path: Path) -> None:
    project = copy_reproduced(small_adult, tmp_path)
    repo = project.repo
    set_params(
        repo,
        **{
            "train.candidates": LOGREG,
            "evaluate.slices": ["sex", "race", "age"],
            "gate.slices.max_difference": {"equalized_odds_difference": 0.01},
        },
    )
    with webhook_receiver() as hook:
        run_env = env(BENTOML_HOME=str(project.home), TABPIPE_WEBHOOK_URL=hook.url)
        failed = dvc("repro", cwd=repo, env=run_env, check=False)
    assert failed.returncode != 0
    found = read(repo, "metrics/slices.json")
    assert set(found) == {"sex", "race", "age"} and set(found["sex"]["slices"]) == {"Female", "Male"}
    assert len(found["age"]["slices"]) == 4  # quartile bins of a number
    test_rows = read(repo, "metrics/evaluate.json")["rows"]
    assert all(sum(s["rows"] for s in entry["slices"].values()) == test_rows for entry in found.values())
    assert any(not s["gated"] for s in found["race"]["slices"].values())  # a small race slice: reported, not gated
    difference = found["sex"]["equalized_odds_difference"]
    line = (
        f"gate: slices_sex_max_equalized_odds_difference: column sex: equalized_odds_difference {round(difference, 4)}"
    )
    assert line in failed.stderr
    assert any(line in json.dumps(message["body"]) for message in hook.received)
    bars = read(repo, "metrics/plots/slices.json")
    assert {"slice": "sex = Female", "metric": "roc_auc", "value": found["sex"]["slices"]["Female"]["roc_auc"]} in bars

    set_params(repo, **{"gate.slices.max_difference": {"equalized_odds_difference": 1.0}})
    passed = dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(project.home)))
    assert "Running stage 'gate'" in passed.stdout and "Running stage 'train'" not in passed.stdout
    flags = read(repo, "metrics/gate.json")
    assert flags["passed"] and flags["slices_sex_max_equalized_odds_difference"]
