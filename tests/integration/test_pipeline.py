"""The real pipeline: `dvc repro` and `dvc exp run` in a temporary git repository."""

import json
from pathlib import Path

import pytest

from tests.helpers import dvc, set_params

pytestmark = pytest.mark.integration


def test_repro_runs_the_pipeline_and_is_repeatable(project: Path) -> None:
    dvc("repro", cwd=project)
    for name in ("train.parquet", "test.parquet", "schema.json"):
        assert (project / "data/prepared" / name).is_file()
    metrics = json.loads((project / "metrics/validation.json").read_text())
    assert metrics["passed"] is True and metrics["rows_train"] + metrics["rows_test"] == 150
    assert (project / "reports/validation.html").is_file()
    first = (project / "metrics/validation.json").read_bytes()

    assert "up to date" in dvc("status", cwd=project).stdout
    assert "didn't change" in dvc("repro", cwd=project).stdout

    dvc("repro", "--force", cwd=project)
    assert (project / "metrics/validation.json").read_bytes() == first


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
    rows = "".join(f"{i},{['red', 'blue'][i % 2]},{['n', 'y'][(i // 2) % 2]}\n" for i in range(120))
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
