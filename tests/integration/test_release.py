"""The gate decides what ships: real `dvc repro`, a real MLflow registry, a real BentoML store."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.commands import dvc, env
from tests.support.params import ONE_CORE, STRONG, WEAK
from tests.support.projects import Reproduced, set_params
from tests.support.webhook import Receiver, webhook_receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """The team's webhook: a real HTTP receiver on 127.0.0.1."""
    with webhook_receiver() as receiver:
        yield receiver


def registry(repo: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db", registry_uri=f"sqlite:///{repo}/mlflow.db")


def versions(repo: Path) -> list[str]:
    return sorted(str(v.version) for v in registry(repo).search_model_versions("name='tabpipe-iris'"))


def alias(repo: Path, name: str) -> str:
    return str(registry(repo).get_model_version_by_alias("tabpipe-iris", name).version)


def stored_models(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "models" / "tabpipe-iris").glob("*") if p.is_dir())


def assert_champion_is_the_dvc_model(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`models:/tabpipe-iris@champion`, loaded the MLflow way, predicts exactly like models/model.joblib."""
    import joblib
    import mlflow
    import pandas as pd

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo}/mlflow.db")  # set_tracking_uri exports it too
    mlflow.set_tracking_uri(f"sqlite:///{repo}/mlflow.db")
    champion = mlflow.sklearn.load_model("models:/tabpipe-iris@champion")
    test = pd.read_parquet(repo / "data/prepared/test.parquet").drop(columns=["species"])
    local = joblib.load(repo / "models/model.joblib")
    assert (champion.predict_proba(test) == local.predict_proba(test)).all()
    # What serves is logged too, in MLflow's onnx flavor, and named on the registered version.
    version = mlflow.MlflowClient().get_model_version_by_alias("tabpipe-iris", "champion")
    assert version.tags["served.runtime"] == "onnx"
    compiled = mlflow.onnx.load_model(f"models:/{version.tags['served.model_id']}")
    assert compiled.SerializeToString() == (repo / "models/served/model.onnx").read_bytes()


def test_gate_promotes_better_models_and_blocks_worse_ones(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: Receiver
) -> None:
    """...and tells the team's webhook about each new champion and each refusal: one release history."""
    home = tmp_path / "bentoml"
    run_env = env(BENTOML_HOME=str(home), TABPIPE_WEBHOOK_URL=hook.url)
    set_params(project, **{"train.candidates": WEAK, "gate.min.roc_auc": 0.5, "gate.min.f1_macro": 0.1, **ONE_CORE})

    def told() -> list[str]:
        """The webhook's messages since the last call (their plain-text fallback)."""
        texts = [r["body"]["text"] for r in hook.received]
        hook.received.clear()
        return texts

    # First release: no champion yet, so a weak model that clears the minimums ships.
    dvc("repro", cwd=project, env=run_env)
    assert versions(project) == ["1"] and alias(project, "champion") == "1"
    first = json.loads((project / "models/serving.json").read_text())
    assert stored_models(home) == [first["tag"].split(":")[1]]
    version = registry(project).get_model_version("tabpipe-iris", "1")
    assert {"dataset", "params_hash", "metric.roc_auc"} <= set(version.tags) and version.tags["dataset"] == "iris"
    assert "git_commit" not in version.tags  # MLflow records the commit itself, on the run the version came from
    assert len(registry(project).get_run(version.run_id).data.tags["mlflow.source.git.commit"]) == 40
    (first_news,) = told()
    assert "tabpipe-iris" in first_news and "version 1" in first_news and "first champion" in first_news

    # A better model replaces it; the old champion stays findable as `previous`.
    set_params(project, **{"train.candidates": STRONG})
    dvc("repro", cwd=project, env=run_env)
    assert versions(project) == ["1", "2"]
    assert alias(project, "champion") == "2" and alias(project, "previous") == "1"
    report = json.loads((project / "reports/gate.json").read_text())
    assert report["comparison"]["difference"] > 0 and report["champion"]["version"] == "1"
    second = json.loads((project / "models/serving.json").read_text())
    assert len(stored_models(home)) == 2
    assert_champion_is_the_dvc_model(project, monkeypatch)
    (second_news,) = told()
    assert "version 2" in second_news and "(was " in second_news and "roc_auc" in second_news

    # Rerunning the champion's gate and package changes nothing and announces nothing.
    dvc("repro", "--force", "--downstream", "gate", cwd=project, env=run_env)
    assert versions(project) == ["1", "2"] and alias(project, "champion") == "2"
    assert json.loads((project / "metrics/gate.json").read_text())["passed"] is True
    assert told() == []

    # A worse model fails the champion rule: repro stops, nothing is registered or packaged.
    set_params(project, **{"train.candidates": WEAK})
    result = dvc("repro", cwd=project, env=run_env, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "error: gate: champion_not_worse: roc_auc" in result.stderr
    (refusal,) = told()
    assert refusal.startswith("Gate failed for tabpipe-iris") and "champion_not_worse" in refusal
    assert json.loads((project / "metrics/gate.json").read_text())["champion_not_worse"] is False
    assert versions(project) == ["1", "2"] and alias(project, "champion") == "2"
    assert json.loads((project / "models/serving.json").read_text()) == second
    assert len(stored_models(home)) == 2

    # Under a threshold: the same, with the failing rule named (iris' 33 test rows: ROC AUC 1.0, accuracy 0.94).
    set_params(project, **{"train.candidates": STRONG, "gate.min.accuracy": 0.9999})
    result = dvc("repro", cwd=project, env=run_env, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: gate:")]
    assert errors == [next(line for line in errors if "min_accuracy" in line)]
    (refusal,) = told()
    assert "min_accuracy" in refusal and "champion_not_worse" not in refusal.splitlines()[0]
    assert versions(project) == ["1", "2"] and len(stored_models(home)) == 2

    # Returning to an earlier model registers it again: packaging always really runs, though
    # DVC's run-cache restores every stage before it. (A huge tolerance lets the weak one ship.)
    set_params(
        project,
        **{"train.candidates": WEAK, "gate.min.roc_auc": 0.5, "gate.min.accuracy": 0.0, "gate.champion.tolerance": 1.0},
    )
    dvc("repro", cwd=project, env=run_env)
    set_params(project, **{"train.candidates": STRONG})
    dvc("repro", cwd=project, env=run_env)
    assert versions(project) == ["1", "2", "3", "4"]
    assert alias(project, "champion") == "4" and alias(project, "previous") == "3"


def test_a_fresh_clone_registers_its_own_champion(reproduced: Reproduced, tmp_path: Path) -> None:
    from tests.support.commands import run

    project = reproduced.repo
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "results"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    dvc("repro", cwd=clone, env=env(BENTOML_HOME=str(tmp_path / "b")))
    assert versions(clone) == ["1"] and alias(clone, "champion") == "1"
    assert (tmp_path / "b/models/tabpipe-iris").is_dir()
    assert run(["git", "status", "--porcelain"], clone).stdout.strip() == ""  # same bytes as committed
