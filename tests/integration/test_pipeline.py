"""The real pipeline: `dvc repro` and `dvc exp run` in a temporary git repository."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.commands import dvc, env
from tests.support.params import ONE_CORE, STRONG
from tests.support.projects import Reproduced, set_params

pytestmark = pytest.mark.integration


def test_repro_runs_the_pipeline_and_a_rerun_skips_every_stage(reproduced: Reproduced) -> None:
    """The shared project's `dvc repro` from nothing (the `golden` fixture) left every output, and a rerun
    skips every stage. (That a forced rerun gives every output's same bytes: test_faults, after a kill mid-run.)"""
    project = reproduced.repo
    for name in ("train.parquet", "test.parquet", "schema.json"):
        assert (project / "data/prepared" / name).is_file()
    metrics = json.loads((project / "metrics/validation.json").read_text())
    assert metrics["passed"] is True and metrics["rows_train"] + metrics["rows_test"] == 150
    assert (project / "reports/validation.html").is_file()

    assert "up to date" in dvc("status", cwd=project).stdout
    rerun = dvc("repro", cwd=project).stdout
    assert "Running stage" not in rerun and rerun.count("didn't change") == 8


def test_failed_validation_stops_repro_with_one_line_per_problem(project: Path) -> None:
    set_params(project, **{"validate.min_rows_per_class": 1000})
    result = dvc("repro", cwd=project, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 6  # 3 classes x 2 splits
    assert all("column 'species'" in line and "fewer than 1000" in line for line in errors)
    assert errors[0].startswith("error: data/prepared/train.parquet:")


def test_broken_user_csv_fails_ingest_without_traceback(project: Path) -> None:
    (project / "data/raw/mine.csv").write_text("a;b;label\n1;2;x\n")
    set_params(project, **{"data.dataset": "csv", "data.path": "data/raw/mine.csv", "data.target": "label"})
    result = dvc("repro", cwd=project, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "error: data/raw/mine.csv: column 'label': target column missing" in result.stderr


def test_user_csv_runs_and_writes_inferred_schema(project: Path) -> None:
    rows = "".join(f"{(i * 37) % 101},{['red', 'blue'][i % 2]},{['n', 'y'][(i // 2) % 2]}\n" for i in range(120))
    (project / "data/raw/mine.csv").write_text("size,colour,label\n" + rows)
    set_params(project, **{"data.dataset": "csv", "data.path": "data/raw/mine.csv", "data.target": "label"})
    dvc("repro", "validate", cwd=project)  # this toy data need not make a shippable model
    schema = json.loads((project / "data/prepared/schema.json").read_text())
    assert [f["name"] for f in schema["features"]] == ["size", "colour"]
    assert schema["classes"] == ["n", "y"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["adult", "employment"])
def test_exp_run_switches_dataset(project: Path, dataset: str) -> None:
    dvc("exp", "run", "-S", f"data.dataset={dataset}", cwd=project)
    metrics = json.loads((project / "metrics/validation.json").read_text())
    assert metrics["passed"] is True
    schema = json.loads((project / "data/prepared/schema.json").read_text())
    assert schema["name"] == dataset


@pytest.mark.slow
def test_a_million_synthetic_rows_run_end_to_end(project: Path, tmp_path: Path) -> None:
    """The whole pipeline on 1,000,000 rows (about 4 minutes; BENCHMARKS.md charts 100k to 1M).

    The steps that gain nothing from every row sample them, seeded; the winner is refitted on all.
    """
    set_params(project, **{"data.dataset": "synthetic", "data.synthetic.rows": 1_000_000})
    dvc("repro", cwd=project, env=env(BENTOML_HOME=str(tmp_path / "bentoml")), timeout=3600)
    validation = json.loads((project / "metrics/validation.json").read_text())
    assert validation["passed"] and (validation["rows_train"], validation["rows_test"]) == (750_000, 250_000)
    assert validation["drift_rows_train"] == validation["drift_rows_test"] == 50_000  # validate.sample_rows
    trained = json.loads((project / "metrics/train.json").read_text())
    assert max(trained["cv_rows"].values()) == 100_000  # train.search.max_rows
    assert len(pd.read_parquet(project / "data/prepared/train.parquet", columns=["informative_1"])) == 750_000
    evaluated = json.loads((project / "metrics/evaluate.json").read_text())
    assert evaluated["roc_auc"] > 0.95
    assert json.loads((project / "metrics/gate.json").read_text())["passed"] is True
    assert dvc("status", "--quiet", cwd=project, check=False).returncode == 0


def write_csv(path: Path, columns: list[str], classes: tuple[str, str] = ("stay", "leave")) -> None:
    """A separable two-class CSV: `signal` decides the class, the other columns are noise."""
    rng = np.random.default_rng(7)
    rows = 200
    signal = rng.normal(size=rows)
    values = {
        "signal": signal.round(4),
        "noise": rng.normal(size=rows).round(4),
        "extra": rng.normal(size=rows).round(4),
        "colour": rng.choice(["red", "green", "blue"], rows),
    }
    frame = pd.DataFrame({name: values[name] for name in columns})
    frame["label"] = np.where(signal > 0, classes[1], classes[0])
    frame.to_csv(path, index=False)


def test_a_csv_lineage_through_added_and_removed_columns_and_renamed_classes(project: Path, tmp_path: Path) -> None:
    """Each CSV registers its own model (tabpipe-<file name>); the gate says what changed and follows its policy."""
    from mlflow.tracking import MlflowClient

    run_env = env(BENTOML_HOME=str(tmp_path / "bentoml"))
    csv = project / "data/raw/churn.csv"
    set_params(
        project,
        **{"data.dataset": "csv", "data.path": "data/raw/churn.csv", "data.target": "label"},
        **{"train.candidates": STRONG, "train.cv_folds": 2, "evaluate.importance_repeats": 1, **ONE_CORE},
    )
    write_csv(csv, ["signal", "noise", "colour"])
    dvc("repro", cwd=project, env=run_env)

    write_csv(csv, ["signal", "noise", "colour", "extra"])
    added = dvc("repro", cwd=project, env=run_env)
    assert (
        "gate: the champion was trained on other data (columns added ['extra']): "
        "compared on the columns the champion knows" in added.stderr
    )

    write_csv(csv, ["signal", "colour", "extra"])
    removed = dvc("repro", cwd=project, env=run_env)
    assert "columns removed ['noise']); the champion cannot score this test set: shipped as a new lineage" in (
        removed.stderr
    )

    write_csv(csv, ["signal", "colour", "extra"], classes=("no", "yes"))
    set_params(project, **{"gate.champion.when_incomparable": "refuse"})
    renamed = dvc("repro", cwd=project, env=run_env, check=False)
    assert renamed.returncode != 0 and "Traceback" not in renamed.stderr
    refusal = [line for line in renamed.stderr.splitlines() if line.startswith("error: gate:")]
    assert refusal == [
        "error: gate: schema_accepted: the champion was trained on other data "
        "(classes ['leave', 'stay'] became ['no', 'yes']); the champion cannot score this test set: refused"
    ]
    registry = MlflowClient(
        tracking_uri=f"sqlite:///{project}/mlflow.db", registry_uri=f"sqlite:///{project}/mlflow.db"
    )
    versions = sorted(int(v.version) for v in registry.search_model_versions("name='tabpipe-churn'"))
    assert versions == [1, 2, 3]
