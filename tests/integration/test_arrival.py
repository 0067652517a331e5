"""Data that arrives: a file in a bucket (`dvc import-url`, moto's S3 server) and a SQL query's snapshot
(`dvc import-db`, a real PostgreSQL server); new rows reach the model through `dvc update` and `dvc repro`."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ONE_CORE, STRONG, churn_table, dvc, env, postgres_server, run, s3_server, set_params

pytestmark = pytest.mark.integration

BUCKET = "tabpipe-exports"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
# A quick model: the test is about the data's way in, not the search.
QUICK = {"train.candidates": STRONG, "train.cv_folds": 2, **ONE_CORE}


def rows_ingested(repo: Path) -> int:
    return json.loads((repo / "metrics/ingest.json").read_text())["rows"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_on(repo: Path, run_env: dict[str, str], path: str, rows: int) -> None:
    """Train on the imported file, as far as a retrained model (the stages after it run as always)."""
    set_params(repo, **{"data.dataset": "csv", "data.path": path, "data.target": "churned", **QUICK})
    dvc("repro", "train", cwd=repo, env=run_env)
    assert rows_ingested(repo) == rows


def update_and_retrain(repo: Path, run_env: dict[str, str], path: str, rows: int) -> str:
    """`dvc update` brings the source's new rows, DVC sees ingest changed, `dvc repro` retrains; the file's hash."""
    dvc("update", f"{path}.dvc", cwd=repo, env=run_env)
    assert "ingest" in dvc("status", cwd=repo, env=run_env).stdout
    train_on(repo, run_env, path, rows)
    return sha(repo / path)


def unreachable(repo: Path, run_env: dict[str, str], path: str) -> None:
    """With the source gone, `dvc update` fails in DVC's words: an ERROR line, no traceback."""
    failed = dvc("update", f"{path}.dvc", cwd=repo, env=run_env, check=False, timeout=600)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr and "ERROR" in failed.stderr


def test_a_file_in_a_bucket_is_imported_updated_and_retrained(project: Path, tmp_path: Path) -> None:
    import boto3

    repo, run_env = project, env(BENTOML_HOME=str(tmp_path / "store"), **CREDENTIALS)
    with s3_server(tmp_path) as url:
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="exports/churn.csv", Body=churn_table(1000).to_csv(index=False).encode())
        source = f"s3://{BUCKET}/exports/churn.csv"
        dvc("import-url", source, "data/raw/churn.csv", "--fs-config", f"endpointurl={url}", cwd=repo, env=run_env)
        assert "testing" not in (repo / "data/raw/churn.csv.dvc").read_text()  # credentials stay in the environment
        train_on(repo, run_env, "data/raw/churn.csv", 1000)
        schema = json.loads((repo / "data/prepared/schema.json").read_text())
        assert "customer_id" in schema["set_aside"] and "customer_id" not in [f["name"] for f in schema["features"]]

        bigger = pd.concat([churn_table(1000), churn_table(300, seed=1)], ignore_index=True)
        s3.put_object(Bucket=BUCKET, Key="exports/churn.csv", Body=bigger.to_csv(index=False).encode())
        kept = update_and_retrain(repo, run_env, "data/raw/churn.csv", 1300)

    # The bucket is gone: the update fails in DVC's words, the file and the model stay as they were.
    unreachable(repo, run_env, "data/raw/churn.csv")
    assert sha(repo / "data/raw/churn.csv") == kept
    assert "data/raw" not in dvc("status", cwd=repo, env=run_env).stdout


def test_a_query_is_snapshotted_updated_and_retrained(project: Path, tmp_path: Path) -> None:
    import sqlalchemy

    repo, run_env = project, env(BENTOML_HOME=str(tmp_path / "store"))
    with postgres_server() as url:
        engine = sqlalchemy.create_engine(url)
        churn_table(1000).to_sql("customers", engine, index=False)
        dvc("config", "--local", "db.crm.url", url, cwd=repo)  # the connection stays out of git
        assert "crm" not in (repo / ".dvc/config").read_text()
        ignored = run(["git", "check-ignore", ".dvc/config.local"], repo, check=False)
        assert ignored.returncode == 0
        query = "SELECT customer_id, plan, age, spend, churned FROM customers ORDER BY customer_id"
        dvc("import-db", "--sql", query, "--conn", "crm", "-o", "data/raw/customers.csv", cwd=repo, env=run_env)
        train_on(repo, run_env, "data/raw/customers.csv", 1000)

        churn_table(300, seed=1).to_sql("customers", engine, index=False, if_exists="append")
        engine.dispose()
        kept = update_and_retrain(repo, run_env, "data/raw/customers.csv", 1300)

    # The database is gone: the update fails in DVC's words and takes the snapshot out of the workspace,
    # but DVC's cache keeps it, and `dvc checkout` brings it back (docs/teams.md).
    unreachable(repo, run_env, "data/raw/customers.csv")
    dvc("checkout", "data/raw/customers.csv.dvc", cwd=repo, env=run_env)
    assert sha(repo / "data/raw/customers.csv") == kept
    assert "data/raw" not in dvc("status", cwd=repo, env=run_env).stdout
