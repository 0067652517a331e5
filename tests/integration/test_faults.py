"""Faults: a writer or a whole `dvc repro` killed with SIGKILL, and a corrupt model under a running service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import joblib
import pandas as pd
import pytest
import yaml

from tests.support.commands import dvc, env
from tests.support.paths import BIN, ROOT
from tests.support.projects import Reproduced
from tests.support.servers import serving

pytestmark = pytest.mark.integration

SLOW_WRITER = """
import sys, time
from pathlib import Path
from tabpipe.core import files

def writer(tmp: Path) -> None:
    with tmp.open("wb") as out:
        out.write(b"x" * 1_000_000)
        out.flush()
        time.sleep(60)  # killed here, half way through its output

files.write_with(Path(sys.argv[1]), writer)
"""


def test_a_writer_killed_mid_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text('{"good": true}\n')
    process = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], cwd=ROOT)
    deadline = time.monotonic() + 30
    while not any(p.stat().st_size >= 1_000_000 for p in tmp_path.glob(".out.json.*.tmp")):
        assert time.monotonic() < deadline and process.poll() is None, "the writer never started writing"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert target.read_text() == '{"good": true}\n'


def outputs(repo: Path) -> dict[str, str]:
    """Every out's hash in dvc.lock, by path."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {o["path"]: o.get("md5", "") for stage in lock["stages"].values() for o in stage.get("outs", [])}


def readable(repo: Path) -> None:
    """Whatever outputs exist after a kill are whole files, never truncated ones."""
    for path in (repo / "data").rglob("*.parquet"):
        pd.read_parquet(path)
    for path in (repo / "models").glob("*.joblib"):
        joblib.load(path)
    for path in [*(repo / "metrics").rglob("*.json"), *(repo / "models").glob("*.json")]:
        json.loads(path.read_text())


def test_dvc_repro_killed_mid_run_recovers_with_the_same_outputs(reproduced: Reproduced) -> None:
    repo = reproduced.repo
    run_env = env(BENTOML_HOME=str(reproduced.home))
    expected = outputs(repo)
    for delay in (3.0, 9.0):
        process = subprocess.Popen(
            [str(BIN / "dvc"), "repro", "-f"],
            cwd=repo,
            env=run_env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        readable(repo)
        dvc("repro", cwd=repo, env=run_env)
        assert outputs(repo) == expected
        dvc("status", cwd=repo, env=run_env)


def status_of(url: str, path: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(f"{url}{path}", data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_corrupt_model_in_the_store_leaves_the_service_up_and_not_ready(reproduced: Reproduced) -> None:
    repo, home = reproduced.repo, reproduced.home
    (stored,) = (home / "models").glob("tabpipe-iris/*/model.onnx")
    stored.write_bytes(stored.read_bytes()[:-100])  # truncated on disk after it was imported
    row = json.dumps({"rows": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]})
    name, version = json.loads((repo / "models/serving.json").read_text())["tag"].split(":")
    with serving(repo, home, ready="/livez") as url:
        time.sleep(3)
        assert status_of(url, "/readyz") == 503
        try:
            urllib.request.urlopen(f"{url}/health", timeout=30)
            raise AssertionError("/health answered 2xx while not ready")
        except urllib.error.HTTPError as error:
            assert error.code == 503
            assert json.loads(error.read()) == {"name": name, "version": version, "ready": False}
        assert status_of(url, "/predict", row.encode()) == 503
        time.sleep(3)
        assert status_of(url, "/livez") == 200  # still the same process: no crash, no restart loop
    log = (repo / "serve.log").read_text()
    assert "not ready" in log or "not loaded" in log
    assert "does not match the recorded" in log
    # A server error keeps BentoML's ERROR line and its traceback (only client errors are quiet).
    error = log.split("[ERROR]")[-1]
    assert "Exception on /predict [POST]" in error and "Traceback" in error and "ServiceUnavailable" in error
