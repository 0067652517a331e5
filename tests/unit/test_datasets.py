"""Loaders: where each dataset comes from, and a clear error for every unreadable input."""

import logging
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Data
from tabpipe.data import datasets, frames
from tabpipe.data.schema import Schema
from tests.support.params import params_section
from tests.support.paths import RAW, ROOT

IRIS_HEADER = "sepal_length,sepal_width,petal_length,petal_width,species\n"


def iris(tmp_path: Path, text: str | None) -> datasets.Loaded:
    path = tmp_path / "iris.csv"
    if text is not None:
        path.write_text(text)
    return datasets.load(params_section(Data, dataset="iris", iris_csv=str(path)), Path("/"), RAW, seed=0)


def valid_iris_csv() -> str:
    rows = [
        f"{5 + i % 3 * 0.1:.1f},3.0,{1 + i % 3},0.2,{['setosa', 'versicolor', 'virginica'][i % 3]}" for i in range(30)
    ]
    return IRIS_HEADER + "\n".join(rows) + "\n"


def test_iris_missing_csv_falls_back_to_sklearn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        loaded = iris(tmp_path, None)
    assert loaded.source == "sklearn.datasets.load_iris"
    assert len(loaded.frame) == 150
    assert "not found" in caplog.text


@pytest.mark.parametrize("text", ["", IRIS_HEADER])
def test_iris_empty_csv_falls_back_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str) -> None:
    with caplog.at_level(logging.INFO):
        loaded = iris(tmp_path, text)
    assert loaded.source == "sklearn.datasets.load_iris"
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_iris_valid_csv_is_used(tmp_path: Path) -> None:
    loaded = iris(tmp_path, valid_iris_csv())
    assert loaded.source.endswith("iris.csv")
    assert len(loaded.frame) == 30
    assert loaded.frame["petal_length"].dtype == "float64"


@pytest.mark.parametrize(
    ("text", "column", "problem"),
    [
        (valid_iris_csv().replace(",setosa", ",rose", 1), "species", "unknown labels"),
        (valid_iris_csv().replace("sepal_width", "sepal_wide"), "sepal_width", "missing"),
        (valid_iris_csv().replace("3.0", "three", 1), "sepal_width", "expected numbers"),
    ],
)
def test_iris_invalid_csv_is_an_error_not_a_fallback(tmp_path: Path, text: str, column: str, problem: str) -> None:
    with pytest.raises(PipelineError) as error:
        iris(tmp_path, text)
    assert "iris.csv" in str(error.value)
    assert f"column '{column}'" in str(error.value)
    assert problem in str(error.value)


def user_csv(tmp_path: Path, text: str | bytes, **params: object) -> datasets.Loaded:
    path = tmp_path / "user.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    # column types and missing markers are the test's own: none unless given
    data = {"dataset": "csv", "path": str(path), "target": "label", "column_types": {}, "missing_markers": [], **params}
    return datasets.load(params_section(Data, **data), Path("/"), RAW, seed=0)


def user_rows(n: int = 40) -> str:
    ages = [20 + i * 7 % n for i in range(n)]  # different on every row, in no order (rising, it would be a counter)
    return "age,city,label\n" + "".join(f"{ages[i]}, {['a', 'b'][i % 2]} ,{['no', 'yes'][i % 2]}\n" for i in range(n))


def test_user_csv_infers_schema_and_strips_values(tmp_path: Path) -> None:
    loaded = user_csv(tmp_path, user_rows())
    schema = loaded.schema
    assert schema.numeric == ["age"] and schema.categorical == ["city"]
    assert schema.classes == ("no", "yes")
    assert schema.feature("city").categories == ("a", "b")
    assert schema.feature("age").minimum == 20 and schema.feature("age").maximum == 59
    assert Schema.from_dict(schema.to_dict()) == schema


def test_user_csv_type_override_and_markers(tmp_path: Path) -> None:
    text = user_rows().replace("21, b", "?, b", 1)
    loaded = user_csv(tmp_path, text, column_types={"age": "categorical"}, missing_markers=["?"])
    assert loaded.schema.categorical == ["age", "city"]
    assert loaded.frame["age"].isna().sum() == 1
    assert loaded.schema.feature("age").nullable


def test_numeric_target_labels_read_as_people_write_them(tmp_path: Path) -> None:
    text = "x,label\n" + "".join(f"{i},{float(i % 2)}\n" for i in range(20))
    loaded = user_csv(tmp_path, text)
    assert loaded.schema.classes == ("0", "1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("age,city,label\n", "has a header but no rows"),
        (user_rows().replace(",", ";"), "one column found"),
        (user_rows().replace("label", "outcome"), "column 'label': target column missing"),
        ("age,age,label\n1,2,no\n3,4,yes\n", "column 'age': appears more than once"),
        ("age,city,label\n" + "".join(f"{i},a,no\n" for i in range(20)), "one value (no) on every labelled row"),
        (b"age,city,label\n1,\xe9t\xe9,no\n", "not UTF-8"),
        ('age,city,label\n1,"a,no\n', "cannot be parsed"),
    ],
)
def test_broken_user_csv_gives_one_clear_line(tmp_path: Path, text: str | bytes, message: str) -> None:
    with pytest.raises(PipelineError) as error:
        user_csv(tmp_path, text)
    assert message in str(error.value)
    assert "user.csv" in str(error.value)


def test_csv_params_must_name_path_and_target() -> None:
    with pytest.raises(PipelineError, match=r"data\.path is empty"):
        datasets.load(params_section(Data, dataset="csv", path="", target="y"), Path("/"), RAW, seed=0)
    with pytest.raises(PipelineError, match=r"data\.dataset: Input should be 'iris', 'adult'"):
        params_section(Data, dataset="nope")  # refused as params are read, before any dataset loads


def test_adult_is_the_full_uci_set_with_markers_as_missing() -> None:
    loaded = datasets.load(params_section(Data, dataset="adult"), ROOT, RAW, seed=0)
    frame, schema = loaded.frame, loaded.schema
    assert frame.shape == (48_842, 15)
    assert len(schema.numeric) == 6 and len(schema.categorical) == 8
    assert schema.classes == ("<=50K", ">50K")
    assert not (frame == "?").any().any()
    assert frame["occupation"].isna().sum() > 0
    assert not frame["workclass"].dropna().str.startswith(" ").any()


def test_employment_keeps_year_and_selects_years() -> None:
    loaded = datasets.load(params_section(Data, dataset="employment", years=[2015]), ROOT, RAW, seed=0)
    assert set(loaded.frame["year"]) == {2015}
    assert len(loaded.frame) == 68_785
    assert "year" in loaded.schema.meta and "year" not in loaded.schema.feature_names
    assert not {"prediction", "predicted_probability"} & set(loaded.frame.columns)
    everything = datasets.load(params_section(Data, dataset="employment", years=[]), ROOT, RAW, seed=0).frame
    assert len(everything) == 68_785 + 208_892


def test_employment_unknown_year_is_an_error() -> None:
    with pytest.raises(PipelineError, match=r"data\.years"):
        datasets.load(params_section(Data, dataset="employment", years=[1999]), ROOT, RAW, seed=0)


def test_clean_turns_markers_and_blanks_into_missing() -> None:
    raw = pd.DataFrame({" a ": [" x ", "?", "  "], "b": [1, 2, 3]})
    frame = frames.clean(raw, ("?",))
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].iloc[0] == "x"
    assert frame["a"].isna().sum() == 2


@pytest.mark.parametrize(
    ("path", "name", "expected"),
    [
        ("data/raw/churn.csv", "", "churn"),
        ("data/raw/My Customers 2026.csv", "", "my-customers-2026"),
        ("data/raw/iris.csv", "", "csv-iris"),  # a built-in dataset's name is not taken
        ("data/raw/churn.csv", "retention", "retention"),
    ],
)
def test_each_csv_is_its_own_lineage_named_after_its_file_or_data_name(path: str, name: str, expected: str) -> None:
    data = params_section(Data, dataset="csv", path=path, name=name)
    assert datasets.lineage(data) == expected


def test_a_lineage_name_the_registry_cannot_hold_is_one_line() -> None:
    with pytest.raises(PipelineError, match=r"data\.name 'Bad Name!': use lower-case letters"):
        datasets.lineage(params_section(Data, dataset="csv", path="data/raw/x.csv", name="Bad Name!"))
