"""The search on a real Dask cluster (a scheduler, two worker processes, on 127.0.0.1) gives the local bytes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tabpipe.model.cluster import SCHEDULER
from tabpipe.sandbox.servers import background, free_port
from tests.support.commands import dvc, env
from tests.support.paths import BIN, ROOT
from tests.support.projects import Reproduced

pytestmark = pytest.mark.integration
# As on a real cluster (docs/training.md): the workers run this checkout's tabpipe, with the stages' kernels.
WORKER_ENV = {
    "PYTHONPATH": str(ROOT),
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("dask")
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
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        return client.run(lambda dask_worker: dask_worker.state.executed_count)


def test_the_search_on_a_dask_cluster_gives_the_local_winner_and_model_bytes(
    reproduced: Reproduced, cluster: str
) -> None:
    project = reproduced.repo  # trained locally by `dvc repro`
    outputs = ["models/model.joblib", "metrics/train.json", "dvc.lock"]
    local = {name: (project / name).read_bytes() for name in outputs}
    assert sum(executed(cluster).values()) == 0

    remote = dvc(
        "repro", "--force", "--single-item", "train", cwd=project, env=env(**{SCHEDULER: cluster}), timeout=300
    )
    assert "fitting on the Dask cluster at " + cluster + ": 2 worker thread(s)" in remote.stdout + remote.stderr
    counts = executed(cluster)
    assert len(counts) == 2 and all(count > 0 for count in counts.values())  # both workers fitted
    assert {name: (project / name).read_bytes() for name in outputs} == local
    assert "up to date" in dvc("status", "train", cwd=project).stdout  # where the fits ran is not a dependency

    unreachable = f"tcp://127.0.0.1:{free_port()}"
    refused = dvc(
        "repro", "--force", "--single-item", "train", cwd=project, check=False, env=env(**{SCHEDULER: unreachable})
    )
    assert refused.returncode != 0
    assert f"error: {SCHEDULER}={unreachable}: cannot reach the Dask scheduler" in refused.stderr
    assert "Traceback" not in refused.stderr
