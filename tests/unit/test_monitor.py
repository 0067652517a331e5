"""The monitor's decision: quiet on identically distributed traffic, firing on shifted traffic or worse metrics."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tabpipe.core import settings
from tabpipe.core.errors import PipelineError
from tabpipe.data import datasets
from tabpipe.model import features
from tabpipe.monitor import assess, prometheus, traffic
from tabpipe.task import classification
from tabpipe.task.base import Predicted
from tests.support.params import params_section
from tests.support.paths import RAW, ROOT

SETTINGS = settings.read(ROOT / "params.yaml").section(settings.Monitor)


@pytest.fixture(scope="module")
def adult() -> dict:
    """Adult split into a model's training part, a reference (with its predictions) and iid traffic."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    loaded = datasets.load(params_section(settings.Data, dataset="adult"), ROOT, RAW, seed=0)
    frame, schema = loaded.frame.sample(frac=1.0, random_state=0).reset_index(drop=True), loaded.schema
    fit, reference, iid = frame[:8000], frame[8000:18000], frame[18000:].reset_index(drop=True)
    featurize = settings.Featurize(numeric_impute="median", scale=True, min_frequency=5)
    model = Pipeline([("pre", features.preprocessor(schema, featurize)), ("lr", LogisticRegression())])
    model.fit(*features.split_xy(fit, schema))

    def with_predictions(part: pd.DataFrame) -> pd.DataFrame:
        return part.assign(**{assess.PREDICTION: model.predict(part[schema.feature_names])})

    gated = {"roc_auc": 0.9, "accuracy": 0.85}
    importance = ["relationship", "age", "capital-gain", "education-num"]  # as evaluate ranks them
    return {
        "schema": schema,
        "model": model,
        "reference": with_predictions(reference),
        "traffic": iid,
        "predict": with_predictions,
        "gated": gated,
        "importance": importance,
    }


def check(adult: dict, batch: pd.DataFrame, summary: bool = True, **labels) -> assess.Assessment:
    current = adult["predict"](batch)
    return assess.assess(
        adult["reference"],
        current,
        adult["schema"],
        SETTINGS,
        importance=adult["importance"],
        gated=adult["gated"],
        summary=summary,
        **labels,
    )


def test_false_alarm_rate_on_twenty_iid_batches_is_at_most_ten_percent(adult: dict) -> None:
    batches = [adult["traffic"][i * 1000 : (i + 1) * 1000] for i in range(20)]
    alarms = [check(adult, batch, summary=False).retrain for batch in batches]
    assert sum(alarms) / len(alarms) <= 0.10, alarms


def test_a_shifted_numeric_feature_fires_and_is_named(adult: dict) -> None:
    batch = adult["traffic"][:1000].copy()
    batch["age"] = (batch["age"] + 8).clip(upper=90)
    result = check(adult, batch)
    assert result.retrain and result.exit_code == assess.RETRAIN
    assert any("age" in reason for reason in result.reasons)
    assert result.metrics["feature_drift"]["age"] < SETTINGS.drift.num_threshold


def test_a_category_frequency_change_fires(adult: dict) -> None:
    batch = adult["traffic"][:1000].copy()
    married = batch["relationship"] == "Husband"
    batch.loc[married[married].index[: int(married.sum() * 0.8)], "relationship"] = "Unmarried"
    result = check(adult, batch)
    assert result.retrain and any("relationship" in reason for reason in result.reasons)


def test_labels_give_live_metrics_and_a_drop_fires(adult: dict) -> None:
    schema, batch = adult["schema"], adult["traffic"][:1000]
    proba = adult["model"].predict_proba(batch[schema.feature_names])
    truth = batch[schema.target].to_numpy()
    answered = Predicted(classification.labels(proba, schema.classes), proba, list(schema.classes))
    honest = check(adult, batch, truth=truth, predicted=answered)
    assert 0.85 < honest.metrics["labelled"]["roc_auc"] < 0.95 and not honest.retrain
    flipped = np.where(truth == schema.classes[0], schema.classes[1], schema.classes[0])
    worse = check(adult, batch, truth=flipped, predicted=answered)
    assert worse.retrain and any(reason.startswith("roc_auc:") for reason in worse.reasons)


def test_a_window_too_small_or_missing_a_feature_is_refused(adult: dict) -> None:
    with pytest.raises(PipelineError, match=r"fewer than monitor\.min_rows"):
        check(adult, adult["traffic"][:5])
    current = adult["predict"](adult["traffic"][:500]).drop(columns=["age"])
    with pytest.raises(PipelineError, match="column 'age'"):
        assess.assess(adult["reference"], current, adult["schema"], SETTINGS, importance=[], gated={})


def test_prometheus_text_parses_and_carries_thresholds(adult: dict, tmp_path) -> None:
    result = check(adult, adult["traffic"][:1000])
    gated = {"roc_auc": 0.9, "accuracy": 0.85, "expected_cost": 0.3, "rows": 100}
    registry = prometheus.collect(result.metrics, SETTINGS, {"name": "m", "version": "v"}, gated, 1.0)
    prometheus.write(tmp_path / "out" / "drift.prom", registry)
    text = (tmp_path / "out" / "drift.prom").read_text()
    assert text == generate_latest(registry).decode() and [p.name for p in (tmp_path / "out").iterdir()] == [
        "drift.prom"
    ]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["tabpipe_drift_share_threshold"].samples[0].value == SETTINGS.drift.max_drifted_share
    thresholds = {s.labels["metric"]: s.value for s in families["tabpipe_labelled_metric_threshold"].samples}
    assert thresholds == {m: round(gated[m] - d, 6) for m, d in SETTINGS.max_metric_drop.items() if m in gated}
    ceilings = {s.labels["metric"]: s.value for s in families["tabpipe_labelled_metric_ceiling"].samples}
    assert ceilings == {"expected_cost": round(0.3 + SETTINGS.max_metric_rise["expected_cost"], 6)}
    assert families["tabpipe_retrain_required"].samples[0].value == 0
    features_seen = {s.labels["feature"] for s in families["tabpipe_feature_drift_score"].samples}
    assert features_seen == set(adult["schema"].feature_names)


def test_labels_join_on_request_and_row_and_refuse_duplicates() -> None:
    logged = pd.DataFrame({"request_id": ["a", "a", "b"], "row": [0, 1, 0]})
    labels = pd.DataFrame({"request_id": ["b", "a"], "row": [0, 1], "y": ["yes", "no"]})
    joined = traffic.join_labels(logged, labels, "y", "labels.csv")
    assert joined.isna().tolist() == [True, False, False] and joined.tolist()[1:] == ["no", "yes"]
    with pytest.raises(PipelineError, match=r"labels\.csv: column 'row'"):
        traffic.join_labels(logged, pd.concat([labels, labels]), "y", "labels.csv")
    with pytest.raises(PipelineError, match="column 'y'"):
        traffic.join_labels(logged, labels.drop(columns=["y"]), "y", "labels.csv")


def test_unseen_values_are_counted_by_column_and_kind_from_the_log_and_from_a_batch(adult: dict, tmp_path) -> None:
    from tabpipe.serve import prediction_log

    schema, rows = adult["schema"], adult["traffic"][:40]
    records = rows[schema.feature_names].astype(object).where(rows[schema.feature_names].notna(), None)
    labels, proba = features_predict(adult, rows)
    flags = [{}] * 40
    flags[3] = {"age": "above_range", "workclass": "unseen_category"}
    flags[7] = {"age": "above_range"}
    log = prediction_log.PredictionLog(tmp_path / "log.db")
    log.append(
        prediction_log.new(
            records.to_dict(orient="records"), labels, proba, list(schema.classes), {"name": "m", "version": "v"}, flags
        )
    )
    log.close()
    logged = traffic.from_log(prediction_log.read(tmp_path / "log.db"), adult["model"], schema, None, "labels.csv")
    assert logged.unseen_rows == 2
    assert logged.unseen == {"age": {"above_range": 2}, "workclass": {"unseen_category": 1}}

    batch = rows.copy()
    batch.loc[batch.index[:3], "age"] = 150.0  # adult declares ages up to 120
    batch.loc[batch.index[5], "workclass"] = "Space"
    batch.loc[batch.index[6], "education"] = np.nan  # education never misses in adult
    found = traffic.from_batch(batch, adult["model"], schema, "batch.csv")
    assert found.unseen_summary() == {
        "unseen_rows": 5,
        "unseen_values": {
            "age": {"above_range": 3},
            "education": {"missing": 1},
            "workclass": {"unseen_category": 1},
        },
    }

    result = check(adult, rows)
    values = {**result.metrics, **found.unseen_summary()}
    text = generate_latest(prometheus.collect(values, SETTINGS, {"name": "m", "version": "v"}, {}, 1.0)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.labels["feature"], s.labels["kind"]): s.value for s in families["tabpipe_monitor_unseen_values"].samples
    }
    assert samples == {("age", "above_range"): 3, ("education", "missing"): 1, ("workclass", "unseen_category"): 1}


def test_a_batch_past_the_float_range_is_predicted_as_at_the_ranges_end(adult: dict) -> None:
    """A forest refuses numbers past float32 ("Input X contains infinity"); the service would send 120."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    schema, rows = adult["schema"], adult["traffic"][:20].reset_index(drop=True)
    featurize = settings.Featurize(numeric_impute="median", scale=True, min_frequency=5)
    forest = Pipeline(
        [("pre", features.preprocessor(schema, featurize)), ("rf", RandomForestClassifier(10, random_state=0))]
    )
    forest.fit(*features.split_xy(adult["traffic"][1000:3000], schema))
    extreme, at_end = rows.copy(), rows.copy()
    extreme.loc[0, "age"], at_end.loc[0, "age"] = 1e308, 120.0
    found = traffic.from_batch(extreme, forest, schema, "batch.csv")
    expected = forest.predict(at_end[schema.feature_names])
    assert found.window[assess.PREDICTION].tolist() == [str(label) for label in expected]
    assert found.unseen == {"age": {"above_range": 1}}


def features_predict(adult: dict, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    proba = adult["model"].predict_proba(rows[adult["schema"].feature_names])
    return adult["model"].classes_[proba.argmax(axis=1)], proba


def test_logged_decisions_are_judged_by_the_served_rule_and_a_cost_rise_fires(adult: dict, tmp_path) -> None:
    """The log holds labels decided at the served threshold: the window's metrics use that rule, its
    positive rate and expected cost are the served decisions', and a cost past the gated one plus
    monitor.max_metric_rise advises retraining."""
    import copy

    from tabpipe.serve import prediction_log

    schema, rows = adult["schema"], adult["traffic"][:600]
    served = copy.copy(adult["model"])
    positive = schema.classes[1]
    rule = classification.Decision("cost", positive, 0.2, 1.0, 5.0)
    served.decision_ = dataclasses.asdict(rule)
    proba = served.predict_proba(rows[schema.feature_names])
    decided = classification.labels(proba, served.classes_, rule)
    assert (decided != served.classes_[proba.argmax(axis=1)]).any()  # the threshold changes some labels
    log = prediction_log.PredictionLog(tmp_path / "log.db")
    records = rows[schema.feature_names].astype(object).where(rows[schema.feature_names].notna(), None)
    request_id = log.append(
        prediction_log.new(
            records.to_dict(orient="records"), decided, proba, list(schema.classes), {"name": "m", "version": "v"}
        )
    )
    log.close()
    truth = rows[schema.target].to_numpy()
    labels = pd.DataFrame({"request_id": request_id, "row": range(len(rows)), schema.target: truth})
    window = traffic.from_log(prediction_log.read(tmp_path / "log.db"), served, schema, labels, "truth.csv")
    live = classification.Classification().window_metrics(window.labelled["truth"], window.labelled["predicted"])

    said, actual = decided == positive, truth == positive
    assert live["positive_rate"] == pytest.approx(said.mean(), abs=1e-6)
    cost = ((said & ~actual).sum() * 1.0 + (~said & actual).sum() * 5.0) / len(rows)
    assert live["expected_cost"] == pytest.approx(cost, abs=1e-6)
    assert live["accuracy"] == pytest.approx((decided == truth).mean(), abs=1e-6)  # the served labels, not argmax

    def judged(gated_cost: float) -> assess.Assessment:
        return assess.assess(
            adult["reference"],
            window.window,
            schema,
            SETTINGS,
            importance=adult["importance"],
            gated={"expected_cost": gated_cost},
            summary=False,
            **window.labelled,
        )

    assert not any(r.startswith("expected_cost") for r in judged(cost).reasons)
    low = round(cost - SETTINGS.max_metric_rise["expected_cost"] - 0.01, 6)
    assert any(r.startswith("expected_cost:") and "above the gated" in r for r in judged(low).reasons)


def test_a_score_cannot_be_bounded_by_how_far_it_rises() -> None:
    with pytest.raises(Exception, match="max_metric_rise"):
        settings.parse(settings.Monitor, {**SETTINGS.model_dump(), "max_metric_rise": {"roc_auc": 0.1}}, "params.yaml")
