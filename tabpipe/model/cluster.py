"""Where the search's fits run: local processes, or a Dask cluster named by TABPIPE_DASK_SCHEDULER.

The cluster is chosen by the environment, not params.yaml: it changes where the fits run, not what
they compute, so pointing a run at a cluster must not make DVC rerun train. Each fit carries its
seed, so the scores, the winner and the model file are the same bytes either way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from tabpipe.core.scheduler import SCHEDULER, address, connect

log = logging.getLogger("train")


@contextlib.contextmanager
def backend(n_jobs: int) -> Iterator[int]:
    """joblib's backend for the block, and the n_jobs to ask it for.

    Locally: loky processes, `train.n_jobs` of them. On a cluster: joblib's Dask backend, and
    every worker thread the cluster has (-1).
    """
    scheduler = address()
    if not scheduler:
        yield n_jobs
        return
    import joblib

    with connect(scheduler, f"{SCHEDULER}={scheduler}") as client:
        threads = sum(client.nthreads().values())
        log.info("fitting on the Dask cluster at %s: %d worker thread(s)", scheduler, threads)
        with joblib.parallel_config(backend="dask", client=client):
            yield -1
