"""The serving contract for values training never saw: declared limits bind, observed ones are answered
(serve.unseen: answer) or refused (refuse), and both runtimes really answer what is let through."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import ColumnLimits, Featurize
from tabpipe.data.frames import coerce
from tabpipe.data.schema import Schema, builtin, infer
from tabpipe.model import compiled, conversion, estimators, features
from tabpipe.serve import request, unseen
from tabpipe.task import tasks
from tabpipe.task.classification import Classification
from tabpipe.task.regression import Regression
from tests.support.client import row_validator
from tests.support.params import params_section


def wine_like(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """A user's CSV as ingest reads it: numbers, a category, no missing value anywhere."""
    rng = np.random.default_rng(seed)
    alcohol = rng.uniform(11.0, 14.8, rows).round(2)
    alcohol[0] = 14.83  # the strongest wine training saw
    acid = rng.uniform(0.7, 5.8, rows).round(2)
    cellar = rng.choice(["north", "south", "east"], rows)
    score = (alcohol - 11) / 4 + (cellar == "east") * 0.5 + rng.normal(0, 0.2, rows)
    grade = np.where(score < 0.5, "low", np.where(score < 0.9, "mid", "high"))
    return pd.DataFrame({"alcohol": alcohol, "acid": acid, "cellar": cellar, "grade": grade})


SCHEMA = infer(wine_like(), name="wine", target="grade")
ALCOHOL = SCHEMA.feature("alcohol")
GOOD = {"alcohol": 13.0, "acid": 2.0, "cellar": "north"}


def test_a_csv_schema_is_observed_and_a_builtin_one_declared() -> None:
    assert {f.limits for f in SCHEMA.features} == {"observed"}
    assert (ALCOHOL.maximum, ALCOHOL.nullable) == (14.83, False)
    assert {f.limits for f in builtin("adult").features} == {"declared"}
    assert Schema.from_dict(SCHEMA.to_dict()) == SCHEMA
    assert all(f["limits"] == "observed" for f in SCHEMA.to_dict()["features"])
    legacy = SCHEMA.to_dict()
    for feature in legacy["features"]:
        del feature["limits"]  # a schema.json or manifest written before limits were recorded
    assert {f.limits for f in Schema.from_dict(legacy).features} == {"declared"}


def test_data_limits_declare_a_csv_columns_limits_exactly() -> None:
    limits = {
        "alcohol": ColumnLimits(minimum=0.0, maximum=20.0, nullable=False),
        "cellar": ColumnLimits(categories=["north", "south", "east", "west"], nullable=True),
    }
    schema = infer(wine_like(), name="wine", target="grade", limits=limits)
    alcohol, cellar, acid = (schema.feature(c) for c in ("alcohol", "cellar", "acid"))
    assert (alcohol.limits, alcohol.minimum, alcohol.maximum) == ("declared", 0.0, 20.0)
    assert (cellar.limits, cellar.categories, cellar.nullable) == ("declared", ("north", "south", "east", "west"), True)
    assert acid.limits == "observed"
    row = row_validator(schema, "answer")
    row.validate_python({**GOOD, "alcohol": 19.5, "cellar": "west", "acid": 99.0})
    with pytest.raises(ValidationError) as caught:
        row.validate_python({**GOOD, "alcohol": 20.5, "cellar": "moon"})
    assert [(e["loc"][-1], e["type"]) for e in caught.value.errors()] == [
        ("alcohol", "less_than_equal"),
        ("cellar", "literal_error"),
    ]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"colour": ColumnLimits(nullable=True)}, "data.limits names column 'colour'"),
        ({"grade": ColumnLimits(nullable=True)}, "data.limits names column 'grade'"),
        ({"cellar": ColumnLimits(nullable=True)}, "data.limits.cellar: a categorical column needs its categories"),
        ({"cellar": ColumnLimits(maximum=1.0, categories=["a"], nullable=True)}, "data.limits.cellar: minimum or"),
        ({"alcohol": ColumnLimits(categories=["a"], nullable=True)}, "data.limits.alcohol: categories given"),
        ({"alcohol": ColumnLimits(minimum=5.0, maximum=1.0, nullable=True)}, "minimum 5.0 is above maximum 1.0"),
    ],
)
def test_bad_data_limits_are_one_line_naming_the_column(limits: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        infer(wine_like(), name="wine", target="grade", limits=limits)


# Each value training never saw: how `answer` names it, and the error `refuse` gives it.
UNSEEN_CASES = [
    ({"alcohol": 14.9}, "above_range", "less_than_equal"),
    ({"acid": 0.1}, "below_range", "greater_than_equal"),
    ({"cellar": "west"}, "unseen_category", "literal_error"),
    ({"cellar": None}, "missing", "literal_error"),
    ({"alcohol": None}, "missing", "float_type"),
]


@pytest.mark.parametrize(("change", "kind"), [(change, kind) for change, kind, _ in UNSEEN_CASES])
def test_under_answer_each_unseen_value_is_accepted_and_named(change: dict, kind: str) -> None:
    row = row_validator(SCHEMA, "answer").validate_python({**GOOD, **change})
    records = request.records([row], SCHEMA)
    (column,) = change
    assert unseen.unseen(records, SCHEMA) == [{column: kind}]


@pytest.mark.parametrize(("change", "error"), [(change, error) for change, _, error in UNSEEN_CASES])
def test_under_refuse_the_same_values_are_refused_naming_the_field(change: dict, error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        row_validator(SCHEMA, "refuse").validate_python({**GOOD, **change})
    (column,) = change
    assert [(e["loc"][-1], e["type"]) for e in caught.value.errors()] == [(column, error)]


@pytest.mark.parametrize("policy", ["answer", "refuse"])
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"alcohol": "13"}, "float_type"),
        ({"alcohol": math.nan}, "finite_number"),
        ({"alcohol": -math.inf}, "finite_number"),
        ({"alcohol": True}, "float_type"),
        ({"cellar": 3}, ("string_type", "literal_error")),
        ({"vintage": 1999}, "extra_forbidden"),
    ],
)
def test_types_stay_strict_under_either_policy(policy: str, change: dict, error: str | tuple) -> None:
    with pytest.raises(ValidationError) as caught:
        row_validator(SCHEMA, policy).validate_python({**GOOD, **change})
    ((column, found),) = [(e["loc"][-1], e["type"]) for e in caught.value.errors()]
    assert column == next(iter(change)) and found in ((error,) if isinstance(error, str) else error)


def test_a_left_out_column_is_answered_as_missing_under_answer_and_refused_under_refuse() -> None:
    partial = {"acid": 2.0, "cellar": "north"}
    row = row_validator(SCHEMA, "answer").validate_python(partial)
    assert unseen.unseen(request.records([row], SCHEMA), SCHEMA) == [{"alcohol": "missing"}]
    with pytest.raises(ValidationError, match="alcohol"):
        row_validator(SCHEMA, "refuse").validate_python(partial)


@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_number_in_an_observed_column_is_answered_and_refused_only_outside_the_range(value: float) -> None:
    row = {**GOOD, "alcohol": value}
    row_validator(SCHEMA, "answer").validate_python(row)
    inside = ALCOHOL.minimum <= value <= ALCOHOL.maximum
    if inside:
        row_validator(SCHEMA, "refuse").validate_python(row)
        return
    with pytest.raises(ValidationError) as caught:
        row_validator(SCHEMA, "refuse").validate_python(row)
    assert [e["loc"][-1] for e in caught.value.errors()] == ["alcohol"]


def test_declared_limits_bind_under_answer() -> None:
    iris = row_validator(builtin("iris"), "answer")
    good = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    for change, error in (({"petal_length": 31}, "less_than_equal"), ({"petal_width": None}, "float_type")):
        with pytest.raises(ValidationError) as caught:
            iris.validate_python({**good, **change})
        assert [(e["loc"][-1], e["type"]) for e in caught.value.errors()] == [(next(iter(change)), error)]
    assert unseen.unseen([good], builtin("iris")) == [{}]


def test_the_service_checks_only_observed_limits_a_batch_checks_all() -> None:
    """The request model already refused what breaks a declared limit; a monitored batch file was never checked."""
    wide = {"sepal_length": 50.0, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": None}
    assert unseen.unseen([wide], builtin("iris")) == [{"sepal_length": "above_range", "petal_width": "missing"}]
    assert unseen.unseen([wide], builtin("iris"), observed_only=True) == [{}]
    assert unseen.unseen([{**GOOD, "alcohol": 99.0}], SCHEMA, observed_only=True) == [{"alcohol": "above_range"}]


def test_a_missing_value_in_a_column_that_had_some_is_not_unseen() -> None:
    frame = wine_like()
    frame.loc[:5, "acid"] = np.nan
    schema = infer(frame, name="wine", target="grade")
    assert unseen.unseen([{**GOOD, "acid": None}, {**GOOD, "acid": math.nan}], schema) == [{}, {}]


def test_clipped_brings_numbers_back_to_the_range_and_shares_other_rows() -> None:
    records = [dict(GOOD), {**GOOD, "alcohol": 1e308, "acid": -5.0, "cellar": "west"}]
    flags = unseen.unseen(records, SCHEMA)
    out = unseen.clipped(records, flags, SCHEMA)
    assert out[0] is records[0]
    assert out[1] == {**GOOD, "alcohol": 14.83, "acid": SCHEMA.feature("acid").minimum, "cellar": "west"}
    assert records[1]["alcohol"] == 1e308  # what the log keeps is what was sent
    assert unseen.counts(flags + flags) == {
        "acid": {"below_range": 2},
        "alcohol": {"above_range": 2},
        "cellar": {"unseen_category": 2},
    }


FAMILIES = ("logistic_regression", "random_forest", "hist_gradient_boosting", "lightgbm")


SMALL = {"n_estimators": 20, "max_iter": 30}  # small trees: the contract is about answering, not accuracy
REGRESSORS = ("ridge", "random_forest_regressor", "hist_gradient_boosting_regressor", "lightgbm_regressor")
PRICED = wine_like().drop(columns="grade").assign(price=lambda f: f["alcohol"] * 3 + (f["cellar"] == "east") * 5)
PRICE_SCHEMA = infer(PRICED, name="wine", target="price", task="regression")


def trained(frame: pd.DataFrame, schema: Schema, families: tuple[str, ...]) -> dict[str, tuple[Any, compiled.Compiled]]:
    """Each family trained on `frame`: the pipeline (scikit-learn runtime) and its ONNX model."""
    import inspect

    from sklearn.pipeline import Pipeline

    x, y = features.split_xy(coerce(frame, schema), schema)
    out = {}
    for family in families:
        accepted = inspect.signature(estimators.estimator(family, {}, 0).__class__).parameters
        fixed = {key: value for key, value in SMALL.items() if key in accepted}
        pre = features.preprocessor(schema, params_section(Featurize, min_frequency=5))
        model = Pipeline([("pre", pre), ("model", estimators.estimator(family, fixed, 0))]).fit(x, y)
        out[family] = (model, compiled.Compiled(conversion.compile_pipeline(model, schema), tasks.of(schema.task)))
    return out


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[Any, compiled.Compiled]]:
    """Each classifier family trained on the CSV-like data."""
    return trained(wine_like(), SCHEMA, FAMILIES)


@pytest.fixture(scope="module")
def regressors() -> dict[str, tuple[Any, compiled.Compiled]]:
    """Each regressor family trained on the same rows with a price to predict."""
    return trained(PRICED, PRICE_SCHEMA, REGRESSORS)


def valued(regressors: dict, records: list[dict[str, Any]]) -> None:
    """Both runtimes of every regressor answer each row (as the service calls them) with a finite value."""
    flags = unseen.unseen(records, PRICE_SCHEMA)
    rows = unseen.clipped(records, flags, PRICE_SCHEMA)
    for family, runtimes in regressors.items():
        for model in runtimes:
            values = request.predict(model, rows, PRICE_SCHEMA, Regression()).labels
            assert values.shape == (len(records),) and np.isfinite(values).all(), family


def answered(models: dict, records: list[dict[str, Any]]) -> None:
    """Both runtimes answer every row (as the service calls them): a known class, probabilities summing to 1.

    How closely the two agree is the compile stage's and the gate's business (test_compiled.py).
    """
    flags = unseen.unseen(records, SCHEMA)
    rows = unseen.clipped(records, flags, SCHEMA)
    for family, runtimes in models.items():
        for model in runtimes:
            predicted = request.predict(model, rows, SCHEMA, Classification())
            labels, proba = predicted.labels, predicted.outputs
            assert set(labels) <= set(SCHEMA.classes) and len(labels) == len(records), family
            assert np.isfinite(proba).all(), family
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9, err_msg=family)


def test_both_runtimes_answer_unseen_values_as_the_service_sends_them(models: dict, regressors: dict) -> None:
    records = [
        {"alcohol": 14.9, "acid": 2.0, "cellar": "north"},
        {"alcohol": 13.0, "acid": 2.0, "cellar": "west"},
        {"alcohol": None, "acid": None, "cellar": None},
        {"alcohol": 1.7976931348623157e308, "acid": -1e308, "cellar": ""},
    ]
    answered(models, records)
    valued(regressors, records)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    alcohol=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    acid=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    cellar=st.one_of(st.none(), st.sampled_from(["north", "south", "east"]), st.text(max_size=5)),
)
def test_any_row_the_answer_policy_accepts_gets_an_answer_from_both_runtimes(
    models: dict, regressors: dict, alcohol: float | None, acid: float | None, cellar: str | None
) -> None:
    """Classifiers and regressors alike: every family, compiled and not."""
    row = row_validator(SCHEMA, "answer").validate_python({"alcohol": alcohol, "acid": acid, "cellar": cellar})
    answered(models, request.records([row], SCHEMA))
    valued(regressors, request.records([row], SCHEMA))


def test_model_rows_brings_a_number_past_the_range_to_its_end_and_leaves_the_rows_as_sent() -> None:
    sent = request.records([{**GOOD, "alcohol": ALCOHOL.maximum + 5}, GOOD], SCHEMA)
    rows, flags = unseen.model_rows(sent, SCHEMA)
    assert flags == [{"alcohol": "above_range"}, {}]
    assert rows[0]["alcohol"] == ALCOHOL.maximum and rows[1] is sent[1]
    assert sent[0]["alcohol"] == ALCOHOL.maximum + 5  # the log keeps what was sent
