"""The monitor on a regressor: drift of the served values, and its errors and interval coverage once labels arrive."""

import numpy as np
import pandas as pd
import pytest

from tabpipe.core import settings
from tabpipe.data import datasets
from tabpipe.model import evaluation, features
from tabpipe.monitor import assess, traffic
from tabpipe.serve import prediction_log
from tabpipe.task import intervals
from tabpipe.task.regression import Regression
from tests.support.params import params_section
from tests.support.paths import RAW, ROOT

SETTINGS = settings.read(ROOT / "params.yaml").section(settings.Monitor)


@pytest.fixture(scope="module")
def california() -> dict:
    """California split into a model's training part, a reference (with evaluate's predictions) and iid traffic."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline

    loaded = datasets.load(params_section(settings.Data, dataset="california"), ROOT, RAW, seed=0)
    frame, schema = loaded.frame.sample(frac=1.0, random_state=0).reset_index(drop=True), loaded.schema
    fit, reference, iid = frame[:8000], frame[8000:12000], frame[12000:].reset_index(drop=True)
    featurize = settings.Featurize(numeric_impute="median", scale=True, min_frequency=5)
    model = Pipeline(
        [("pre", features.preprocessor(schema, featurize)), ("gb", HistGradientBoostingRegressor(random_state=0))]
    )
    x, y = features.split_xy(fit, schema)
    folds = list(KFold(3, shuffle=True, random_state=0).split(x))
    model.interval_ = intervals.calibrate(model, x, y, folds, 0.9, 1).as_dict()
    model.fit(x, y)
    rx, ry = features.split_xy(reference, schema)
    rules = params_section(settings.Evaluate).for_task("regression")
    found = evaluation.evaluate(model, reference, rx, ry, rules, 0, Regression(), trained=model, schema=schema)
    return {
        "schema": schema,
        "model": model,
        "reference": assess.reference_frame(reference, found.predictions, Regression()),
        "traffic": iid,
        "gated": found.metrics,
    }


def check(california: dict, window: traffic.Traffic) -> assess.Assessment:
    return assess.assess(
        california["reference"],
        window.window,
        california["schema"],
        SETTINGS,
        importance=["MedInc", "AveOccup", "Latitude"],
        gated=california["gated"],
        summary=False,
        **window.labelled,
    )


def test_iid_traffic_with_labels_is_healthy_and_measures_errors_and_coverage(california: dict) -> None:
    batch = california["traffic"][:2000]
    window = traffic.from_batch(batch, california["model"], california["schema"], "batch.csv")
    assert window.window[assess.PREDICTION].dtype == np.float64
    result = check(california, window)
    live = result.metrics["labelled"]
    assert set(live) == {"rmse", "mae", "r2", "interval_coverage"}
    assert live["r2"] == pytest.approx(california["gated"]["r2"], abs=0.05)
    assert live["interval_coverage"] == pytest.approx(0.9, abs=0.03)
    assert not result.retrain, result.reasons


def test_shifted_values_and_worse_errors_fire_with_their_reasons(california: dict) -> None:
    batch = california["traffic"][:2000].copy()
    rich = batch["MedInc"] > batch["MedInc"].median()
    batch = batch[rich].copy()
    batch["MedHouseVal"] = batch["MedHouseVal"] * 0.6  # the market fell: the same houses are worth less
    window = traffic.from_batch(batch, california["model"], california["schema"], "batch.csv")
    result = check(california, window)
    assert result.retrain
    text = "\n".join(result.reasons)
    assert "prediction drift: predicted values shifted by" in text
    assert "r2:" in text and "interval_coverage:" in text
    assert result.metrics["prediction_drift"] >= SETTINGS.prediction_threshold


def test_the_log_keeps_values_and_intervals_and_labels_join_on_them(california: dict, tmp_path) -> None:
    """What the service logs (value as label, interval ends as lower and upper) reads back as a regressor's window."""
    schema, model = california["schema"], california["model"]
    batch = california["traffic"][:300]
    values = np.asarray(model.predict(batch[schema.feature_names]))
    lower, upper = intervals.bounds(values, intervals.of(model))
    log = prediction_log.PredictionLog(tmp_path / "log.db")
    records = batch[schema.feature_names].to_dict(orient="records")
    request_id = log.append(
        prediction_log.new(
            records, values, np.column_stack([lower, upper]), ["lower", "upper"], {"name": "m", "version": "1"}
        )
    )
    log.close()
    logged = prediction_log.read(tmp_path / "log.db")
    labels = pd.DataFrame({"request_id": request_id, "row": range(300), schema.target: batch[schema.target]})
    window = traffic.from_log(logged, model, schema, labels, "truth.csv")
    np.testing.assert_allclose(window.window[assess.PREDICTION].to_numpy(), values)
    np.testing.assert_allclose(window.labelled["predicted"].outputs, np.column_stack([lower, upper]))
    live = Regression().window_metrics(window.labelled["truth"], window.labelled["predicted"])
    inside = (batch[schema.target] >= lower) & (batch[schema.target] <= upper)
    assert live["interval_coverage"] == pytest.approx(inside.mean(), abs=1e-6)
    text = labels.astype({schema.target: object})
    text.loc[0, schema.target] = "cheap"
    with pytest.raises(Exception, match=r"truth\.csv: the target column holds values that are not numbers"):
        traffic.from_log(logged, model, schema, text, "truth.csv")


def test_an_error_metric_cannot_be_bounded_by_how_far_it_falls() -> None:
    with pytest.raises(Exception, match="max_metric_drop"):
        settings.parse(settings.Monitor, {**SETTINGS.model_dump(), "max_metric_drop": {"rmse": 0.1}}, "params.yaml")
