"""The search on a real Dask cluster (a scheduler, two worker processes, on 127.0.0.1) gives the local bytes."""

from __future__ import annotations

import pytest

from tabpipe.core.scheduler import SCHEDULER
from tabpipe.sandbox.servers import free_port
from tests.support.commands import dvc, env
from tests.support.projects import Reproduced
from tests.support.servers import executed

pytestmark = pytest.mark.integration


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
