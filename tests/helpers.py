"""Helpers the tests share: subprocess environments, scratch projects, real servers, a toy schema."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
import yaml

from tabpipe.core import settings
from tabpipe.core.layout import paths
from tabpipe.data.schema import Feature, Schema
from tabpipe.model import estimators
from tabpipe.sandbox import project, servers
from tabpipe.sandbox.servers import background, free_port

ROOT = Path(__file__).resolve().parents[1]
RAW = paths(ROOT)["data"]["raw"]  # the bundled datasets
BIN = Path(sys.executable).parent


S = TypeVar("S", bound=settings.Section)


def params_section(kind: type[S], **values: Any) -> S:
    """params.yaml's section `kind` with `values` replacing its top-level keys, parsed as the stages parse it."""
    raw = settings.read(ROOT / "params.yaml").raw[kind.key]
    return settings.parse(kind, {**raw, **values}, f"params.yaml: {kind.key}")


def needs(*commands: str, debian: str) -> pytest.MarkDecorator:
    """Skip unless every command is on PATH; the reason names the Debian packages (.ci/run installs them)."""
    missing = [command for command in commands if shutil.which(command) is None]
    reason = f"needs {', '.join(missing)} (apt-get install {debian}); .ci/run installs it"
    return pytest.mark.skipif(bool(missing), reason=reason)


def row_validator(schema: Schema, policy: str) -> Any:
    """The service's row model as BentoML applies it (a TypedDict, so through a TypeAdapter)."""
    from pydantic import TypeAdapter

    from tabpipe.serve import request

    return TypeAdapter(request.row_model(schema, policy))  # type: ignore[arg-type]


def env(**extra: str) -> dict[str, str]:
    """The environment for dvc and stage subprocesses: this interpreter's bin first, no telemetry.

    MLFLOW_TRACKING_URI is dropped unless given: mlflow.set_tracking_uri in the test process
    exports it, and a stale one would send a subprocess's runs to another test's store.
    """
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {
        **inherited,
        **extra,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }


def run(args: list[str], cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command, showing its output when it fails unexpectedly."""
    result = subprocess.run(args, cwd=cwd, env=kwargs.pop("env", env()), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def tabpipe_command(*args: str) -> list[str]:
    """`python -m tabpipe ARGS`; under `pytest --cov`, run by `coverage run` so the command's process counts.

    Only that process is measured, not what it starts: tracing dvc's, MLflow's and BentoML's imports
    makes them about 60% slower, which the suite cannot afford.
    """
    import coverage

    current = coverage.Coverage.current()
    if current is None:
        return [sys.executable, "-m", "tabpipe", *args]
    data = Path(current.get_data().data_filename()).with_name(Path(current.config.data_file).name)
    options = [f"--rcfile={current.config.config_file}", f"--data-file={data}", "--parallel-mode"]
    return [sys.executable, "-m", "coverage", "run", *options, "-m", "tabpipe", *args]


def dvc(*args: str, cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "dvc"), *args], cwd, check, **kwargs)


def make_project(repo: Path) -> Path:
    """A fresh git repository holding a copy of the project, committed, with no outputs yet."""
    return project.copy_project(ROOT, repo, env())


@dataclass(frozen=True)
class Reproduced:
    """A project after `dvc repro` (of all stages, or up to one), and the BentoML store package fills."""

    repo: Path
    home: Path


def reproduce(base: Path) -> Reproduced:
    """Copy the project to `base/repo` and run the whole pipeline in it (tests share one: copy_reproduced)."""
    repo, home = make_project(base / "repo"), base / "bentoml"
    dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(home)))
    return Reproduced(repo, home)


def copy_reproduced(source: Reproduced, base: Path) -> Reproduced:
    """A reproduced project copied to `base`, as if `dvc repro` had run there: git, DVC cache, MLflow, BentoML.

    The MLflow store names artifact folders by absolute path (tabpipe/tracking/backend.py), so those
    are moved to the copy; DVC's temporary state stays behind, as in a fresh clone.
    """
    repo, home = base / "repo", base / "bentoml"
    shutil.copytree(source.repo, repo, symlinks=True)
    shutil.rmtree(repo / ".dvc" / "tmp", ignore_errors=True)
    if source.home.exists():
        shutil.copytree(source.home, home, symlinks=True)
    old, new = str(source.repo), str(repo)
    if not (repo / "mlflow.db").exists():  # reproduced only as far as a stage before train
        return Reproduced(repo, home)
    with contextlib.closing(sqlite3.connect(repo / "mlflow.db")) as db, db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in db.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    name = column[1]
                    db.execute(
                        f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) WHERE instr("{name}", ?) > 0',
                        (old, new, old),
                    )
    for path in (repo / "mlruns").rglob("MLmodel"):
        path.write_text(path.read_text().replace(old, new))
    return Reproduced(repo, home)


# A test's search is one or two configurations on a small table: starting joblib's two worker
# processes (train.n_jobs) cost train 3.7 s more than fitting in its own process, and the suite
# already runs two tests at once. The default project, the cluster's and the benchmarks keep n_jobs.
ONE_CORE = {"train.n_jobs": 1}
# Candidate lists for tests that need a model clearly worse or better than another.
WEAK = {"stump": {"estimator": "random_forest", "fixed": {"n_estimators": 1, "max_depth": 1}}}
STRONG = {"logreg": {"estimator": "logistic_regression", "grid": {"C": [1.0]}}}
# One small model per candidate family, served to the load and fuzz tests: each must hold up.
# The default suite serves the first classifier and the regressor; the other classifiers take the same
# path through the service (tests/unit/test_compiled.py holds each one's compiled model to its
# pipeline on any row), so they are served under `slow` (SLOW_FAMILIES).
FAMILIES = {
    "logreg": STRONG["logreg"],
    "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 50, "n_jobs": 2}},
    "boosting": {"estimator": "hist_gradient_boosting", "fixed": {"max_iter": 100, "early_stopping": False}},
    "lightgbm": {"estimator": "lightgbm", "fixed": {"n_estimators": 100}},
    # A regressor, on small california (SMALL_CALIFORNIA): a value and an interval per row.
    "lightgbm_regressor": {"estimator": "lightgbm_regressor", "fixed": {"n_estimators": 100}},
}
SLOW_FAMILIES = ("forest", "boosting", "lightgbm")


@dataclass(frozen=True)
class Served:
    """A running `bentoml serve` of a small model of one candidate family (adult, or california for a regressor)."""

    family: str
    repo: Path
    url: str
    features: list[dict]
    rows: list[dict]
    log: Path


# A small adult project: numeric, categorical and nullable fields, quick to train.
SMALL_ADULT = {
    **ONE_CORE,
    "data.dataset": "adult",
    "data.fraction": 0.1,
    "train.cv_folds": 2,
    "evaluate.importance_repeats": 1,
    "serve.max_rows": 20,
    "serve.max_body_bytes": 20_000,
}


# A small california project: a regression, numbers only, quick to train.
SMALL_CALIFORNIA = {**SMALL_ADULT, "data.dataset": "california"}


def regressor(family: str) -> bool:
    return estimators.task_of(FAMILIES[family]["estimator"]) == "regression"


def set_params(repo: Path, **values: object) -> None:
    """Edit the project's params.yaml: set_params(repo, **{"gate.min.roc_auc": 0.5})."""
    project.set_params(repo, values)


@contextlib.contextmanager
def serving(repo: Path, bentoml_home: Path, ready: str = "/readyz", **extra_env: str) -> Iterator[str]:
    """A real `bentoml serve` of the project on 127.0.0.1."""
    with servers.bentoml_serve(repo, BIN, env(BENTOML_HOME=str(bentoml_home), **extra_env), ready) as url:
        yield url


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server from Debian's packages on 127.0.0.1 (trust auth, a throwaway data folder);
    yields its SQLAlchemy URL. PostgreSQL refuses to run as root: then it runs as the `postgres` user."""
    import glob
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        import pytest

        pytest.skip("needs PostgreSQL (apt-get install postgresql); .ci/run installs it")
    tools = Path(found[-1]).parent
    data, port = Path(tempfile.mkdtemp(prefix="tabpipe-pg-")), free_port()
    user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    if user:
        shutil.chown(data, "postgres")
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    try:
        run([*user, str(tools / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"], data)
        run(
            [
                *user,
                str(tools / "pg_ctl"),
                "-D",
                str(data / "db"),
                "-o",
                options,
                "-l",
                str(data / "log"),
                "-w",
                "start",
            ],
            data,
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            run([*user, str(tools / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"], data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def churn_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """A customer export: an id, a plan, an age, a monthly spend, and whether the customer left."""
    import numpy as np

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    spend = rng.gamma(2.0, 30.0, rows).round(2)
    left = (age < 35) ^ (plan == "pro") ^ (rng.random(rows) < 0.1)
    return pd.DataFrame(
        {
            "customer_id": [f"C{seed:02d}-{i:06d}" for i in range(rows)],
            "plan": plan,
            "age": age,
            "spend": spend,
            "churned": np.where(left, "yes", "no"),
        }
    )


@contextlib.contextmanager
def s3_server(workdir: Path) -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1 (in memory; gone when stopped)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with background(args, workdir, env(), f"{url}/moto-api/", workdir / "moto.log"):
        yield url


@contextlib.contextmanager
def tracking_server(workdir: Path) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with a SQLite backend and a local artifact folder."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'server.db'}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
    ]
    with background(args, workdir, env(), f"{url}/health", workdir / "mlflow-server.log", timeout=120):
        yield url


TOY = Schema(
    name="toy",
    features=(
        Feature("x", "numeric", minimum=0.0, maximum=10.0),
        Feature("z", "numeric", minimum=-5.0, maximum=5.0, nullable=True),
        Feature("c", "categorical", categories=("a", "b", "c")),
    ),
    target="y",
    classes=("no", "yes"),
)


def split_of(train: pd.DataFrame, test: pd.DataFrame, identity: list[str]) -> dict[int, str]:
    """Each row's identity hash (tabpipe/data/rows.py over `identity`) and the split it is in."""
    from tabpipe.data import rows

    found = dict.fromkeys(map(int, rows.identity(train, identity)), "train")
    return {**found, **dict.fromkeys(map(int, rows.identity(test, identity)), "test")}


def toy_frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """A frame that passes every check against TOY: balanced classes, no duplicates."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.uniform(0, 10, rows),
            "z": rng.uniform(-5, 5, rows),
            "c": pd.Series(rng.choice(["a", "b", "c"], rows), dtype="str"),
            "y": pd.Series(np.where(np.arange(rows) % 2 == 0, "no", "yes"), dtype="str"),
        }
    )


def stage_argv(stage: str, root: Path = ROOT) -> list[str]:
    """The stage's command-line arguments exactly as dvc.yaml passes them (its vars resolved)."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    values: dict[str, str] = {}
    for entry in spec["vars"]:
        for group, items in entry.items():
            values.update({f"{group}.{name}": str(path) for name, path in items.items()})
    words = spec["stages"][stage]["cmd"].split()
    return [f"stages.{stage}", *(values.get(w[2:-1], w) if w.startswith("${") else w for w in words[3:])]


def post(url: str, body: bytes | dict, path: str = "/predict") -> tuple[int, dict]:
    """POST JSON to a running service; (status, parsed answer), 4xx and 5xx included."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def get(url: str, path: str) -> tuple[int, str]:
    """GET from a running service; (status, body text)."""
    with urllib.request.urlopen(f"{url}{path}", timeout=30) as answer:
        return answer.status, answer.read().decode()


HANG = "hang"  # a scripted answer: say nothing for a second (longer than the test's timeout)


@dataclass
class Receiver:
    """A webhook that records what it receives and answers from a script (its last answer repeats)."""

    script: list[Any] = field(default_factory=lambda: [200])  # status, (status, headers, body) or HANG
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self) -> Any:
        return self.script[min(len(self.received), len(self.script)) - 1]


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append(
                {"path": self.path, "content_type": self.headers["Content-Type"], "body": json.loads(data)}
            )
            answer = receiver.answer()
            if answer == HANG:
                time.sleep(1.0)
                answer = 200
            status, headers, body = answer if isinstance(answer, tuple) else (answer, {}, "ok" if answer < 300 else "")
            text = body.replace("{path}", self.path).encode()
            try:
                self.send_response(status)
                for key, value in {"Content-Length": str(len(text)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(text)
            except OSError:  # the client gave up waiting
                pass

    return Handler


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a ThreadingHTTPServer in a thread); yields its base URL, then stops it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def webhook_receiver(path: str = "/hook") -> Iterator[Receiver]:
    """A real HTTP webhook recording every JSON body posted to it."""
    state = Receiver()
    with http_server(handler_for(state)) as base:
        state.url = f"{base}{path}"
        yield state
