"""The compiled (ONNX) model answers as the trained pipeline does, for every candidate family."""

from __future__ import annotations

import logging
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Data, Featurize, Gate
from tabpipe.data import datasets
from tabpipe.data.frames import coerce
from tabpipe.data.schema import Feature, Schema
from tabpipe.model import compiled, conversion, estimators, features, runtime, training
from tabpipe.task import classification, regression, tasks
from tabpipe.task.base import Predicted
from tests.support.params import params_section
from tests.support.paths import RAW, ROOT

# Numbers on very different scales (as adult's fnlwgt), missing values in both kinds, a rare category.
SCHEMA = Schema(
    name="mixed",
    features=(
        Feature("small", "numeric", minimum=0.0, maximum=1.0, nullable=True),
        Feature("large", "numeric", minimum=1e4, maximum=1e6),
        Feature("colour", "categorical", categories=("red", "green", "blue", "rare"), nullable=True),
        Feature("size", "categorical", categories=("s", "m", "l")),
    ),
    target="y",
    classes=("a", "b", "c"),
)
FAMILIES = sorted(estimators.names("classification"))  # regressors compile in a later slice


def test_labels_differ_only_on_near_ties() -> None:
    classes = ["a", "b"]
    pipeline = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    served = np.array([[0.4999999, 0.5000001], [0.9, 0.1], [0.2, 0.8]])
    answers = [Predicted(classification.labels(p, classes), p, classes) for p in (pipeline, served)]
    assert classification.agreement(*answers) == {
        "label_agreement": round(2 / 3, 6),
        "label_disagreements": 1,
        "max_probability_difference": 1e-7,
    }


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], rows).astype(object)
    colour[rng.random(rows) < 0.1] = None
    colour[:3] = "rare"  # fewer than min_frequency: one-hot groups it as infrequent
    small = rng.random(rows)
    small[rng.random(rows) < 0.1] = np.nan
    large = rng.uniform(1e4, 1e6, rows).round()
    size = rng.choice(["s", "m", "l"], rows)
    score = small + large / 1e6 + (size == "l") + rng.normal(0, 0.3, rows)
    y = np.where(score < 0.8, "a", np.where(score < 1.4, "b", "c"))
    data = pd.DataFrame({"small": small, "large": large, "colour": colour, "size": size, "y": y})
    return coerce(data, SCHEMA)


def fitted(family: str, seed: int = 0) -> Any:
    from sklearn.pipeline import Pipeline

    train = frame(300, seed)
    x, y = features.split_xy(train, SCHEMA)
    fixed = {"n_estimators": 20} if family in ("random_forest", "extra_trees") else {}
    fixed |= {"max_iter": 30} if family == "hist_gradient_boosting" else {}
    fixed |= {"n_estimators": 30} if family == "lightgbm" else {}
    pre = features.preprocessor(SCHEMA, params_section(Featurize, min_frequency=5))
    return Pipeline([("preprocess", pre), ("model", estimators.estimator(family, fixed, seed))]).fit(x, y)


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[Any, compiled.Compiled]]:
    out = {}
    for family in FAMILIES:
        model = fitted(family)
        out[family] = (model, compiled.Compiled(conversion.compile_pipeline(model, SCHEMA), tasks.of(SCHEMA.task)))
    return out


def records(x: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the service's request model hands them over: missing values are None."""
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in x.to_dict("records")]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_compiles_and_agrees_with_its_pipeline(family: str, models: dict) -> None:
    model, served = models[family]
    x, _ = features.split_xy(frame(400, seed=1), SCHEMA)
    expected = model.predict_proba(x)
    got = served.predict_proba(x)
    assert list(served.classes_) == list(SCHEMA.classes)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert (served.predict(x) == model.predict(x)).all()  # labels, as scorers such as accuracy ask for
    # Linear models run in float64 throughout; trees sum float32 leaf values, as onnxruntime does.
    tolerance = 1e-12 if family == "logistic_regression" else 1e-5
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)  # float32 tree sums renormalised
    np.testing.assert_array_equal(served.predict_records(records(x)), got)


def test_unseen_categories_missing_values_and_out_of_range_numbers_agree(models: dict) -> None:
    x = pd.DataFrame(
        {
            "small": [np.nan, 5.0, -3.0, 0.5],
            "large": [2e7, 1.0, 5e5, 5e5],
            "colour": ["purple", None, "rare", "red"],
            "size": ["xl", "s", "m", "l"],
        }
    )
    x = coerce(x, SCHEMA)
    for family, (model, served) in models.items():
        np.testing.assert_allclose(served.predict_proba(x), model.predict_proba(x), atol=1e-5, err_msg=family)
        np.testing.assert_array_equal(served.predict_records(records(x)), served.predict_proba(x))


def per_column(blob: bytes) -> bytes:
    """The graph as the compile stage wrote it before its inputs were packed: one [N, 1] input per column,
    joined along columns (as skl2onnx's converters join them) into what the packed graph reads."""
    import onnx
    from onnx import helper

    model = onnx.load_from_string(blob)
    graph = model.graph
    packed, columns, joins = list(graph.input), [], []
    for i, tensor in enumerate(packed):
        kind = tensor.type.tensor_type.elem_type
        names = [f"old_input_{i}_{j}" for j in range(tensor.type.tensor_type.shape.dim[1].dim_value)]
        columns += [helper.make_tensor_value_info(name, kind, [None, 1]) for name in names]
        joins.append(helper.make_node("Concat", names, [tensor.name], axis=1))
    nodes = [*joins, *graph.node]
    del graph.input[:], graph.node[:]
    graph.input.extend(columns)
    graph.node.extend(nodes)
    return model.SerializeToString()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_graph_takes_one_tensor_of_each_kind(family: str, models: dict) -> None:
    _, served = models[family]
    inputs = [(i.name, i.type, i.shape) for i in served.session.get_inputs()]
    assert inputs == [("numeric", "tensor(double)", [None, 2]), ("categorical", "tensor(string)", [None, 2])]
    assert not served.per_column


@pytest.mark.parametrize("family", FAMILIES)
def test_a_graph_with_one_input_per_column_still_serves(family: str, models: dict) -> None:
    """A model compiled before the inputs were packed (`tabpipe rollback` may serve one) answers the same."""
    model, served = models[family]
    old = compiled.Compiled(per_column(conversion.compile_pipeline(model, SCHEMA)), tasks.of(SCHEMA.task))
    assert old.per_column and len(old.inputs) == 4
    x, _ = features.split_xy(frame(200, seed=3), SCHEMA)
    np.testing.assert_array_equal(old.predict_proba(x), served.predict_proba(x))
    np.testing.assert_array_equal(old.predict_records(records(x)), served.predict_records(records(x)))
    assert (old.predict(x) == model.predict(x)).all()


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "small": st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False)),
                "large": st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)),
                "colour": st.one_of(st.none(), st.sampled_from(["red", "green", "blue", "rare", "never seen", ""])),
                "size": st.one_of(st.none(), st.sampled_from(["s", "m", "l", "xxl"])),
            }
        ),
        max_size=6,
    )
)
def test_packed_records_frames_and_per_column_inputs_give_the_same_answers(
    models: dict, rows: list[dict[str, Any]]
) -> None:
    """Any rows, none included: the packed feed from records, from a frame, and split per column agree exactly."""
    model, served = models["random_forest"]
    old = compiled.Compiled(per_column(conversion.compile_pipeline(model, SCHEMA)), tasks.of(SCHEMA.task))
    got = served.predict_records(rows)
    assert got.shape == (len(rows), len(SCHEMA.classes))
    np.testing.assert_array_equal(old.predict_records(rows), got)
    if rows:
        x = coerce(pd.DataFrame(rows, columns=SCHEMA.feature_names), SCHEMA)
        np.testing.assert_array_equal(served.predict_proba(x), got)
        np.testing.assert_allclose(got, model.predict_proba(x), rtol=0, atol=1e-5)


def renamed(schema: Schema, names: dict[str, str], kept: list[str]) -> tuple[Schema, pd.DataFrame]:
    """`schema` (and a frame of it) with only the `kept` features, renamed."""
    from dataclasses import replace

    chosen = tuple(replace(f, name=names.get(f.name, f.name)) for f in schema.features if f.name in kept)
    narrowed = replace(schema, features=chosen)
    data = frame(300, seed=4)[[*kept, schema.target]].rename(columns=names)
    return narrowed, coerce(data, narrowed)


@pytest.mark.parametrize("family", ["logistic_regression", "lightgbm"])
@pytest.mark.parametrize(
    ("kept", "names", "inputs"),
    [
        (["small", "large"], {}, [("numeric", "tensor(double)", [None, 2])]),
        (["colour", "size"], {}, [("categorical", "tensor(string)", [None, 2])]),
        (
            ["large", "colour"],
            {},
            [("numeric", "tensor(double)", [None, 1]), ("categorical", "tensor(string)", [None, 1])],
        ),
        (  # columns named as the packed inputs would be
            ["small", "large", "colour", "size"],
            {"small": "categorical", "colour": "numeric"},
            [("_numeric", "tensor(double)", [None, 2]), ("_categorical", "tensor(string)", [None, 2])],
        ),
    ],
)
def test_any_mix_of_kinds_compiles_to_packed_inputs(family: str, kept: list, names: dict, inputs: list) -> None:
    from sklearn.pipeline import Pipeline

    schema, data = renamed(SCHEMA, names, kept)
    x, y = features.split_xy(data, schema)
    pre = features.preprocessor(schema, params_section(Featurize, min_frequency=5))
    fixed = {"n_estimators": 20} if family == "lightgbm" else {}
    model = Pipeline([("preprocess", pre), ("model", estimators.estimator(family, fixed, 0))]).fit(x, y)
    blob = conversion.compile_pipeline(model, schema)
    served, old = (compiled.Compiled(b, tasks.of(schema.task)) for b in (blob, per_column(blob)))
    assert [(i.name, i.type, i.shape) for i in served.session.get_inputs()] == inputs
    tolerance = 1e-12 if family == "logistic_regression" else 1e-5
    np.testing.assert_allclose(served.predict_proba(x), model.predict_proba(x), rtol=0, atol=tolerance)
    np.testing.assert_array_equal(served.predict_records(records(x)), served.predict_proba(x))
    np.testing.assert_array_equal(old.predict_records(records(x)), served.predict_proba(x))


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    small=st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False)),
    large=st.floats(-1e9, 1e9, allow_nan=False),
    colour=st.one_of(st.none(), st.sampled_from(["red", "green", "blue", "rare", "never seen", ""])),
    size=st.sampled_from(["s", "m", "l", "xxl"]),
)
def test_any_row_gets_the_pipelines_label(
    models: dict, small: float | None, large: float, colour: str | None, size: str
) -> None:
    row = {"small": small, "large": large, "colour": colour, "size": size}
    x = coerce(pd.DataFrame([row]), SCHEMA)
    for family, (model, served) in models.items():
        expected = model.predict_proba(x)
        got = served.predict_records([row])
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=family)


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """Real mixed data: 4,000 adult rows to fit, 4,000 others to check, missing categories in both."""
    loaded = datasets.load(params_section(Data, dataset="adult"), ROOT, RAW, seed=0)
    rows = loaded.frame.sample(n=8000, random_state=0).reset_index(drop=True)
    return rows[:4000], rows[4000:].reset_index(drop=True), loaded.schema


def lightgbm_on(train: pd.DataFrame, schema: Schema, seed: int = 0) -> Any:
    from sklearn.pipeline import Pipeline

    x, y = features.split_xy(train, schema)
    pre = features.preprocessor(schema, params_section(Featurize))
    model = estimators.estimator("lightgbm", {"n_estimators": 100, "num_leaves": 31}, seed)
    return Pipeline([("preprocess", pre), ("model", model)]).fit(x, y)


def test_lightgbm_on_adult_passes_the_compiled_gate(adult: tuple) -> None:
    train, test, schema = adult
    assert test[schema.categorical].isna().any().any()  # missing categories reach the compiled model
    model = lightgbm_on(train, schema)
    x, _ = features.split_xy(test, schema)
    task = tasks.of(schema.task)
    measured = task.agreement(model, compiled.Compiled(conversion.compile_pipeline(model, schema), task), x)
    rule = params_section(Gate).compiled
    assert measured["label_agreement"] >= rule.min_label_agreement
    assert measured["max_probability_difference"] <= rule.max_probability_difference


def test_lightgbm_is_byte_deterministic_for_a_seed(adult: tuple) -> None:
    train, _, schema = adult
    first, second = lightgbm_on(train, schema), lightgbm_on(train, schema)
    assert training.serialize(first) == training.serialize(second)
    assert conversion.compile_pipeline(first, schema) == conversion.compile_pipeline(second, schema)


def test_lightgbm_compares_with_double_thresholds_as_lightgbm_does() -> None:
    """A number just above a threshold, but equal to it in float32, takes LightGBM's branch."""
    model = fitted("lightgbm")
    scaler = model.named_steps["preprocess"].named_transformers_["numeric"].named_steps["scale"]
    roots = [tree["tree_structure"] for tree in model.named_steps["model"].booster_.dump_model()["tree_info"]]
    # Every row passes a root: take the first root that splits on a (scaled) number, not a one-hot column.
    root = next(r for r in roots if "split_feature" in r and r["split_feature"] < len(SCHEMA.numeric))
    feature, threshold = int(root["split_feature"]), float(root["threshold"])
    scaled = np.nextafter(threshold, np.inf)
    raw = scaled * scaler.scale_[feature] + scaler.mean_[feature]
    row = frame(1, seed=5).drop(columns="y")
    row[SCHEMA.numeric[feature]] = raw
    seen = (raw - scaler.mean_[feature]) / scaler.scale_[feature]
    assert seen > threshold and np.float32(seen) == np.float32(threshold)  # float32 would go left here
    served = compiled.Compiled(conversion.compile_pipeline(model, SCHEMA), tasks.of(SCHEMA.task))
    np.testing.assert_allclose(served.predict_proba(row), model.predict_proba(row), rtol=0, atol=1e-6)


def test_compiling_twice_gives_the_same_bytes() -> None:
    model = fitted("random_forest")
    assert conversion.compile_pipeline(model, SCHEMA) == conversion.compile_pipeline(model, SCHEMA)


@pytest.mark.parametrize("binary", [False, True])
def test_compiled_models_score_with_scikit_learn_scorers(binary: bool) -> None:
    """Permutation importance (evaluate) scores the compiled model, binary (positive class) or not."""
    from sklearn.inspection import permutation_importance
    from sklearn.pipeline import Pipeline

    data = frame(300, seed=2)
    if binary:
        data["y"] = data["y"].where(data["y"] == "a", "b")
    x, y = features.split_xy(data, SCHEMA)
    pre = features.preprocessor(SCHEMA, params_section(Featurize))
    model = Pipeline([("preprocess", pre), ("model", estimators.estimator("logistic_regression", {}, 0))]).fit(x, y)
    served = compiled.Compiled(conversion.compile_pipeline(model, SCHEMA), tasks.of(SCHEMA.task))
    got = permutation_importance(served, x, y, scoring="roc_auc_ovr", n_repeats=2, random_state=0)
    expected = permutation_importance(model, x, y, scoring="roc_auc_ovr", n_repeats=2, random_state=0)
    np.testing.assert_allclose(got.importances_mean, expected.importances_mean, atol=1e-9)
    assert got.importances_mean.max() > 0


def uncompilable() -> Any:
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    x, y = features.split_xy(frame(100, 0), SCHEMA)
    pre = features.preprocessor(SCHEMA, params_section(Featurize))
    return Pipeline([("preprocess", pre), ("model", DummyClassifier())]).fit(x, y)


def test_runtime_onnx_refuses_a_pipeline_that_cannot_compile() -> None:
    with pytest.raises(PipelineError) as error:
        conversion.build(b"pipeline", uncompilable(), SCHEMA, "onnx")
    message = str(error.value)
    assert "\n" not in message
    assert "DummyClassifier does not compile to ONNX" in message and "serve.runtime: auto" in message


def test_runtime_auto_serves_scikit_learn_with_one_warning_saying_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="compile"):
        built = conversion.build(b"pipeline", uncompilable(), SCHEMA, "auto")
    assert (built.runtime, built.blob, built.file_name) == ("sklearn", b"pipeline", "model.joblib")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "DummyClassifier does not compile" in warnings[0]


def test_runtime_auto_and_onnx_compile_what_can_compile(tmp_path: Any) -> None:
    model = fitted("hist_gradient_boosting")
    for mode in ("auto", "onnx"):
        built = conversion.build(b"pipeline", model, SCHEMA, mode)
        assert built.runtime == "onnx" and built.reason == ""
        (tmp_path / built.file_name).write_bytes(built.blob)
        assert isinstance(runtime.load(runtime.model_file(tmp_path), tasks.of(SCHEMA.task)), compiled.Compiled)
    built = conversion.build(b"pipeline", model, SCHEMA, "sklearn")
    assert built.runtime == "sklearn" and built.blob == b"pipeline"


def test_a_served_folder_must_hold_exactly_one_model(tmp_path: Any) -> None:
    with pytest.raises(PipelineError, match=r"expected one of model\.onnx, model\.joblib"):
        runtime.model_file(tmp_path)
    joblib.dump(fitted("logistic_regression"), tmp_path / "model.joblib")
    assert runtime.model_file(tmp_path).name == "model.joblib"
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(PipelineError, match="expected one of"):
        runtime.model_file(tmp_path)


REGRESSION_SCHEMA = Schema(name="mixed-regression", features=SCHEMA.features, target="y", classes=(), task="regression")
REGRESSORS = sorted(estimators.names("regression"))


def regression_frame(rows: int, seed: int) -> pd.DataFrame:
    data = frame(rows, seed).drop(columns="y")
    rng = np.random.default_rng(seed)
    small = data["small"].fillna(0.5)
    data["y"] = 3 * small + data["large"] / 1e5 + (data["size"] == "l") * 2 + rng.normal(0, 0.2, rows)
    return coerce(data, REGRESSION_SCHEMA)


@pytest.mark.parametrize("family", REGRESSORS)
def test_every_regressor_compiles_and_agrees_with_its_pipeline(family: str) -> None:
    from sklearn.pipeline import Pipeline

    x, y = features.split_xy(regression_frame(300, 0), REGRESSION_SCHEMA)
    assert y.dtype == np.float64
    fixed = {"n_estimators": 20} if family in ("random_forest_regressor", "lightgbm_regressor") else {}
    fixed |= {"max_iter": 30} if family == "hist_gradient_boosting_regressor" else {}
    pre = features.preprocessor(REGRESSION_SCHEMA, params_section(Featurize, min_frequency=5))
    model = Pipeline([("preprocess", pre), ("model", estimators.estimator(family, fixed, 0))]).fit(x, y)
    blob = conversion.compile_pipeline(model, REGRESSION_SCHEMA)
    with pytest.raises(PipelineError, match="answers a regression task, the schema's is classification"):
        compiled.Compiled(blob, tasks.of("classification"))  # the schema decides; the graph's record is checked
    served = compiled.Compiled(blob, tasks.of(REGRESSION_SCHEMA.task))
    assert served.task.name == "regression" and not hasattr(served, "classes_")
    x_new, _ = features.split_xy(regression_frame(400, 1), REGRESSION_SCHEMA)
    expected, got = model.predict(x_new), served.predict(x_new)
    assert got.dtype == np.float64 and got.shape == expected.shape
    # Linear models run in float64 throughout; trees sum float32 leaf values, as onnxruntime does.
    tolerance = 1e-9 if family == "ridge" else 1e-4 * np.ptp(expected)
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
    np.testing.assert_array_equal(compiled.Compiled(per_column(blob), served.task).predict(x_new), got)
    measured = regression.value_agreement(expected, got)
    assert measured["max_value_difference"] <= tolerance
    assert measured["max_relative_difference"] == pytest.approx(measured["max_value_difference"] / np.ptp(expected))
