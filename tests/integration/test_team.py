"""Team workflow against real services: an S3 API (moto) as DVC remote, an MLflow tracking server, the PR report."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.support.commands import dvc, env, run, tabpipe_command
from tests.support.params import ONE_CORE, STRONG, WEAK
from tests.support.projects import Reproduced, set_params
from tests.support.servers import s3_server, serving, tracking_server

pytestmark = pytest.mark.integration

BUCKET = "tabpipe-team"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
OUTPUTS = [
    "data/prepared/train.parquet",
    "data/prepared/test.parquet",
    "data/prepared/schema.json",
    "models/preprocessor.joblib",
    "models/model.joblib",
    "models/served/model.onnx",
    "data/predictions/test.parquet",
]


def digests(repo: Path) -> dict[str, str]:
    return {name: hashlib.sha256((repo / name).read_bytes()).hexdigest() for name in OUTPUTS}


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", message], repo)


def make_bucket(url: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=url, **_boto(CREDENTIALS)).create_bucket(Bucket=BUCKET)


def _boto(values: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": values["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": values["AWS_SECRET_ACCESS_KEY"],
        "region_name": values["AWS_DEFAULT_REGION"],
    }


def add_remote(repo: Path, url: str) -> None:
    dvc("remote", "add", "--default", "team", f"s3://{BUCKET}/dvc", cwd=repo)
    dvc("remote", "modify", "team", "endpointurl", url, cwd=repo)


def test_push_pull_through_s3_and_serve_a_fresh_clone(reproduced: Reproduced, tmp_path: Path) -> None:
    repo, team_env = reproduced.repo, env(BENTOML_HOME=str(reproduced.home), **CREDENTIALS)
    with s3_server(tmp_path) as url:
        make_bucket(url)
        add_remote(repo, url)
        config = (repo / ".dvc/config").read_text()
        assert "testing" not in config and url in config  # endpoint committed, credentials never
        commit(repo, "results and team remote")
        dvc("push", cwd=repo, env=team_env)
        before = digests(repo)

        shutil.rmtree(repo / ".dvc/cache")
        for name in OUTPUTS:
            (repo / name).unlink()
        dvc("pull", cwd=repo, env=team_env)
        assert digests(repo) == before
        assert dvc("status", "--quiet", cwd=repo, env=team_env).returncode == 0

        clone = tmp_path / "clone"
        run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
        dvc("pull", cwd=clone, env=team_env)
        assert digests(clone) == before
        status = dvc("repro", "--dry", cwd=clone, env=team_env).stdout
        assert "Running stage" not in status  # nothing to retrain: the pulled outputs are the pipeline's
    run(tabpipe_command("store-model"), clone, env=env(BENTOML_HOME=str(tmp_path / "store-b")))
    with serving(clone, tmp_path / "store-b") as address:
        import urllib.request

        body = json.dumps(
            {"rows": [{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}]}
        )
        request = urllib.request.Request(f"{address}/predict", body.encode(), {"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.loads(answer.read())["predictions"][0]["label"] == "virginica"


def test_a_remote_that_is_down_fails_clearly_and_loses_nothing(project: Path, tmp_path: Path) -> None:
    repo, team_env = project, env(BENTOML_HOME=str(tmp_path / "store"), **CREDENTIALS)
    dvc("repro", "featurize", cwd=repo, env=team_env)
    with s3_server(tmp_path) as url:
        make_bucket(url)
        add_remote(repo, url)
        dvc("remote", "modify", "team", "endpointurl", "http://127.0.0.1:9", cwd=repo)  # nothing listens there
        failed = dvc("push", cwd=repo, env=team_env, check=False, timeout=600)  # a hang guard, not a speed test
        assert failed.returncode != 0
        assert "Traceback" not in failed.stderr and "ERROR" in failed.stderr
        before = {n: hashlib.sha256((repo / n).read_bytes()).hexdigest() for n in OUTPUTS[:4]}
        assert (repo / ".dvc/cache").is_dir()

        dvc("remote", "modify", "team", "endpointurl", url, cwd=repo)
        dvc("push", cwd=repo, env=team_env)
        shutil.rmtree(repo / ".dvc/cache")
        shutil.rmtree(repo / "data/prepared")
        dvc("pull", "--with-deps", "featurize", cwd=repo, env=team_env)
        assert {n: hashlib.sha256((repo / n).read_bytes()).hexdigest() for n in OUTPUTS[:4]} == before


def test_the_pipeline_tracks_and_registers_on_a_tracking_server(project: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    with tracking_server(tmp_path) as url:
        server_env = env(BENTOML_HOME=str(tmp_path / "store"), MLFLOW_TRACKING_URI=url)
        set_params(project, **{"train.candidates": WEAK, "gate.min.roc_auc": 0.5, "gate.min.f1_macro": 0.1, **ONE_CORE})
        dvc("repro", cwd=project, env=server_env)
        set_params(project, **{"train.candidates": STRONG})
        dvc("repro", cwd=project, env=server_env)

        client = MlflowClient(tracking_uri=url, registry_uri=url)
        experiment = client.get_experiment_by_name("tabpipe-iris")
        runs = client.search_runs([experiment.experiment_id])
        assert {r.data.tags.get("mlflow.runName") for r in runs} >= {"train", "stump", "logreg"}
        assert client.get_model_version_by_alias("tabpipe-iris", "champion").version == "2"
        assert client.get_model_version_by_alias("tabpipe-iris", "previous").version == "1"
        winner = client.get_model_version_by_alias("tabpipe-iris", "champion")
        assert winner.tags["dataset"] == "iris"
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()


def test_an_unreachable_tracking_server_fails_train_with_a_clear_line(project: Path, tmp_path: Path) -> None:
    down = env(BENTOML_HOME=str(tmp_path / "store"), MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    result = dvc("repro", "train", cwd=project, env=down, check=False, timeout=600)  # a hang guard
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "error: MLflow tracking server at http://127.0.0.1:9" in result.stderr


def test_pr_report_shows_a_branch_changes_verdict_comparison_and_plots(reproduced: Reproduced) -> None:
    project = reproduced.repo  # after `dvc repro`: main's model is the champion
    commit(project, "baseline results")
    run(["git", "checkout", "-q", "-b", "stricter-gate"], project)
    # A change that makes another model file (mean imputation: iris has nothing to impute, but the fitted
    # imputer differs), so the gate compares it with main's champion.
    set_params(project, **{"featurize.numeric_impute": "mean", "gate.min.f1_macro": 0.99})
    refused = dvc("repro", cwd=project, check=False)
    assert refused.returncode != 0 and "f1_macro" in refused.stderr
    result = run(tabpipe_command("pr", "report", "--base", "main", "--out", "reports/pr"), project)
    report = (project / "reports/pr/report.md").read_text()
    assert result.stdout.strip() == report.strip() and report.startswith("<!-- tabpipe-pr-report -->")
    failing = next(line for line in report.splitlines() if line.startswith("Failing rules: "))
    assert "### Gate: failed" in report and "min_f1_macro" in failing and "min_roc_auc" not in failing
    assert "| min_roc_auc | pass |" in report and "| min_f1_macro | **fail** |" in report
    comparison = json.loads((project / "reports/gate.json").read_text())["comparison"]
    assert comparison["metric"] == "roc_auc" and f"{comparison['p_value']:.4f}" in report
    assert "drift share" in report.lower()
    assert "| params.yaml | featurize.numeric_impute | median | mean |" in report
    assert "| params.yaml | gate.min.f1_macro | 0.7 | 0.99 |" in report
    images = sorted(p.name for p in (project / "reports/pr/plots").glob("*.png"))
    # One per plot in dvc.yaml that has points, none drawn twice: confusion, ROC, precision-recall,
    # reliability, importance, contributions (no costs: no cost curve; a classification: no regression plots).
    assert len(images) == 6, images
    for name in images:
        assert (project / "reports/pr/plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{name})" in report
