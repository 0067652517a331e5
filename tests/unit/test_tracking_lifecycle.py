"""One model's life in a real MLflow store, in this process: train, evaluate, compile, release, replace.

The stages do this under `dvc repro` (tests/integration); here the same functions run against a
SQLite store in a temporary folder, so a broken call fails fast and in detail.
"""

from pathlib import Path

import joblib
import pytest

from tabpipe.core import hashing, settings
from tabpipe.core.errors import PipelineError
from tabpipe.model import conversion, evaluation, features, fingerprint, training
from tabpipe.task.classification import Classification
from tabpipe.tracking import backend, registry, runs
from tests.support.data import TOY, toy_frame
from tests.support.params import params_section

FEATURIZE = settings.Featurize(numeric_impute="median", scale=True, min_frequency=1)
SEARCH = settings.Search(method="grid", factor=3, min_rows=1000, max_rows=0)
REGRESSION = settings.Regression(
    scoring="neg_root_mean_squared_error", candidates={"linear": settings.Candidate(estimator="ridge")}, interval=0.9
)
EVALUATE = params_section(settings.Evaluate, importance_scoring="roc_auc", importance_repeats=1, importance_rows=0)


def train_settings(**candidates: settings.Candidate) -> settings.Train:
    return settings.Train(
        experiment="lifecycle",
        scoring="roc_auc",
        cv_folds=2,
        n_jobs=1,
        class_weight="none",
        calibration="none",
        search=SEARCH,
        candidates=candidates,
        regression=REGRESSION,
    )


LOGREG = settings.Candidate(estimator="logistic_regression", grid={"C": [0.1, 1.0]})
STUMP = settings.Candidate(estimator="random_forest", fixed={"n_estimators": 3, "max_depth": 1})


@pytest.fixture
def tracked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite store of this test's own (what `dvc repro` uses at a repository's root)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", backend.tracking_uri(tmp_path))
    return tmp_path


def trained(candidates: settings.Train, folder: Path) -> tuple[training.Trained, object, str]:
    """Train as the stage does; (what it writes, the model, the model file's SHA-256)."""
    frame = toy_frame(60, seed=1)
    x, y = features.split_xy(frame, TOY)
    preprocessor = features.preprocessor(TOY, FEATURIZE).fit(x)
    with runs.training_run(candidates, 0, "digest", TOY.name) as run:
        result = training.train(
            candidates,
            0,
            preprocessor,
            x,
            y,
            fingerprint=fingerprint.of_rows(frame, TOY),
            task=Classification(),
            decision=params_section(settings.Decision),
        )
        run.record(result)
    run.log_winner(result, x)
    model_file = folder / "model.joblib"
    model_file.write_bytes(result.blob)
    return result, joblib.load(model_file), hashing.file_sha256(model_file)


def test_a_model_is_trained_evaluated_compiled_released_and_replaced(tracked: Path) -> None:
    import mlflow

    first, model, sha = trained(train_settings(logreg=LOGREG, stump=STUMP), tracked)
    assert first.summary["winner"] in {"logreg", "stump"} and set(first.summary["cv"]) == {"logreg", "stump"}

    # The winner's run is found by the model file's hash and holds the logged pipeline.
    run_id = runs.run_for_model(sha)
    model_id = runs.logged_model_of(run_id) if run_id else None
    assert model_id is not None
    pinned = (
        Path(
            mlflow.artifacts.download_artifacts(
                f"{mlflow.get_logged_model(model_id).artifact_location}/requirements.txt"
            )
        )
        .read_text()
        .split()
    )
    assert set(runs.requirements(model)) <= set(pinned)  # MLflow checked them without its module scan
    children = mlflow.search_runs(search_all_experiments=True, filter_string="tags.candidate != ''")
    assert sorted(children["tags.candidate"]) == ["logreg", "stump"]

    # Evaluate logs test metrics against that model, with the test split as their dataset, and the figures.
    test = toy_frame(40, seed=2)
    test_file = tracked / "test.parquet"
    test.to_parquet(test_file, index=False)
    x_test, y_test = features.split_xy(test, TOY)
    result = evaluation.evaluate(model, test, x_test, y_test, EVALUATE, 0, Classification(), trained=model, schema=TOY)
    runs.record_evaluation(sha, test, TOY.target, test_file, result)
    logged = mlflow.get_run(run_id)
    assert logged.data.metrics["test_roc_auc"] == result.metrics["roc_auc"]
    assert [i.dataset.name for i in logged.inputs.dataset_inputs] == ["test"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {
        "confusion_matrix.png",
        "roc_curve.png",
        "pr_curve.png",
        "reliability.png",
        "permutation_importance.json",
        "contributions.json",
    } <= artifacts

    # The compiled model is logged once, however often package runs.
    built = conversion.build(first.blob, model, TOY, "onnx")
    served = tracked / built.file_name
    served.write_bytes(built.blob)
    compiled_id = runs.log_compiled(sha, served)
    assert compiled_id is not None and runs.log_compiled(sha, served) == compiled_id

    # The first release makes version 1 champion; releasing it again changes nothing.
    name, version = registry.release_gated("tabpipe", TOY.name, sha, result.metrics, "digest", {"runtime": "onnx"})
    assert (name, version) == ("tabpipe-toy", "1")
    assert registry.release_gated("tabpipe", TOY.name, sha, result.metrics, "digest", {})[1] == "1"
    champion = registry.champion(name)
    assert champion is not None and (champion.version, champion.model_sha256) == ("1", sha)
    assert registry.version_metrics(name, "1")["roc_auc"] == result.metrics["roc_auc"]
    assert registry.challenger(name, sha) == (champion, None)  # the champion itself: nothing to compare

    # Another model is compared with the champion, loaded from the registry, then replaces it.
    (tracked / "second").mkdir()
    other_sha = trained(train_settings(stump=STUMP), tracked / "second")[2]
    assert other_sha != sha
    current, incumbent = registry.challenger(name, other_sha)
    assert current == champion and (incumbent.predict_proba(x_test) == model.predict_proba(x_test)).all()
    # The registered champion carries its training rows' fingerprint: it trained on all 60, on none of the test's.
    assert fingerprint.seen(incumbent, toy_frame(60, seed=1)).all()
    assert not fingerprint.seen(incumbent, test).any()
    assert registry.release_gated("tabpipe", TOY.name, other_sha, {}, "digest", {}) == (name, "2")
    client = backend.client()
    assert client.get_model_version_by_alias(name, registry.PREVIOUS).version == 1
    assert client.get_model_version_by_alias(name, registry.CHAMPION).version == 2

    # A model no run holds cannot be released: one line saying how to get it back.
    with pytest.raises(PipelineError, match="no run holds this model"):
        registry.release_gated("tabpipe", TOY.name, "0" * 64, {}, "digest", {})
