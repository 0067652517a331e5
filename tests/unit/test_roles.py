"""A raw export by path and target alone: columns that are not features set aside, rows without a target counted,
CSV and Parquet alike."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Data, Validate
from tabpipe.data import checks, datasets, roles
from tabpipe.data.schema import Schema
from tests.support.data import split_of
from tests.support.params import params_section
from tests.support.paths import RAW


def export(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """What a CRM export looks like: an id, a row number, a date, a mostly empty note, spaced names, a constant."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    churned = np.where((age < 30) ^ (plan == "pro") ^ (rng.random(rows) < 0.1), "yes", "no").astype(object)
    churned[[3, 7]] = None
    notes = [f"customer called on a Tuesday about invoice {i} and asked for a refund" for i in range(rows)]
    return pd.DataFrame(
        {
            "Customer ID": [f"C-{i:06d}" for i in rng.permutation(rows)],
            "row": np.arange(1, rows + 1),
            "Signup Date": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "Age (years)": age,
            "Plan Type": plan,
            "Monthly Spend": rng.gamma(2.0, 30.0, rows).round(2),
            "Source": "crm",
            "Comments": [note if i % 7 == 0 else None for i, note in enumerate(notes)],
            "Churned?": churned,
        }
    )


def prepare(path: Path, **params) -> datasets.Prepared:
    data = params_section(Data, dataset="csv", path=str(path), target="Churned?", **params)
    return datasets.prepare(data, 42, Path("/"), RAW)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_raw_export_runs_by_path_and_target_alone(
    tmp_path: Path, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / f"export{suffix}"
    frame = export()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    with caplog.at_level(logging.INFO):
        prepared = prepare(path)
    schema = prepared.schema
    parts = [f"Signup Date.{p}" for p in ("year", "month", "day", "weekday")]
    assert schema.feature_names == ["Age (years)", "Plan Type", "Monthly Spend", *parts]
    assert schema.dates == (("Signup Date", "%Y-%m-%d"),) and schema.meta == ("Signup Date",)
    assert schema.request_names == ["Age (years)", "Plan Type", "Monthly Spend", "Signup Date"]
    assert prepared.train["Signup Date.year"].between(2024, 2025).all()
    reasons = dict(schema.set_aside)
    assert set(reasons) == {"Customer ID", "row", "Source", "Comments"}
    assert reasons["Customer ID"].startswith("an identifier") and reasons["row"].startswith("a row counter")
    assert reasons["Source"] == "constant: 'crm' on every row" and reasons["Comments"].startswith("free text")
    assert "column 'Signup Date': a date (%Y-%m-%d), learned from as Signup Date.year" in caplog.text
    assert "column 'Comments': set aside, free text" in caplog.text
    assert "data.column_types keeps it as a feature" in caplog.text
    assert "column 'Churned?': 2 of 400 rows have no target; set aside" in caplog.text
    summary = prepared.summary
    assert summary == {
        "rows": 398,
        "rows_without_target": 2,
        "columns_set_aside": 4,
        "train_rows": len(prepared.train),
        "test_rows": len(prepared.test),
    }
    assert summary["train_rows"] + summary["test_rows"] == 398
    assert len(prepared.train) + len(prepared.test) == 398
    assert list(prepared.train.columns) == schema.columns
    assert Schema.from_dict(schema.to_dict()) == schema and schema.to_dict()["set_aside"] == reasons
    assert not checks.run_all(prepared.train, schema, params_section(Validate))


def test_the_same_rows_from_csv_and_parquet_give_the_same_splits(tmp_path: Path) -> None:
    frame = export()
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    csv, parquet = prepare(tmp_path / "a.csv"), prepare(tmp_path / "a.parquet")
    assert csv.schema.set_aside == parquet.schema.set_aside
    pd.testing.assert_frame_equal(csv.train, parquet.train, check_dtype=False)


def test_exclude_and_declared_types_decide_over_the_inference(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    export().to_csv(tmp_path / "a.csv", index=False)
    with caplog.at_level(logging.INFO):
        prepared = prepare(tmp_path / "a.csv", exclude=["Plan Type"], column_types={"Source": "categorical"})
    reasons = dict(prepared.schema.set_aside)
    assert reasons["Plan Type"] == "named by data.exclude" and "Source" not in reasons
    assert "Source" in prepared.schema.feature_names
    assert "column 'Plan Type': set aside, named by data.exclude; remove it there" in caplog.text
    with pytest.raises(PipelineError, match=r"data\.exclude names the target column 'Churned\?'"):
        prepare(tmp_path / "a.csv", exclude=["Churned?"])
    with pytest.raises(PipelineError, match=r"data\.exclude names column 'Plan', which the data lacks"):
        prepare(tmp_path / "a.csv", exclude=["Plan"])


def test_a_table_without_any_target_or_unreadable_as_parquet_is_one_line(tmp_path: Path) -> None:
    frame = export().assign(**{"Churned?": None})
    frame.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(PipelineError, match=r"a\.csv: column 'Churned\?': no row has a target$"):
        prepare(tmp_path / "a.csv")
    (tmp_path / "b.parquet").write_text("not parquet")
    with pytest.raises(PipelineError, match=r"b\.parquet: cannot be read as Parquet \("):
        prepare(tmp_path / "b.parquet")
    with pytest.raises(PipelineError, match=r"c\.parquet: file not found"):
        prepare(tmp_path / "c.parquet")


def test_missing_values_refused_say_which_parameters_change_the_rule() -> None:
    from tabpipe.data.schema import Feature

    schema = Schema("t", (Feature("x", "numeric", 0.0, 1.0, nullable=True),), "y", ("a", "b"))
    frame = pd.DataFrame({"x": [None, None, 0.5, None], "y": ["a", "b", "a", "b"]})
    (problem,) = checks.missing_share(frame, schema, 0.2)
    assert problem.message.endswith("(validate.max_missing_share; data.exclude sets the column aside)")


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=roles.MIN_ROWS, max_size=60))
def test_measurements_are_features(values: list[float]) -> None:
    """Numbers are features unless constant, a counter, or unique whole numbers named like an id."""
    series = pd.Series(values)
    reason = roles.role(series, "weight")
    if series.nunique() <= 1:
        assert reason is not None and reason.startswith("constant")
    elif reason is not None:
        assert reason.startswith("a row counter") and series.is_unique


@given(st.integers(roles.MIN_ROWS, 300), st.integers(-50, 50))
def test_counters_and_ids_are_set_aside_at_any_length(rows: int, start: int) -> None:
    counter = pd.Series(range(start, start + rows))
    assert roles.role(counter, "Row No").startswith("a row counter")
    assert roles.role(counter[::-1].reset_index(drop=True), "index").startswith("a row counter")
    assert roles.role(pd.Series(range(1, rows + 1)), "serial").startswith("a row counter")  # starts at 1
    assert roles.role(pd.Series(np.arange(rows) // 2 + 20), "age") is None  # sorted by a feature, with repeats
    assert roles.role(pd.Series([None] * rows, dtype=object), "note") == "empty: no value on any row"
    assert roles.role(pd.Series([[i, i + 1] for i in range(rows)]), "tags").startswith("nested values")
    shuffled = pd.Series(np.random.default_rng(rows).permutation(counter.to_numpy()))
    assert roles.role(shuffled, "user_id").startswith("an identifier") and roles.role(shuffled, "weight") is None


def test_a_parquet_column_of_lists_is_set_aside_not_a_traceback(tmp_path: Path) -> None:
    frame = export().assign(tags=[["a", "b"] if i % 2 else ["c"] for i in range(400)])
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    prepared = prepare(tmp_path / "a.parquet")
    assert dict(prepared.schema.set_aside)["tags"].startswith("nested values")
    assert "tags" not in prepared.train.columns


@given(st.integers(roles.MIN_ROWS * 2, 400), st.integers(0, 10_000), st.sampled_from(["row_number", "n", "serial"]))
def test_a_sample_of_a_file_gives_its_counter_the_same_role_as_the_whole_file(rows: int, seed: int, name: str) -> None:
    """A counter with gaps (a sample of the file, rows dropped by an export) is set aside as the whole one is;
    a column named like a counter is set aside in any order."""
    counter = pd.Series(range(1, rows + 1), dtype="int64")
    rng = np.random.default_rng(seed)
    sample = counter[rng.random(rows) < 0.7].reset_index(drop=True)
    if len(sample) >= roles.MIN_ROWS:
        assert roles.role(sample, name).startswith("a row counter")
    assert roles.role(counter, name).startswith("a row counter")
    if name != "serial":
        assert roles.role(pd.Series(rng.permutation(counter.to_numpy())), name).startswith("a row counter")


def test_a_sample_of_an_export_and_the_whole_export_give_the_same_columns_and_splits(tmp_path: Path) -> None:
    """A random 70% of the rows in file order, then the whole file under the same name (issue 39's scenario):
    the same features and columns set aside, and every row of the sample keeps its split in the whole."""
    frame = export(600).rename(columns={"row": "row_number"})
    sample = frame[np.random.default_rng(5).random(len(frame)) < 0.7]
    sample.to_csv(tmp_path / "part.csv", index=False)
    frame.to_parquet(tmp_path / "whole.parquet", index=False)
    part, whole = prepare(tmp_path / "part.csv", name="crm"), prepare(tmp_path / "whole.parquet", name="crm")
    assert part.schema.feature_names == whole.schema.feature_names
    assert dict(part.schema.set_aside).keys() == dict(whole.schema.set_aside).keys() >= {"row_number", "Customer ID"}

    before = split_of(part.train, part.test, part.schema.identity)
    after = split_of(whole.train, whole.test, whole.schema.identity)
    assert len(before) > 300 and all(after[h] == where for h, where in before.items())
