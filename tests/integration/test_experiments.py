"""Real `dvc repro`, `dvc exp run` and queued sweeps, checked against the MLflow store they write."""

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.support.commands import dvc, run
from tests.support.projects import Reproduced, copy_reproduced

pytestmark = pytest.mark.integration


def store(repo: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")


def runs(repo: Path, experiment: str = "tabpipe-iris"):
    client = store(repo)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return found, client.search_runs([found.experiment_id], max_results=1000)


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", message], repo)


@pytest.fixture(scope="module")
def shared(golden: Reproduced, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One reproduced project for the tests that only read it (the others change it: their own copy)."""
    return copy_reproduced(golden, tmp_path_factory.mktemp("experiments")).repo


def test_repro_logs_candidates_winner_model_and_test_metrics(shared: Path) -> None:
    repo = shared
    experiment, found = runs(repo)
    assert experiment.artifact_location == (repo / "mlruns/tabpipe-iris").as_uri()
    parents = [r for r in found if r.data.tags.get("mlflow.runName") == "train"]
    children = [r for r in found if "candidate" in r.data.tags]
    assert len(parents) == 1
    assert sorted(r.data.tags["candidate"] for r in children) == ["boosting", "forest", "lightgbm", "logreg"]
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    assert all({"cv_mean", "cv_std", "fit_seconds"} <= set(r.data.metrics) for r in children)

    (winner,) = [r for r in children if r.data.tags.get("winner") == "true"]
    model_hash = hashlib.sha256((repo / "models/model.joblib").read_bytes()).hexdigest()
    assert winner.data.tags["tabpipe.model_sha256"] == model_hash
    assert winner.data.tags["mlflow.source.git.commit"] == run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert "git_commit" not in winner.data.tags
    train_metrics = json.loads((repo / "metrics/train.json").read_text())
    assert winner.data.tags["candidate"] == train_metrics["winner"]

    evaluate = json.loads((repo / "metrics/evaluate.json").read_text())
    assert winner.data.metrics["test_accuracy"] == evaluate["accuracy"]
    assert winner.data.metrics["test_roc_auc"] == evaluate["roc_auc"]
    assert evaluate["accuracy"] >= 0.93
    test_md5 = hashlib.md5((repo / "data/prepared/test.parquet").read_bytes()).hexdigest()
    (test_input,) = winner.inputs.dataset_inputs
    assert test_input.dataset.name == "test" and test_input.dataset.digest == test_md5
    assert test_input.tags[0].value == "test"  # mlflow.data.context
    artifacts = {a.path for a in store(repo).list_artifacts(winner.info.run_id)}
    assert {"confusion_matrix.png", "roc_curve.png", "pr_curve.png", "permutation_importance.json"} <= artifacts


def test_logged_model_has_signature_and_predicts_like_the_dvc_output(
    shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joblib
    import mlflow
    import pandas as pd

    repo = shared
    experiment, _ = runs(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo}/mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{repo}/mlflow.db")
    models = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    assert sorted(m.name for m in models) == ["compiled", "model"]  # the pipeline, and the ONNX model serving it
    (logged,) = [m for m in models if m.name == "model"]
    evaluate = json.loads((repo / "metrics/evaluate.json").read_text())
    on_model = {m.key: m for m in logged.metrics}
    assert on_model["test_roc_auc"].value == evaluate["roc_auc"] and on_model["test_roc_auc"].dataset_name == "test"
    info = mlflow.models.get_model_info(logged.model_uri)
    assert [c["name"] for c in info.signature.inputs.to_dict()] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    test = pd.read_parquet(repo / "data/prepared/test.parquet").drop(columns=["species"])
    served = mlflow.sklearn.load_model(logged.model_uri)
    local = joblib.load(repo / "models/model.joblib")
    assert (served.predict_proba(test) == local.predict_proba(test)).all()


def test_plots_and_metrics_render_for_review(shared: Path) -> None:
    repo = shared
    shown = dvc("plots", "show", "-o", "plots_out", cwd=repo)
    assert (repo / "plots_out/index.html").is_file(), shown.stdout
    html = (repo / "plots_out/index.html").read_text()
    for title in ("Confusion matrix", "ROC", "Precision-recall", "Permutation importance"):
        assert title in html
    metrics = json.loads(dvc("metrics", "show", "--json", cwd=repo).stdout)
    assert metrics  # keyed by revision; flattened checks below
    text = dvc("metrics", "show", cwd=repo).stdout
    assert "roc_auc" in text and "cv_score" in text


def test_exp_run_with_a_train_param_reruns_only_train_and_evaluate(reproduced: Reproduced) -> None:
    repo = reproduced.repo
    commit(repo, "baseline results")
    before = json.loads((repo / "metrics/train.json").read_text())["cv"]["logreg"]
    # Changing the winner's own grid changes the model, so evaluate must rerun too. The target
    # stops at evaluate: whether this weaker model may ship is the gate's business (test_release).
    result = dvc("exp", "run", "-n", "weak-logreg", "-S", "train.candidates.logreg.grid.C=[0.01]", "evaluate", cwd=repo)
    for stage in ("ingest", "validate", "featurize"):
        assert f"Stage '{stage}' didn't change, skipping" in result.stdout
    for stage in ("train", "evaluate"):
        assert f"Running stage '{stage}'" in result.stdout
    after = json.loads((repo / "metrics/train.json").read_text())["cv"]["logreg"]
    assert after != before

    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    text = json.dumps(shown)
    assert "weak-logreg" in text and str(after) in text
    diff = dvc("metrics", "diff", "HEAD", "--md", cwd=repo).stdout
    assert "cv.logreg" in diff
    params = dvc("params", "diff", "HEAD", cwd=repo).stdout
    assert "train.candidates.logreg.grid.C" in params

    _, found = runs(repo)
    tagged = {r.data.tags.get("dvc_exp_name") for r in found}
    assert "weak-logreg" in tagged


def test_queued_sweep_runs_land_in_the_workspace_store(reproduced: Reproduced) -> None:
    repo = reproduced.repo
    commit(repo, "baseline results")
    dvc("exp", "run", "--queue", "-S", "train.candidates.forest.fixed.n_estimators=7,9", cwd=repo)
    dvc("queue", "start", "-j", "1", cwd=repo)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = dvc("queue", "status", cwd=repo).stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(3)
        assert status.count("Success") == 2, status
    finally:
        dvc("queue", "stop", "--kill", cwd=repo, check=False)

    _, found = runs(repo)
    swept = {
        r.data.tags["dvc_exp_name"]
        for r in found
        if "dvc_exp_name" in r.data.tags and r.data.tags.get("winner") == "true"
    }
    assert len(swept) == 2
    assert not list((repo / ".dvc/tmp").rglob("mlflow.db"))
    shown = dvc("exp", "show", "--csv", cwd=repo).stdout
    assert all(name in shown for name in swept)
