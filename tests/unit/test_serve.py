"""The service's request model and model store, built from the same schema as validation."""

import json
import math
from pathlib import Path

import joblib
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tabpipe.core.errors import PipelineError
from tabpipe.core.hashing import file_sha256
from tabpipe.core.settings import Serve
from tabpipe.data.frames import coerce
from tabpipe.data.schema import builtin
from tabpipe.model import runtime
from tabpipe.serve import bento_model, manifest, request
from tabpipe.task.base import Predicted
from tabpipe.task.classification import Classification
from tabpipe.task.series import observe_all
from tests.support.client import row_validator
from tests.support.data import TOY, toy_frame
from tests.support.params import params_section

ADULT = builtin("adult")


def adult_row(**changes: object) -> dict:
    row = {
        "age": 39,
        "workclass": "State-gov",
        "fnlwgt": 77516,
        "education": "Bachelors",
        "education-num": 13,
        "marital-status": "Never-married",
        "occupation": "Adm-clerical",
        "relationship": "Not-in-family",
        "race": "White",
        "sex": "Male",
        "capital-gain": 2174,
        "capital-loss": 0,
        "hours-per-week": 40,
        "native-country": "United-States",
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not ...}


def errors(row: dict) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        row_validator(ADULT, "answer").validate_python(row)
    return caught.value.errors()


def test_a_valid_row_keeps_column_names() -> None:
    row = row_validator(ADULT, "answer").validate_python(adult_row())
    assert row["education-num"] == 13 and request.records([row], ADULT)[0]["education-num"] == 13


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"age": "39"}, "age", "float_type"),
        ({"age": 150}, "age", "less_than_equal"),
        ({"age": math.nan}, "age", "finite_number"),
        ({"age": math.inf}, "age", "finite_number"),
        ({"education": "Kindergarten"}, "education", "literal_error"),
        ({"education": ...}, "education", "missing"),
        ({"age": None}, "age", "float_type"),
        ({"favourite-colour": "blue"}, "favourite-colour", "extra_forbidden"),
    ],
)
def test_each_bad_value_names_its_field(change: dict, field: str, kind: str) -> None:
    found = errors(adult_row(**change))
    assert [(e["loc"][-1], e["type"]) for e in found] == [(field, kind)]


def test_nullable_features_may_be_null_or_left_out() -> None:
    model = row_validator(ADULT, "answer")
    frame = request.rows_frame(
        request.records([model.validate_python(adult_row(workclass=None, occupation=...))], ADULT), ADULT
    )
    assert frame["workclass"].isna().all() and frame["occupation"].isna().all()


def test_rows_frame_matches_the_training_frame_exactly() -> None:
    train = coerce(toy_frame(20), TOY)
    model = row_validator(TOY, "answer")
    rows = [model.validate_python(r) for r in json.loads(train[TOY.feature_names].to_json(orient="records"))]
    frame = request.rows_frame(request.records(rows, TOY), TOY)
    pd.testing.assert_frame_equal(frame, train[TOY.feature_names])


def gated(model_path: Path, pipeline_path: Path | None = None) -> manifest.Manifest:
    serve = params_section(Serve, max_rows=10)
    digest = file_sha256(model_path)
    raw = manifest.build(
        TOY,
        model_file=model_path.name,
        model_sha256=digest,
        pipeline_sha256=file_sha256(pipeline_path or model_path),
        metrics={"roc_auc": 0.9},
        serve=serve,
    )
    return manifest.Manifest(raw, TOY, serve)


def test_ensure_model_imports_once_and_loads_after_checking_the_hash(tmp_path: Path) -> None:
    import bentoml

    path = tmp_path / "model.joblib"
    joblib.dump({"weights": [1, 2, 3]}, path)
    info = gated(path)
    tag = bento_model.ensure_model(info, path)
    assert tag == info.tag and bento_model.ensure_model(info, path) == tag
    stored = bentoml.models.get(tag)
    assert stored.info.metadata["model_sha256"] == info.model_sha256
    assert bento_model.load_model(stored, Classification()) == {"weights": [1, 2, 3]}

    Path(stored.path_of(info.model_file)).write_bytes(b"tampered")
    with pytest.raises(PipelineError, match="does not match the recorded"):
        bento_model.load_model(stored, Classification())


def test_ensure_model_refuses_a_file_that_is_not_the_gated_model(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump("gated", path)
    info = gated(path)
    joblib.dump("something else", path)
    with pytest.raises(PipelineError, match="does not match the gated model"):
        bento_model.ensure_model(info, path)
    with pytest.raises(PipelineError, match="model file missing"):
        bento_model.ensure_model(info, tmp_path / "absent.joblib")


def test_the_trained_pipeline_is_stored_beside_the_served_model_and_loaded_after_its_hash(tmp_path: Path) -> None:
    import bentoml

    served, pipeline = tmp_path / "model.onnx", tmp_path / "pipeline.joblib"
    served.write_bytes(b"compiled")
    joblib.dump({"trained": True}, pipeline)
    info = gated(served, pipeline)
    joblib.dump("another pipeline", tmp_path / "other.joblib")
    with pytest.raises(PipelineError, match="does not match the gated model's trained pipeline"):
        bento_model.ensure_model(info, served, tmp_path / "other.joblib")

    bento_model.ensure_model(info, served)  # stored as before explanations: no pipeline to explain
    with pytest.raises(PipelineError, match="stored without its trained pipeline; run `tabpipe store-model`"):
        bento_model.load_pipeline(bentoml.models.get(info.tag), Classification())

    assert bento_model.ensure_model(info, served, pipeline) == info.tag  # stored again, with it
    stored = bentoml.models.get(info.tag)
    assert stored.info.metadata["pipeline_sha256"] == file_sha256(pipeline)
    assert bento_model.load_pipeline(stored, Classification()) == {"trained": True}
    Path(stored.path_of(bento_model.PIPELINE_FILE)).write_bytes(b"tampered")
    with pytest.raises(PipelineError, match="does not match the recorded"):
        bento_model.load_pipeline(stored, Classification())


def test_served_models_predict_on_one_thread() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = Pipeline([("scale", StandardScaler()), ("forest", RandomForestClassifier(n_jobs=-1))])
    assert runtime.single_threaded(model).get_params()["forest__n_jobs"] == 1
    assert runtime.single_threaded(StandardScaler()).get_params() == StandardScaler().get_params()


def test_a_client_error_names_at_most_five_fields_and_a_server_error_is_not_one() -> None:
    import logging

    from bentoml.exceptions import BadInput, ServiceUnavailable

    from tabpipe.serve import service_log

    model = row_validator(builtin("iris"), "answer")
    with pytest.raises(ValidationError) as caught:
        model.validate_python({f"extra_{i}": i for i in range(8)})
    named = service_log.fields(caught.value)
    assert len(named) == 6 and named[-1] == f"and {caught.value.error_count() - 5} more"
    assert service_log.client_status(caught.value) == 400 and service_log.client_status(BadInput("no")) == 400
    assert service_log.client_status(ServiceUnavailable("model not loaded")) is None
    assert service_log.client_status(RuntimeError("boom")) is None

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/predict", "POST"), None)
    record.exc_info = (ValidationError, caught.value, None)
    assert service_log.ClientErrors().filter(record) and record.levelname == "WARNING" and record.exc_info is None
    line = json.loads(service_log.JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["status"] == 400 and line["fields"] == named
    assert line["message"].startswith("client error 400 on POST /predict (request -): ")

    server = logging.LogRecord("x", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/predict", "POST"), None)
    server.exc_info = (ServiceUnavailable, ServiceUnavailable("model not loaded"), None)
    assert service_log.ClientErrors().filter(server) and server.levelname == "ERROR" and server.exc_info is not None


def test_the_log_format_comes_from_params_unless_the_environment_says_otherwise() -> None:
    from tabpipe.serve import service_log

    assert service_log.choose("text", {}) == "text"
    assert service_log.choose("text", {service_log.ENV: "json"}) == "json"
    with pytest.raises(ValueError, match="TABPIPE_LOG_FORMAT='yaml': expected text or json"):
        service_log.choose("text", {service_log.ENV: "yaml"})


VALUES = st.floats(-10, 10) | st.sampled_from([-1.0, 0.0, 1.0, 2.5, math.nan, math.inf, -math.inf])


@given(st.lists(VALUES, max_size=60), st.sampled_from([[-1.0, 0.0, 1.0, 2.5, 7.0], [0.0, 1.0, 2.5]]))
def test_observing_a_whole_answer_counts_as_observing_each_value(values: list[float], bounds: list[float]) -> None:
    """observe_all's buckets and sum are what observe() gives value by value (bounds, NaN, infinities)."""
    from prometheus_client import CollectorRegistry, Histogram

    together = Histogram("v", "values", buckets=bounds, registry=CollectorRegistry())
    observe_all(together, values)
    each = Histogram("v", "values", buckets=bounds, registry=CollectorRegistry())
    for value in values:
        each.observe(value)
    assert [b.get() for b in together._buckets] == [b.get() for b in each._buckets]  # per bucket, +Inf included
    # The sum itself (exported only when no bound is negative): the same values, added in another order.
    assert together._sum.get() == pytest.approx(each._sum.get(), abs=1e-9, nan_ok=True)


def test_an_answer_needs_one_probability_per_class() -> None:
    """The per-row dicts zip names with probabilities unchecked (for speed): the shapes are checked once."""
    import numpy as np

    identity = {"name": "m", "version": "1"}
    task = Classification()
    body = task.body(Predicted(np.array(["a", "b"]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"]), identity, None)
    assert body["predictions"][1] == {"label": "b", "probabilities": {"a": 0.2, "b": 0.8}}
    with pytest.raises(ValueError, match="2 classes"):
        task.body(Predicted(np.array(["a"]), np.array([[0.9, 0.05, 0.05]]), ["a", "b"]), identity, None)


def test_only_a_regressor_keeps_a_histogram_of_served_values_split_at_its_targets_deciles() -> None:
    import pandas as pd

    from tabpipe.task import tasks

    target = pd.Series(range(1, 101), dtype="float64")
    assert tasks.of("regression").buckets(target) == [10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1]
    assert tasks.of("regression").buckets(pd.Series([2.0] * 10)) == [2.0]  # distinct bounds only
    assert tasks.of("classification").buckets(target) is None
