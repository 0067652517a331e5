"""Where the search's fits run: local processes, or a Dask cluster named by TABPIPE_DASK_SCHEDULER.

The cluster is chosen by the environment, not params.yaml: it changes where the fits run, not what
they compute, so pointing a run at a cluster must not make DVC rerun train. Each fit carries its
seed, so the scores, the winner and the model file are the same bytes either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    from distributed import Client

SCHEDULER = "TABPIPE_DASK_SCHEDULER"
log = logging.getLogger("train")


def address() -> str:
    """The scheduler's address (tcp://host:8786), or "" for a local run."""
    return os.environ.get(SCHEDULER, "").strip()


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


def connect(scheduler: str, named: str) -> Client:
    """A client of the scheduler at `scheduler`, or one error line saying where it was `named` (an unreachable
    scheduler is the user's setting, not a bug)."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=10, set_as_default=False)
    except OSError as error:
        raise PipelineError(f"{named}: cannot reach the Dask scheduler ({error})") from None
