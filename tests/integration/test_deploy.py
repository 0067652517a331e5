"""Release and rollback end to end: real `dvc repro`, `bentoml build`, `bentoml serve` and MLflow registry."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.client import post
from tests.support.commands import dvc, env, run, tabpipe_command
from tests.support.params import ONE_CORE, WEAK
from tests.support.paths import BIN
from tests.support.projects import Reproduced, set_params
from tests.support.servers import serving

pytestmark = pytest.mark.integration

NO_PREVIOUS = "error: rollback: tabpipe-iris has no previous version to roll back to"


def tabpipe(*args: str, repo: Path, home: Path, check: bool = False):
    return run(tabpipe_command(*args), repo, check=check, env=env(BENTOML_HOME=str(home)))


def bentos(repo: Path, home: Path) -> list[str]:
    listed = run([str(BIN / "bentoml"), "list", "-o", "json"], repo, env=env(BENTOML_HOME=str(home))).stdout
    return sorted(item["tag"] for item in json.loads(listed))


def latest(repo: Path, home: Path) -> str:
    got = run([str(BIN / "bentoml"), "get", "tabpipe:latest", "-o", "json"], repo, env=env(BENTOML_HOME=str(home)))
    info = json.loads(got.stdout)
    return f"{info['name']}:{info['version']}"


def registry(repo: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db", registry_uri=f"sqlite:///{repo}/mlflow.db")


def aliases(repo: Path) -> dict[str, str]:
    return {k: str(v) for k, v in registry(repo).get_registered_model("tabpipe-iris").aliases.items()}


def repro(project: Path, home: Path, **params: object) -> None:
    set_params(project, **params)
    dvc("repro", cwd=project, env=env(BENTOML_HOME=str(home)))


def test_release_ships_only_a_bento_that_answers_as_evaluate_did(reproduced: Reproduced) -> None:
    repo, home = reproduced.repo, reproduced.home  # the default project after `dvc repro`: iris, default params
    released = tabpipe("release", repo=repo, home=home)
    assert released.returncode == 0, released.stderr
    (line,) = released.stdout.strip().splitlines()
    manifest = json.loads((repo / "models/serving.json").read_text())
    assert line.startswith("released tabpipe:")
    rows = len(pd.read_parquet(repo / "data/prepared/test.parquet"))  # iris: 33, fewer than the default 50
    assert line.endswith(f": model {manifest['tag']}, {rows} test rows answered as evaluate did")
    first = line.split()[1].rstrip(":")
    assert bentos(repo, home) == [first] and latest(repo, home) == first
    assert not (repo / "logs").exists()  # the smoke test's prediction log was a throwaway
    champion = registry(repo).get_model_version_by_alias("tabpipe-iris", "champion")
    assert champion.tags["release.bento"] == first

    # The built Bento answers one test row differently from what evaluate recorded: not released.
    predictions = repo / "data/predictions/test.parquet"
    saved = pd.read_parquet(predictions)
    right = saved.loc[3, "predicted"]
    wrong = next(label for label in sorted(saved["predicted"].unique()) if label != right)
    saved.loc[3, "predicted"] = wrong
    saved.to_parquet(predictions, index=False)
    refused = tabpipe("release", repo=repo, home=home)
    assert refused.returncode == 1 and refused.stdout == ""
    (error,) = refused.stderr.strip().splitlines()
    assert error.startswith("error: release: tabpipe:") and "Traceback" not in refused.stderr
    assert f"test row 3 answered {right!r}, evaluate predicted {wrong!r}" in error
    assert error.endswith(f"; {first} stays the release")
    assert error.split()[2].rstrip(":") != first  # the new Bento is named, and is gone
    assert bentos(repo, home) == [first] and latest(repo, home) == first


def served_answers(url: str, repo: Path) -> dict:
    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    test = pd.read_parquet(repo / "data/prepared/test.parquet")[[f["name"] for f in schema["features"]]]
    status, answer = post(url, {"rows": test.astype(object).to_dict(orient="records")})
    assert status == 200, answer
    return answer


def test_rollback_needs_a_previous_version_and_makes_it_serve_again(reproduced: Reproduced, tmp_path: Path) -> None:
    project, home = reproduced.repo, reproduced.home  # version 1: the default project's champion
    run_env = env(BENTOML_HOME=str(home))
    first = json.loads((project / "models/serving.json").read_text())

    # One champion, nothing before it: one line, nothing moves.
    alone = tabpipe("rollback", repo=project, home=home)
    assert alone.returncode == 1 and alone.stderr.strip().splitlines() == [NO_PREVIOUS]
    assert aliases(project) == {"champion": "1"}
    assert json.loads((project / "models/serving.json").read_text()) == first
    first_release = (project / "models/release.json").read_text()
    first_predictions = pd.read_parquet(project / "data/predictions/test.parquet")
    # Worse, but inside the (huge) tolerance: ships as version 2.
    weak = {"train.candidates": WEAK, "gate.min.roc_auc": 0.5, "gate.min.f1_macro": 0.1, **ONE_CORE}
    repro(project, home, **weak, **{"gate.champion.tolerance": 1.0})
    second = (project / "models/serving.json").read_bytes()
    assert aliases(project) == {"champion": "2", "previous": "1"}

    # Version 1's model is not in this machine's store: one line saying how to get it there; nothing moves.
    missing = tabpipe("rollback", repo=project, home=tmp_path / "empty-store")
    assert missing.returncode == 1
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith(f"error: rollback: tabpipe-iris version 1: its model {first['tag']} is not in the BentoML")
    assert "`tabpipe store-model` on a checkout of it" in line
    assert aliases(project) == {"champion": "2", "previous": "1"}
    assert (project / "models/serving.json").read_bytes() == second

    rolled = tabpipe("rollback", repo=project, home=home, check=True)
    assert rolled.stdout.strip() == (
        f"rolled back tabpipe-iris: champion is version 1 again (was 2); models/serving.json serves {first['tag']}"
    )
    assert aliases(project) == {"champion": "1"}
    assert registry(project).get_model_version("tabpipe-iris", "1").tags["rolled_back_from"] == "2"
    assert json.loads((project / "models/serving.json").read_text()) == first  # the same manifest package wrote
    assert (project / "models/release.json").read_text() == first_release
    assert "package" in dvc("status", cwd=project, env=run_env).stdout  # DVC sees the manifest changed

    # `bentoml serve` now serves version 1's model, answering as version 1's evaluate did.
    with serving(project, home) as url:
        answer = served_answers(url, project)
    assert answer["model"] == {"name": "tabpipe-iris", "version": first["tag"].split(":")[1]}
    assert [p["label"] for p in answer["predictions"]] == first_predictions["predicted"].tolist()
    for label in json.loads((project / "data/prepared/schema.json").read_text())["classes"]:
        served = np.array([p["probabilities"][label] for p in answer["predictions"]])
        assert np.abs(served - first_predictions[f"proba_{label}"].to_numpy()).max() <= 1e-9

    # Released from here, the Bento is checked against the rolled-back model itself (data/predictions/
    # holds version 2's answers); a second rollback has nowhere to go.
    released = tabpipe("release", "--rows", "10", repo=project, home=home, check=True)
    assert released.stdout.strip().endswith(f"10 test rows answered as model {first['tag']} in-process did")
    bento = released.stdout.split()[1].rstrip(":")
    assert registry(project).get_model_version("tabpipe-iris", "1").tags["release.bento"] == bento
    again = tabpipe("rollback", repo=project, home=home)
    assert again.returncode == 1
    assert again.stderr.strip() == NO_PREVIOUS
