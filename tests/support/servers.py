"""Real servers on 127.0.0.1 that the tests start and stop: the service, PostgreSQL, S3, MLflow, plain HTTP,
a Dask cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tabpipe.sandbox import servers
from tabpipe.sandbox.servers import background, free_port
from tests.support.commands import env, run
from tests.support.paths import BIN, ROOT

# As on a real cluster (docs/training.md): the workers run this checkout's tabpipe, with the stages' kernels.
WORKER_ENV = {
    "PYTHONPATH": str(ROOT),
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}


@dataclass(frozen=True)
class Served:
    """A running `bentoml serve` of a small model of one candidate family (adult, or california for a regressor)."""

    family: str
    repo: Path
    url: str
    features: list[dict]
    rows: list[dict]
    log: Path


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
def dask_cluster(logs: Path) -> Iterator[str]:
    """A Dask scheduler and two one-thread worker processes (`one`, `two`) on 127.0.0.1; yields the
    scheduler's address once both workers have joined, then stops them."""
    port, http = free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    scheduler += ["--dashboard-address", f"127.0.0.1:{http}"]
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            background(scheduler, logs, env(**WORKER_ENV), f"http://127.0.0.1:{http}/health", logs / "scheduler.log")
        )
        for name in ("one", "two"):
            dashboard = free_port()
            worker = [str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--name", name]
            worker += ["--dashboard-address", f"127.0.0.1:{dashboard}"]
            ready = f"http://127.0.0.1:{dashboard}/health"
            stack.enter_context(background(worker, logs, env(**WORKER_ENV), ready, logs / f"{name}.log"))
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield address


def executed(address: str) -> dict[str, int]:
    """How many tasks each worker of the cluster has run."""
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        return client.run(lambda dask_worker: dask_worker.state.executed_count)
