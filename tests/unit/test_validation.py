"""The validate gate: honest random splits pass, a shifted test set fails and names the drifted columns."""

import logging
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.core import settings
from tabpipe.data import datasets, split, validation
from tabpipe.data.schema import Schema
from tests.support.params import params_section
from tests.support.paths import RAW, ROOT

VALIDATE = settings.read(ROOT / "params.yaml").section(settings.Validate)


def splits(dataset: str, seed: int) -> tuple[dict, datasets.Loaded]:
    loaded = datasets.load(params_section(settings.Data, dataset=dataset), ROOT, RAW, seed=0)
    train, test = split.train_test(loaded.frame, loaded.schema, test_size=0.25, seed=seed)
    return {"train.parquet": train, "test.parquet": test}, loaded


@pytest.mark.parametrize("seed", [0, 1, 2, 42])
def test_honest_iris_split_passes(seed: int) -> None:
    parts, loaded = splits("iris", seed)
    outcome = validation.validate(parts, loaded.schema, VALIDATE, seed=0)
    assert outcome.passed, outcome.failures
    assert outcome.metrics["passed"] is True
    assert outcome.metrics["drifted_share"] <= VALIDATE.drift.max_drifted_share
    assert outcome.metrics["rows_train"] + outcome.metrics["rows_test"] == 150


def test_shifted_test_set_fails_naming_columns() -> None:
    parts, loaded = splits("iris", 42)
    shifted = parts["test.parquet"].copy()
    shifted["petal_length"] = (shifted["petal_length"] * 1.8).clip(upper=30)
    shifted["sepal_width"] = (shifted["sepal_width"] + 1.5).clip(upper=30)
    outcome = validation.validate({**parts, "test.parquet": shifted}, loaded.schema, VALIDATE, seed=0)
    assert not outcome.passed
    (line,) = outcome.failures
    assert line.startswith("test.parquet: columns ")
    assert "petal_length" in line and "sepal_width" in line and "sepal_length" not in line
    assert outcome.metrics["drifted_columns"] == 2
    assert outcome.metrics["passed"] is False


def test_schema_failures_skip_drift_and_count() -> None:
    parts, loaded = splits("iris", 0)
    broken = parts["train.parquet"].copy()
    broken.loc[0, "species"] = "rose"
    broken.loc[1, "petal_width"] = 99.0
    outcome = validation.validate({**parts, "train.parquet": broken}, loaded.schema, VALIDATE, seed=0)
    assert outcome.report is None and "drifted_share" not in outcome.metrics
    assert outcome.metrics["checks_failed"] == 2
    assert any("column 'species'" in line and "rose" in line for line in outcome.failures)
    assert any("column 'petal_width'" in line and "outside" in line for line in outcome.failures)


def test_per_dataset_overrides_apply_only_to_their_dataset() -> None:
    params = params_section(
        settings.Validate,
        max_duplicate_share=0.05,
        drift={**VALIDATE.drift.model_dump(), "num_threshold": 0.01, "cat_threshold": 0.1},
        per_dataset={"toy": {"max_duplicate_share": 0.5, "drift": {"cat_threshold": 0.2}}},
    )
    toy = params.for_dataset("toy")
    assert toy.max_duplicate_share == 0.5
    assert (toy.drift.num_threshold, toy.drift.cat_threshold) == (0.01, 0.2)
    assert toy.drift == params.drift.model_copy(update={"cat_threshold": 0.2})
    assert params.for_dataset("other").max_duplicate_share == 0.05


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["adult", "employment"])
def test_honest_split_of_bundled_data_passes(dataset: str) -> None:
    parts, loaded = splits(dataset, 42)
    outcome = validation.validate(parts, loaded.schema, VALIDATE, seed=0)
    assert outcome.passed, outcome.failures


def test_report_is_written_as_html(tmp_path: Path) -> None:
    parts, loaded = splits("iris", 42)
    outcome = validation.validate(parts, loaded.schema, VALIDATE, seed=0)
    outcome.report.save_html(str(tmp_path / "r.html"))
    assert "<html" in (tmp_path / "r.html").read_text()[:2000].lower()


def synthetic_splits(rows: int) -> tuple[dict[str, pd.DataFrame], Schema]:
    data = params_section(settings.Data, dataset="synthetic")
    data = data.model_copy(update={"synthetic": data.synthetic.model_copy(update={"rows": rows})})
    prepared = datasets.prepare(data, 42, ROOT, RAW)
    return {"train.parquet": prepared.train, "test.parquet": prepared.test}, prepared.schema


def untimed(messages: list[str]) -> list[str]:
    """Log lines with their seconds blanked: those differ from run to run."""
    return [re.sub(r"\d+\.\d s\b", "N s", message) for message in messages]


def test_drift_and_report_see_a_seeded_sample_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    parts, schema = synthetic_splits(4000)
    with caplog.at_level(logging.INFO, logger="validate"):
        outcome = validation.validate(parts, schema, VALIDATE.model_copy(update={"sample_rows": 400}), seed=0)
    assert outcome.passed, outcome.failures
    train, test = len(parts["train.parquet"]), len(parts["test.parquet"])
    assert (outcome.metrics["rows_train"], outcome.metrics["rows_test"]) == (train, test)
    assert (outcome.metrics["drift_rows_train"], outcome.metrics["drift_rows_test"]) == (400, 400)
    counted = [m["value"] for m in outcome.report.dict()["metrics"] if m["metric_name"] == "RowCount()"]
    assert counted and set(counted) == {400}
    features, drifted = len(schema.feature_names), outcome.metrics["drifted_columns"]
    assert untimed(caplog.messages) == [
        f"drift and report on a seeded sample of 400 of {train} train rows and 400 of {test} test rows"
        " (validate.sample_rows)",
        f"loading Evidently for the drift tests on {features} features and the data summary",
        "Evidently loaded in N s; running them",
        f"drift tests and data summary done in N s: {drifted} of {features} features drifted",
    ]


def test_sample_rows_zero_or_above_the_split_size_means_every_row(caplog: pytest.LogCaptureFixture) -> None:
    parts, schema = synthetic_splits(400)
    for rows in (0, 400):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="validate"):
            outcome = validation.validate(parts, schema, VALIDATE.model_copy(update={"sample_rows": rows}), seed=0)
        train, test = len(parts["train.parquet"]), len(parts["test.parquet"])
        assert (outcome.metrics["drift_rows_train"], outcome.metrics["drift_rows_test"]) == (train, test)
        assert caplog.messages[0] == (
            f"drift and report on all rows: {train} of {train} train rows and {test} of {test} test rows"
            " (validate.sample_rows)"
        )


def test_the_checks_catch_one_bad_row_outside_the_sample() -> None:
    parts, schema = synthetic_splits(4000)
    limits = VALIDATE.model_copy(update={"sample_rows": 100})
    train = parts["train.parquet"]
    unsampled = train.index.difference(validation.sample(train, limits.sample_rows, 0).index)
    broken = train.copy()
    broken.loc[unsampled[0], "informative_1"] = 1000.0
    broken.loc[unsampled[-1], "noise_colour"] = "teal"
    outcome = validation.validate({**parts, "train.parquet": broken}, schema, limits, seed=0)
    assert outcome.metrics["checks_failed"] == 2
    assert any("'informative_1': 1 values outside" in line for line in outcome.failures)
    assert any("'noise_colour': 1 unknown categories, such as 'teal'" in line for line in outcome.failures)


@given(rows=st.integers(0, 300), wanted=st.integers(0, 400), seed=st.integers(0, 2**32 - 1))
def test_a_sample_is_seeded_and_at_most_the_rows_asked_for(rows: int, wanted: int, seed: int) -> None:
    frame = pd.DataFrame({"x": range(rows)})
    sampled = validation.sample(frame, wanted, seed)
    assert len(sampled) == (min(wanted, rows) if wanted else rows)
    assert sampled.index.is_unique and sampled.index.isin(frame.index).all()
    assert sampled.equals(validation.sample(frame, wanted, seed))
