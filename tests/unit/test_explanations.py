"""Per-row explanations add up to the trained pipeline's raw output, for every family that can win, on any row."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabpipe.core.catalog import ESTIMATORS
from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Candidate, Featurize
from tabpipe.data import dates
from tabpipe.data.frames import coerce
from tabpipe.data.schema import Feature, Schema
from tabpipe.model import conversion, explanations, features, training
from tabpipe.model.search import SearchResult
from tests.support.params import params_section
from tests.unit.test_compiled import SCHEMA as MIXED

# test_compiled's mixed schema (scales, missing values, a rare category) and a date learned as its parts.
SCHEMA = replace(
    MIXED,
    name="dated",
    features=(*MIXED.features, *(Feature(dates.part_name("when", p), "numeric", nullable=True) for p in dates.PARTS)),
    meta=("when",),
    dates=(("when", "%Y-%m-%d"),),
)
BINARY = replace(SCHEMA, classes=("a", "b"))
REGRESSION = replace(SCHEMA, task="regression", classes=())
SCHEMAS = {"multiclass": SCHEMA, "binary": BINARY, "regression": REGRESSION}
# Few trees: the methods are exact at any size, and the tests stay fast.
TREES = {"n_estimators": 10}
SMALL = {
    "random_forest": TREES,
    "extra_trees": TREES,
    "random_forest_regressor": TREES,
    "lightgbm": TREES,
    "lightgbm_regressor": TREES,
    "hist_gradient_boosting": {"max_iter": 10},
    "hist_gradient_boosting_regressor": {"max_iter": 10},
}
TOLERANCE = 1e-6  # the contract: base + contributions == output


def table(rows: int, seed: int, kind: str) -> pd.DataFrame:
    """Rows of SCHEMA as a file has them (the date as text), with a target of `kind` that every column moves
    (a regression's is positive, as a Poisson loss needs)."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], rows).astype(object)
    colour[rng.random(rows) < 0.1] = None
    colour[:3] = "rare"  # fewer than min_frequency: one-hot groups it as infrequent
    small = rng.random(rows)
    small[rng.random(rows) < 0.1] = np.nan
    large = rng.uniform(1e4, 1e6, rows).round()
    size = rng.choice(["s", "m", "l"], rows)
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D")
    text = when.strftime("%Y-%m-%d").to_numpy(dtype=object)
    text[rng.random(rows) < 0.1] = None
    score = np.nan_to_num(small) + large / 1e6 + (size == "l") + (when.month > 6) + rng.normal(0, 0.3, rows)
    cuts = {"multiclass": [1.0, 1.7], "binary": [1.3]}.get(kind)
    y = np.exp(score / 2) if cuts is None else np.asarray(["a", "b", "c"])[np.digitize(score, cuts)]
    data = pd.DataFrame({"small": small, "large": large, "colour": colour, "size": size, "when": text, "y": y})
    return coerce(data, SCHEMAS[kind])


def fitted(family: str, kind: str, **fixed: Any) -> Any:
    """The refitted pipeline training gives this family (carrying its training mean), on 300 rows."""
    schema = SCHEMAS[kind]
    x, y = features.split_xy(table(300, 0, kind), schema)
    spec = Candidate(estimator=family, fixed=SMALL.get(family, {}) | fixed)
    winner = SearchResult(family, spec, {}, 0.0, 0.0, len(x), 0.0, [])
    preprocessor = features.preprocessor(schema, params_section(Featurize, min_frequency=5)).fit(x)
    return training.refit(winner, preprocessor, x, y, seed=0)


CASES = [
    (family, kind)
    for family, (_, _, task) in ESTIMATORS.items()
    for kind in (("multiclass", "binary") if task == "classification" else ("regression",))
]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """One OpenMP thread, as the service runs: histogram boosting's thread pool costs more than its 10 trees."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, str], Any]:
    return {case: fitted(*case) for case in CASES}


@pytest.fixture(scope="module")
def explainers(models: dict) -> dict[tuple[str, str], explanations.Explainer]:
    return {(family, kind): explanations.explainer(model, SCHEMAS[kind]) for (family, kind), model in models.items()}


def frame_of(rows: list[dict[str, Any]], schema: Schema) -> pd.DataFrame:
    """Request rows as the pipeline takes them: typed, with the date's parts."""
    return coerce(pd.DataFrame(rows, columns=schema.request_names), schema)[schema.feature_names]


def additivity_error(explained: explanations.Explanation) -> float:
    total = explained.base + explained.contributions.sum(axis=1)
    return float(np.abs(total - explained.output).max())


ROW_KEYS = ("small", "large", "colour", "size", "when")
ROW = st.fixed_dictionaries(
    {
        "small": st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False)),
        "large": st.floats(-1e9, 1e9, allow_nan=False),
        "colour": st.one_of(st.none(), st.sampled_from(["red", "green", "blue", "rare", "never seen", ""])),
        "size": st.sampled_from(["s", "m", "l", "xxl"]),
        "when": st.one_of(
            st.none(),
            st.just("not a date"),
            st.dates(min_value=pd.Timestamp("1990-01-01").date(), max_value=pd.Timestamp("2040-12-31").date()).map(
                lambda d: d.strftime("%Y-%m-%d")
            ),
        ),
    }
)


def test_every_family_in_the_catalog_has_an_exact_method() -> None:
    assert {path.rsplit(".", 1)[1] for path, _, _ in ESTIMATORS.values()} == set(explanations.METHODS)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=4))
def test_contributions_add_up_to_the_output_for_every_family_on_any_row(explainers: dict, rows: list[dict]) -> None:
    frames = {kind: frame_of(rows, schema) for kind, schema in SCHEMAS.items()}
    for family, kind in CASES:
        explained = explanations.explain(explainers[family, kind], frames[kind])
        assert explained.contributions.shape[:2] == (len(rows), len(SCHEMA.request_names))
        assert additivity_error(explained) <= TOLERANCE, (family, kind)


UNITS = {
    "logistic_regression": "log_odds",
    "hist_gradient_boosting": "log_odds",
    "lightgbm": "log_odds",
    "random_forest": "probability",
    "extra_trees": "probability",
}


def softmax(raw: np.ndarray) -> np.ndarray:
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(("family", "kind"), CASES)
def test_the_output_is_the_models_raw_answer_in_its_units(
    models: dict, explainers: dict, family: str, kind: str
) -> None:
    """Log-odds turn into the pipeline's probabilities (through the sigmoid of the positive class, or the
    softmax), a forest's probabilities are its own, a regressor's value is its prediction."""
    model, schema = models[family, kind], SCHEMAS[kind]
    x, _ = features.split_xy(table(50, 1, kind), schema)
    explained = explanations.explain(explainers[family, kind], x)
    if kind == "regression":
        assert explained.units == "value" and explained.classes == []
        np.testing.assert_allclose(explained.output[:, 0], model.predict(x), rtol=0, atol=1e-9)
        return
    assert explained.units == UNITS[family]
    proba = model.predict_proba(x)
    if kind == "binary":
        assert explained.classes == ["b"]  # the positive class: the second
        proba = proba[:, 1:]
    else:
        assert explained.classes == ["a", "b", "c"]
    if explained.units == "probability":
        got = explained.output
    elif kind == "binary":
        got = 1.0 / (1.0 + np.exp(-explained.output))
    else:
        got = softmax(explained.output)
    np.testing.assert_allclose(got, proba, rtol=0, atol=1e-9)


def test_every_output_column_traces_to_the_column_the_request_sent(models: dict) -> None:
    """Numbers to themselves, one-hot columns to their category's column, date parts to the date."""
    preprocessor = models["logistic_regression", "multiclass"][0]
    found = explanations.sources(preprocessor, SCHEMA)
    made = list(preprocessor.get_feature_names_out())
    assert len(found) == len(made) and set(found) == set(SCHEMA.request_names)
    assert found.count("when") == len(dates.PARTS)
    assert found.count("size") == 3 and found.count("colour") == 5  # red, green, blue, missing, infrequent
    for source, name in zip(found, made, strict=True):
        assert name == source or name.startswith((f"{source}_", f"{source}."))
    assert "when" in SCHEMA.request_names and not any("." in c for c in SCHEMA.request_names)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=ROW, colour=ROW.map(lambda r: r["colour"]), when=ROW.map(lambda r: r["when"]))
def test_a_linear_models_column_change_moves_only_that_columns_contribution(
    explainers: dict, row: dict, colour: str | None, when: str | None
) -> None:
    """A category's one-hot columns are summed back to its column, and a date's parts to the date: a
    row whose colour (or date) changes moves only that column's contribution, in every class."""
    for family, kind in (
        ("logistic_regression", "multiclass"),
        ("logistic_regression", "binary"),
        ("ridge", "regression"),
    ):
        schema = SCHEMAS[kind]
        for column, value in (("colour", colour), ("when", when)):
            pair = explanations.explain(explainers[family, kind], frame_of([row, {**row, column: value}], schema))
            moved = np.abs(pair.contributions[0] - pair.contributions[1]).max(axis=1)
            others = [i for i, c in enumerate(pair.columns) if c != column]
            assert moved[others].max() <= 1e-12, (family, column)
            np.testing.assert_allclose(pair.base[0], pair.base[1], rtol=0, atol=0)


def test_a_multiclass_answer_is_keyed_by_class_and_the_json_holds_floats(explainers: dict) -> None:
    x, _ = features.split_xy(table(3, 2, "multiclass"), SCHEMA)
    explained = explanations.explain(explainers["lightgbm", "multiclass"], x)
    rows = explanations.as_json(explained)
    assert len(rows) == 3 and json.loads(json.dumps(rows)) == rows
    for i, row in enumerate(rows):
        assert set(row) == {"output", "base", "contributions"}
        assert list(row["output"]) == list(row["base"]) == list(row["contributions"]) == ["a", "b", "c"]
        for k, label in enumerate(SCHEMA.classes):
            contributions = row["contributions"][label]
            assert list(contributions) == SCHEMA.request_names
            assert all(type(v) is float for v in contributions.values())
            assert math.isclose(row["base"][label] + sum(contributions.values()), row["output"][label], abs_tol=1e-9)
            assert row["output"][label] == explained.output[i, k]


@pytest.mark.parametrize(("family", "kind"), [("random_forest", "binary"), ("lightgbm_regressor", "regression")])
def test_a_binary_or_regression_answer_is_one_number_per_row(explainers: dict, family: str, kind: str) -> None:
    schema = SCHEMAS[kind]
    x, _ = features.split_xy(table(2, 3, kind), schema)
    rows = explanations.as_json(explanations.explain(explainers[family, kind], x))
    for row in rows:
        assert type(row["output"]) is float and type(row["base"]) is float
        assert list(row["contributions"]) == schema.request_names
        assert math.isclose(row["base"] + sum(row["contributions"].values()), row["output"], abs_tol=1e-9)


def test_the_global_view_is_the_mean_absolute_contribution_over_rows_and_classes(explainers: dict) -> None:
    x, _ = features.split_xy(table(40, 4, "multiclass"), SCHEMA)
    explained = explanations.explain(explainers["hist_gradient_boosting", "multiclass"], x)
    found = explanations.mean_absolute(explained)
    assert sorted(r["feature"] for r in found) == sorted(SCHEMA.request_names)
    assert [r["contribution"] for r in found] == sorted((r["contribution"] for r in found), reverse=True)
    by_column = {r["feature"]: r["contribution"] for r in found}
    index = SCHEMA.request_names.index("when")
    assert by_column["when"] == round(float(np.abs(explained.contributions[:, index, :]).mean()), 6)


def test_a_log_link_regressor_explains_the_log_of_its_value() -> None:
    """A Poisson boosting model predicts exp(raw score): its contributions add up to the log, and say so."""
    model = fitted("hist_gradient_boosting_regressor", "regression", loss="poisson")
    x, _ = features.split_xy(table(20, 5, "regression"), REGRESSION)
    explained = explanations.explain(explanations.explainer(model, REGRESSION), x)
    assert explained.units == "log_value" and additivity_error(explained) <= TOLERANCE
    np.testing.assert_allclose(np.exp(explained.output[:, 0]), model.predict(x), rtol=1e-9)


def test_the_training_mean_travels_with_the_model_and_not_into_the_compiled_graph(models: dict) -> None:
    import onnx

    model = models["logistic_regression", "multiclass"]
    x, _ = features.split_xy(table(300, 0, "multiclass"), SCHEMA)
    assert model.background_ == pytest.approx(model[0].transform(x).mean(axis=0).tolist(), abs=1e-12)
    assert all(type(v) is float for v in model.background_)
    graph = onnx.load_from_string(conversion.compile_pipeline(model, SCHEMA))
    assert not [p.key for p in graph.metadata_props if "background" in p.key]


def test_a_model_without_its_training_mean_or_of_an_unknown_family_is_refused(models: dict) -> None:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    model = models["ridge", "regression"]
    x, y = features.split_xy(table(30, 6, "regression"), REGRESSION)
    bare = Pipeline(model.steps)  # as trained before explanations: no background_
    with pytest.raises(PipelineError, match=r"no training mean \(background_\)"):
        explanations.explainer(bare, REGRESSION)
    knn = Pipeline([model.steps[0], ("model", KNeighborsClassifier(3).fit(model[0].transform(x), y > np.median(y)))])
    with pytest.raises(PipelineError, match="no exact explanation for KNeighborsClassifier"):
        explanations.explainer(knn, REGRESSION)


def test_evaluate_averages_contributions_on_a_seeded_sample_of_the_test_rows(
    models: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """evaluate.explain_rows: the same sample for the same seed, every row with 0, and the stage says which."""
    from tabpipe.model import evaluation

    model = models["random_forest", "multiclass"]
    x, _ = features.split_xy(table(120, 8, "multiclass"), SCHEMA)
    with caplog.at_level("INFO", logger="evaluate"):
        sampled = evaluation.contributions(model, x, SCHEMA, rows=40, seed=3)
        whole = evaluation.contributions(model, x, SCHEMA, rows=0, seed=3)
    expected = explanations.mean_absolute(
        explanations.explain(explanations.explainer(model, SCHEMA), x.sample(40, random_state=3))
    )
    assert sampled == expected == evaluation.contributions(model, x, SCHEMA, rows=40, seed=3)
    assert whole == explanations.mean_absolute(explanations.explain(explanations.explainer(model, SCHEMA), x))
    assert whole != sampled and [r["feature"] for r in whole if r["feature"] == "when"] == ["when"]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("contributions: 40 of 120 test rows (evaluate.explain_rows), in probability")
    assert lines[1].startswith("contributions: 120 of 120 test rows")


def test_the_service_explains_request_rows_with_one_explainer_built_on_first_use(models: dict) -> None:
    """POST /explain's body: contributions keyed by the columns a request sends (the date, not its parts),
    adding up to the output; the pipeline is loaded once, by the first request, whichever thread asks."""
    from concurrent.futures import ThreadPoolExecutor

    from tabpipe.serve import explaining, unseen

    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        return models[("lightgbm", "binary")]

    explainer = explaining.Explaining(load, BINARY)
    assert not loads
    with ThreadPoolExecutor(4) as pool:
        built = set(map(id, pool.map(lambda _: explainer.get(), range(8))))
    assert len(built) == 1 and len(loads) == 1
    rows = [{"small": 0.5, "large": 5e5, "colour": "red", "size": "l", "when": "2021-08-01"}, dict.fromkeys(ROW_KEYS)]
    model_rows, _ = unseen.model_rows(rows, BINARY)
    body = explaining.answer(explainer.get(), model_rows, BINARY, None)  # a pipeline served: scikit-learn transforms
    assert body["units"] == "log_odds" and len(body["explanations"]) == 2
    for each in body["explanations"]:
        assert list(each["contributions"]) == BINARY.request_names
        assert abs(each["base"] + sum(each["contributions"].values()) - each["output"]) <= TOLERANCE
    raw = models[("lightgbm", "binary")].decision_function(frame_of(rows, BINARY))
    assert [e["output"] for e in body["explanations"]] == pytest.approx(list(raw), abs=1e-9)


def test_an_explainer_that_cannot_be_built_fails_every_request_with_the_reason_and_loads_once() -> None:
    from tabpipe.serve import explaining

    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        raise ModuleNotFoundError("No module named 'shap'")

    explainer = explaining.Explaining(load, BINARY)
    for _ in range(2):
        with pytest.raises(PipelineError, match="explanations unavailable: No module named 'shap'"):
            explainer.get()
    assert len(loads) == 1


@pytest.mark.parametrize(
    ("family", "extra"),
    [
        ("logistic_regression", []),
        ("lightgbm", ["lightgbm"]),
        ("random_forest", ["shap"]),
        ("hist_gradient_boosting", ["shap"]),
    ],
)
def test_the_image_gets_what_explaining_its_family_needs(models: dict, family: str, extra: list[str]) -> None:
    from importlib import metadata

    from tabpipe.deploy.image import runtime_packages

    wanted = ["scikit-learn", *extra]
    assert runtime_packages(models[(family, "binary")]) == [f"{name}=={metadata.version(name)}" for name in wanted]


@pytest.fixture(scope="module")
def compiled_models(models: dict) -> dict[tuple[str, str], Any]:
    from tabpipe.model.compiled import Compiled
    from tabpipe.task import tasks

    return {
        (family, kind): Compiled(conversion.compile_pipeline(model, SCHEMAS[kind]), tasks.of(SCHEMAS[kind].task))
        for (family, kind), model in models.items()
    }


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW.filter(lambda r: r["when"] != "not a date"), min_size=1, max_size=4))
def test_the_compiled_graph_preprocesses_rows_for_explanations_as_scikit_learn_does(
    explainers: dict, compiled_models: dict, rows: list[dict]
) -> None:
    """/explain takes the preprocessed rows from the served graph (microseconds) instead of scikit-learn's
    preprocessor (milliseconds): the same numbers, so the same explanation, for every family."""
    from tabpipe.serve import explaining, unseen

    for (family, kind), served in compiled_models.items():
        schema, explainer = SCHEMAS[kind], explainers[(family, kind)]
        model_rows, _ = unseen.model_rows(rows, schema)
        expected = explainer.model[:-1].transform(frame_of(rows, schema))
        assert np.abs(served.transform_records(model_rows) - expected).max() <= 1e-9, family
        fast = explaining.answer(explainer, model_rows, schema, served)
        slow = explaining.answer(explainer, model_rows, schema, None)
        assert fast["units"] == slow["units"]
        assert np.allclose(flat(fast["explanations"]), flat(slow["explanations"]), rtol=1e-9, atol=1e-9), family


def flat(explained: list[dict[str, Any]]) -> list[float]:
    """Every number of an /explain answer, in order."""
    return [v for each in explained for v in pd.json_normalize(each).iloc[0].tolist()]


def test_a_graph_compiled_before_explanations_is_explained_through_scikit_learn(explainers: dict, models: dict) -> None:
    """A rolled-back graph without the preprocessed output: /explain still answers, through scikit-learn."""
    import onnx

    from tabpipe.model.compiled import TRANSFORMED, Compiled
    from tabpipe.serve import explaining, unseen
    from tabpipe.task import tasks

    graph = onnx.load_from_string(conversion.compile_pipeline(models[("lightgbm", "binary")], BINARY))
    kept = [o for o in graph.graph.output if o.name != TRANSFORMED]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    older = Compiled(graph.SerializeToString(), tasks.of("classification"))
    assert not older.transforms
    rows, _ = unseen.model_rows([dict.fromkeys(ROW_KEYS)], BINARY)
    with pytest.raises(PipelineError, match="predates explanations"):
        older.transform_records(rows)
    explainer = explainers[("lightgbm", "binary")]
    assert explaining.answer(explainer, rows, BINARY, older) == explaining.answer(explainer, rows, BINARY, None)


def test_a_pipeline_that_does_not_unpickle_is_a_reason_not_a_crash() -> None:
    """Any failure to build (here joblib's on corrupt bytes) becomes the same 503 reason, not a 500."""
    import pickle

    from tabpipe.serve import explaining

    def load() -> Any:
        raise pickle.UnpicklingError("invalid load key, 'x'")

    with pytest.raises(PipelineError, match="explanations unavailable: invalid load key"):
        explaining.Explaining(load, BINARY).get()
