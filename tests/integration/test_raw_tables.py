"""A raw export through the real pipeline and `bentoml serve`: columns set aside, a date learned from as its
parts and served as the text the file had, rows without a target counted."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.client import post
from tests.support.commands import dvc, env
from tests.support.data import churn_table
from tests.support.params import ONE_CORE, STRONG
from tests.support.projects import set_params
from tests.support.servers import serving

pytestmark = pytest.mark.integration


def export(rows: int) -> pd.DataFrame:
    """An export as teams get one: an id, a row number, a signup date, a mostly empty note, spaced names."""
    frame = churn_table(rows).rename(columns={"plan": "Plan Type", "spend": "Monthly Spend ($)"})
    frame.insert(0, "row", np.arange(1, rows + 1))
    days = pd.to_datetime("2023-01-01") + pd.to_timedelta(np.random.default_rng(1).integers(0, 700, rows), "D")
    frame["Signup Date"] = days.strftime("%Y-%m-%d")
    frame["note"] = [
        f"called about invoice {i}, wants a discount on the plan" if i % 6 == 0 else None for i in range(rows)
    ]
    frame.loc[[5, 50, 500], "churned"] = None
    return frame


def test_a_raw_export_with_a_date_is_trained_and_served_as_the_file_had_it(project: Path, tmp_path: Path) -> None:
    repo, home = project, tmp_path / "store"
    export(1200).to_csv(repo / "data/raw/export.csv", index=False)
    params = {"data.dataset": "csv", "data.path": "data/raw/export.csv", "data.target": "churned"}
    set_params(repo, **params, **{"train.candidates": STRONG, "train.cv_folds": 2, "gate.min.roc_auc": 0.5, **ONE_CORE})
    set_params(repo, **{"gate.min.f1_macro": 0.3, "evaluate.importance_repeats": 1})
    dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(home)))

    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    assert set(schema["set_aside"]) == {"customer_id", "row", "note"}
    assert schema["dates"] == {"Signup Date": "%Y-%m-%d"}
    names = [f["name"] for f in schema["features"]]
    assert "Signup Date.month" in names and "customer_id" not in names
    assert json.loads((repo / "metrics/ingest.json").read_text())["rows_without_target"] == 3

    test = pd.read_parquet(repo / "data/prepared/test.parquet")
    request_names = ["Plan Type", "age", "Monthly Spend ($)", "Signup Date"]
    rows = test[request_names].head(20).astype(object).to_dict(orient="records")
    saved = pd.read_parquet(repo / "data/predictions/test.parquet").head(20)
    with serving(repo, home) as url:
        status, answer = post(url, {"rows": rows})
        assert status == 200, answer
        assert [p["label"] for p in answer["predictions"]] == saved["predicted"].tolist()
        served = np.array([p["probabilities"]["yes"] for p in answer["predictions"]])
        assert np.abs(served - saved["proba_yes"].to_numpy()).max() <= 1e-9

        status, answer = post(url, {"rows": [{**rows[0], "Signup Date": "31/12/2024"}]})
        assert status == 400 and answer["detail"][0]["loc"][-1] == "Signup Date"
        assert "not a date in this column's format (%Y-%m-%d" in answer["detail"][0]["msg"]
        status, answer = post(url, {"rows": [{**rows[0], "Signup Date": None}]})
        assert status == 200 and answer["predictions"][0]["label"] in ("no", "yes")
        status, _ = post(url, {"rows": [{**rows[0], "Signup Date.year": 2024.0}]})
        assert status == 400  # a date's parts are derived, never sent


def adult_export(rows: int = 14_650, seed: int = 0) -> pd.DataFrame:
    """Adult as a raw export: an identifier, a row number, a signup date, a free-text note 85% empty,
    spaced column names, and 25 rows without a target (issue 27's goal)."""
    from tests.support.paths import RAW

    rng = np.random.default_rng(seed)
    frame = pd.read_parquet(RAW / "adult.parquet").sample(rows, random_state=seed).reset_index(drop=True)
    frame.columns = [c.replace("-", " ").title() for c in frame.columns]
    frame.insert(0, "Customer ID", [f"A{i:07d}" for i in rng.permutation(rows)])
    frame.insert(1, "Row No", np.arange(1, rows + 1))
    days = pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), "D")
    frame["Signup Date"] = days.strftime("%Y-%m-%d")
    frame["Note"] = [f"asked about plan change, ticket {i}" if rng.random() < 0.15 else None for i in range(rows)]
    frame.loc[rng.choice(rows, 25, replace=False), "Income"] = None
    return frame


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_adult_export_by_path_and_target_alone_meets_the_goal(project: Path, tmp_path: Path, suffix: str) -> None:
    """About 2 minutes each: pytest -m slow tests/integration/test_raw_tables.py (BENCHMARKS.md, Raw tables)."""
    path = project / f"data/raw/adult_export{suffix}"
    frame = adult_export()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    set_params(project, **{"data.dataset": "csv", "data.path": str(path.relative_to(project)), "data.target": "Income"})
    dvc("repro", cwd=project, env=env(BENTOML_HOME=str(tmp_path / "store")), timeout=3600)
    schema = json.loads((project / "data/prepared/schema.json").read_text())
    assert {"Customer ID", "Row No", "Note"} <= set(schema["set_aside"])
    assert schema["dates"] == {"Signup Date": "%Y-%m-%d"}
    assert json.loads((project / "metrics/ingest.json").read_text())["rows_without_target"] == 25
    accuracy = json.loads((project / "metrics/evaluate.json").read_text())["accuracy"]
    print(f"{suffix}: accuracy {accuracy}, set aside {sorted(schema['set_aside'])}")
    assert accuracy >= 0.85
