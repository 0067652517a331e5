"""Regression data: the task chosen from the target or declared, and a regression table through ingest and checks."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Data, Validate
from tabpipe.data import checks, datasets, split
from tabpipe.data.schema import Schema
from tabpipe.task import choose, tasks
from tests.support.params import params_section
from tests.support.paths import RAW

VALIDATE = params_section(Validate)


@given(st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=3), min_size=2).filter(lambda v: len(set(v)) > 1))
def test_text_targets_are_classes(values: list[str]) -> None:
    chosen = choose.choose(pd.Series(values), "auto", "y")
    assert chosen.task == "classification" and "holds text" in chosen.reason


@given(st.integers(2, choose.MAX_CLASSES), st.integers(-1000, 1000))
def test_few_whole_numbers_are_classes_and_many_are_a_quantity(distinct: int, offset: int) -> None:
    few = pd.Series([float(offset + i % distinct) for i in range(3 * distinct)])
    assert choose.choose(few, "auto", "y").task == "classification"
    many = pd.Series([float(offset + i) for i in range(choose.MAX_CLASSES + distinct)])
    chosen = choose.choose(many, "auto", "y")
    assert chosen.task == "regression" and "data.task: classification" in chosen.reason


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2).filter(lambda v: any(x != round(x) for x in v)))
def test_fractional_numbers_are_a_quantity_unless_declared_classes(values: list[float]) -> None:
    series = pd.Series(values)
    if series.nunique() < 2:
        return
    assert choose.choose(series, "auto", "y").task == "regression"
    assert choose.choose(series, "classification", "y") == choose.Chosen(
        "classification", "data.task is classification"
    )


@pytest.mark.parametrize(
    ("values", "declared", "message"),
    [
        (["a", "a", None], "auto", "column 'y': one value (a) on every labelled row"),
        ([2.5, 2.5], "regression", "column 'y': one value (2.5) on every labelled row"),
        ([1.5, "cheap", 3.0], "regression", "column 'y': 'cheap' is not a number, and data.task is regression"),
        ([1.5, math.inf, 3.0], "regression", "column 'y': 1 rows are infinite; a target must be finite"),
        ([1.5, -math.inf, 3.0, 0.25], "auto", "column 'y': 1 rows are infinite"),
    ],
)
def test_a_target_that_fits_no_task_is_one_line_naming_the_column(values: list, declared: str, message: str) -> None:
    with pytest.raises(PipelineError) as error:
        choose.choose(pd.Series(values, dtype=object), declared, "y")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def diabetes_csv(folder: Path) -> Path:
    """scikit-learn's diabetes data (442 rows, a whole-number target with 214 values), as a user's CSV."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    path = folder / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path


def test_diabetes_by_path_and_target_alone_is_a_regression_split_by_its_quantiles(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = params_section(Data, dataset="csv", path=str(diabetes_csv(tmp_path)), target="target")
    with caplog.at_level(logging.INFO):
        prepared = datasets.prepare(data, 42, Path("/"), RAW)
    assert "task: regression (column 'target' holds 214 distinct whole numbers;" in caplog.text
    schema = prepared.schema
    assert (schema.task, schema.classes, schema.target) == ("regression", (), "target")
    assert len(schema.features) == 10 and schema.numeric == schema.feature_names
    train, test = prepared.train["target"], prepared.test["target"]
    assert len(train) + len(test) == 442
    assert train.dtype == test.dtype == np.float64
    # Each row's own hash splits it: every decile of the target lands in the test part within the stated tolerance.
    edges = np.quantile(pd.concat([train, test]), np.linspace(0, 1, 11)[1:-1])
    in_train, in_test = (np.bincount(np.searchsorted(edges, p, side="right"), minlength=10) for p in (train, test))
    for rows, tested in zip(in_train + in_test, in_test, strict=True):
        assert abs(tested / rows - 0.25) <= split.share_tolerance(int(rows), 0.25), (in_train, in_test)
    again = datasets.prepare(data, 42, Path("/"), RAW)
    pd.testing.assert_frame_equal(again.test, prepared.test)
    with pytest.raises(PipelineError, match=r"diabetes\.csv: column 'target': 'many' is not a number"):
        frame = pd.read_csv(tmp_path / "diabetes.csv").astype({"target": object})
        frame.loc[3, "target"] = "many"
        frame.to_csv(tmp_path / "diabetes.csv", index=False)
        datasets.prepare(data.model_copy(update={"task": "regression"}), 42, Path("/"), RAW)


def test_a_declared_task_wins_over_the_target(tmp_path: Path) -> None:
    data = params_section(Data, dataset="csv", path=str(diabetes_csv(tmp_path)), target="target", task="classification")
    loaded = datasets.load(data, Path("/"), RAW, seed=0)
    assert loaded.schema.task == "classification" and len(loaded.schema.classes) == 214


def test_california_is_bundled_as_a_regression_dataset(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        prepared = datasets.prepare(params_section(Data, dataset="california"), 42, Path("/"), RAW)
    assert "task: regression (california declares it)" in caplog.text
    assert prepared.schema.target == "MedHouseVal" and prepared.schema.task == "regression"
    assert len(prepared.train) + len(prepared.test) == 20_640  # a test share within 0.01 of 0.25 (sd 0.003)
    assert abs(len(prepared.test) / 20_640 - 0.25) < 0.01
    assert not checks.run_all(prepared.train, prepared.schema, VALIDATE)
    with pytest.raises(PipelineError, match=r"data\.task is classification, but california is a regression dataset"):
        datasets.load(params_section(Data, dataset="california", task="classification"), Path("/"), RAW, seed=0)


def regression_schema() -> Schema:
    from tabpipe.data.schema import Feature

    return Schema("toy", (Feature("x", "numeric", 0.0, 10.0),), "y", (), task="regression")


def test_regression_checks_want_a_finite_number_on_every_row_and_count_no_classes() -> None:
    schema = regression_schema()
    good = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.5]})
    assert checks.run_all(good, schema, VALIDATE) == []
    bad = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, math.inf, None]})
    assert {(p.column, p.check) for p in checks.structure(bad, schema)} == {
        ("y", "missing_labels"),
        ("y", "infinite_target"),
    }
    text = pd.DataFrame({"x": [1.0, 2.0], "y": ["cheap", "dear"]})
    (problem,) = checks.types(text, schema)
    assert (problem.column, problem.check) == ("y", "dtype") and "regression target" in problem.message


@given(st.integers(4, 400), st.floats(0.1, 0.9))
def test_quantile_strata_split_any_size_with_every_bin_in_both_parts(rows: int, share: float) -> None:
    from sklearn.model_selection import train_test_split

    assume(rows * min(share, 1 - share) >= 1)  # smaller, no split exists (a one-line error: the next test)
    target = pd.Series(np.random.default_rng(rows).normal(size=rows))
    bins = split.strata(target, share)
    assert 1 <= bins.nunique() <= 10
    assert bins.value_counts().min() >= 2 or bins.nunique() == 1
    train, test = train_test_split(bins, test_size=share, random_state=0, stratify=bins)
    assert set(train) == set(test) == set(bins)


def run_stage(name: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The stage's main() as `python -m stages.<name>` runs it, in the current folder; its error lines."""
    import importlib
    import sys

    from tabpipe.core import stage
    from tests.support.commands import stage_argv

    sys.argv = stage_argv(name)
    try:
        stage.run(importlib.import_module(f"stages.{name}").main)
    except SystemExit as stopped:
        assert stopped.code == 1
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_a_regression_is_featurized_trained_recorded_compiled_evaluated_and_gated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Diabetes by path and target: the regressors race by RMSE, MLflow records the winner, ONNX serves it,
    its intervals cover about their level of test rows, and the gate checks the regression's rules."""
    import joblib
    import mlflow
    import yaml

    from tabpipe.data import prepared
    from tabpipe.tracking import backend
    from tests.support.paths import ROOT

    data = params_section(Data, dataset="csv", path=str(diabetes_csv(tmp_path)), target="target")
    prepared.write(tmp_path / "data/prepared", datasets.prepare(data, 42, Path("/"), RAW), "csv")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    candidates = params["train"]["regression"]["candidates"]
    candidates["forest"]["fixed"]["n_estimators"] = 20  # cheaper trees: this test is about the task, not the search
    # About 110 test rows: the coverage's standard error (0.029) is the default tolerance's size, so allow 3.5 of them.
    params["gate"]["regression"]["interval_tolerance"] = 0.1
    candidates["lightgbm"]["fixed"]["n_estimators"] = 50
    del candidates["boosting"]
    params["train"]["n_jobs"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", backend.tracking_uri(tmp_path))

    assert run_stage("featurize", capsys) == []
    assert run_stage("train", capsys) == []
    summary = yaml.safe_load((tmp_path / "metrics/train.json").read_text())
    assert set(summary["cv"]) == {"linear", "forest", "lightgbm"}
    assert all(-100 < score < -40 for score in summary["cv"].values()), summary  # -RMSE of a 25-346 target
    model = joblib.load(tmp_path / "models/model.joblib")
    test = prepared.read_split(Path("data/prepared"), "test").drop(columns="target")
    assert not hasattr(model, "predict_proba") and model.predict(test).dtype.kind == "f"
    winners = mlflow.search_runs(search_all_experiments=True, filter_string="tags.winner = 'true'")
    assert list(winners["tags.candidate"]) == [summary["winner"]]

    assert run_stage("compile", capsys) == []
    agreement = yaml.safe_load((tmp_path / "metrics/compile.json").read_text())
    assert agreement["runtime"] == "onnx" and agreement["max_relative_difference"] < 1e-5, agreement
    assert summary["interval"]["level"] == 0.9 and summary["interval"]["halfwidth"] > 0
    assert run_stage("evaluate", capsys) == []
    found = yaml.safe_load((tmp_path / "metrics/evaluate.json").read_text())
    assert set(found) == {"rmse", "mae", "r2", "rows", "interval_level", "interval_coverage", "interval_width"}
    assert 40 < found["rmse"] < 80 and 0.2 < found["r2"] < 0.7 and found["rows"] == len(test)
    assert found["interval_width"] == pytest.approx(2 * summary["interval"]["halfwidth"], abs=1e-6)
    table = pd.read_parquet(tmp_path / "data/predictions/test.parquet")
    inside = (table["actual"] >= table["lower"]) & (table["actual"] <= table["upper"])
    assert found["interval_coverage"] == pytest.approx(inside.mean(), abs=1e-6)
    assert abs(found["interval_coverage"] - 0.9) <= 0.1  # ~110 rows: 3.5 times the coverage's standard error, 0.029
    points = yaml.safe_load((tmp_path / "metrics/plots/actual.json").read_text())
    assert len(points) == len(test) and set(points[0]) == {"actual", "predicted"}
    assert yaml.safe_load((tmp_path / "metrics/plots/roc.json").read_text()) == []
    assert run_stage("gate", capsys) == []
    flags = yaml.safe_load((tmp_path / "metrics/gate.json").read_text())
    assert flags["passed"] and flags["interval_coverage"] and flags["compiled_values"] and "min_r2" in flags


def test_a_task_searches_only_estimators_that_learn_it() -> None:
    from tabpipe.core.settings import Train
    from tabpipe.model import training

    train = params_section(Train)
    regressors = train.regression.candidates
    wrong = train.regression.model_copy(update={"candidates": {**regressors, "logreg": train.candidates["logreg"]}})
    expected = r"train\.regression\.candidates holds estimators that do not learn regression: logreg \(logistic_"
    with pytest.raises(PipelineError, match=expected):
        training.for_task(train.model_copy(update={"regression": wrong}), tasks.of("regression"))
    assert training.for_task(train, tasks.of("classification")) is train
    assert training.for_task(train, tasks.of("regression")).candidates == regressors


def test_a_regression_too_small_to_split_is_one_line() -> None:
    frame = pd.DataFrame({"x": [1.0], "y": [2.5]})
    with pytest.raises(PipelineError, match=r"data\.test_size 0\.25 leaves the test split of 1 rows empty"):
        split.train_test(frame, regression_schema(), test_size=0.25, seed=0)
