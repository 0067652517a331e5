"""Where MLflow writes: the repository root (also from DVC's temporary copies) unless a server is named."""

from pathlib import Path

import pytest

from tabpipe.core.hashing import params_hash
from tabpipe.tracking import backend, keys, runs


def test_store_follows_dvc_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(Path("/"))
    uri = backend.tracking_uri()
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert backend.artifact_location("tabpipe-iris", uri) == (tmp_path.resolve() / "mlruns/tabpipe-iris").as_uri()


def test_server_uri_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert backend.tracking_uri() == "http://127.0.0.1:5999"
    assert backend.artifact_location("x", backend.tracking_uri()) is None


def test_metric_keys_are_valid_for_mlflow() -> None:
    assert keys.metric_key("f1_per_class.<=50K") == "f1_per_class.__50K"
    assert keys.metric_key("f1_per_class.>50K") == "f1_per_class._50K"


def test_flatten_matches_dvc_metric_names() -> None:
    assert keys.flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a": 1, "b.c": 2, "b.d.e": 3}


def test_run_tags_carry_experiment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_EXP_NAME", "lucky-dip")
    tags = runs.run_tags("iris", params_hash({"a": 1}))
    assert tags["dvc_exp_name"] == "lucky-dip" and tags["dataset"] == "iris"
    assert tags["params_hash"] == params_hash({"a": 1}) != params_hash({"a": 2})


def test_registry_tags_are_valid_keys_for_any_class_name() -> None:
    from tabpipe.tracking import registry

    tags = registry.metric_tags({"roc_auc": 0.9, "f1_per_class": {"<=50K": 0.91, ">50K": 0.71}})
    assert set(tags) == {"metric.roc_auc", "metric.f1_per_class.__50K", "metric.f1_per_class._50K"}


def test_a_logged_models_requirements_name_its_estimators_library() -> None:
    from importlib.metadata import version

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from tabpipe.model import estimators

    lightgbm = Pipeline([("model", estimators.estimator("lightgbm", {}, 0))])
    assert f"lightgbm=={version('lightgbm')}" in runs.requirements(lightgbm)
    assert not any(r.startswith("lightgbm") for r in runs.requirements(Pipeline([("model", LogisticRegression())])))
