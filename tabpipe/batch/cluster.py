"""`tabpipe predict --cluster`: a batch's chunks answered on a Dask cluster's workers.

The command still reads the input and writes the outputs, so the workers need neither on their disks:
each chunk travels to a worker, which answers it with `scoring.score`, and its answers travel back. The
model's bytes go to every worker once, and each worker process builds the model (an onnxruntime session,
which does not pickle) once per model hash, whatever number of chunks it answers.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.batch import scoring
from tabpipe.core.errors import PipelineError
from tabpipe.core.hashing import bytes_sha256
from tabpipe.task import tasks

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

    from tabpipe.serve.manifest import Manifest

log = logging.getLogger("predict")
MODELS: dict[str, Any] = {}  # in a worker process: the models it has built, by their file's sha256
_BUILDING = threading.Lock()  # a worker's threads answer chunks at once; one builds, the others wait


@dataclass(frozen=True)
class Job:
    """What a worker needs besides a chunk and the model's bytes: the manifest (schema, serve.unseen,
    identity, hash), the model file's suffix (.onnx or .joblib) and the columns kept."""

    manifest: Manifest
    suffix: str
    keep: tuple[str, ...]


def model(job: Job, blob: bytes) -> Any:
    """The worker's model for the job: built from `blob` the first time, only if its hash is the manifest's."""
    from tabpipe.model.runtime import from_bytes

    expected = job.manifest.model_sha256
    with _BUILDING:
        if expected not in MODELS:
            if bytes_sha256(blob) != expected:
                raise PipelineError(f"the model sent to the worker is not {expected[:12]}... (sha256)")
            MODELS[expected] = from_bytes(blob, job.suffix, tasks.of(job.manifest.schema.task))
        return MODELS[expected]


def score_part(frame: pd.DataFrame, first_row: int, job: Job, blob: bytes) -> scoring.Scored:
    """On a worker: one chunk answered exactly as one process answers it."""
    served = job.manifest
    task = tasks.of(served.schema.task)
    built = scoring.scorer(model(job, blob), served.schema, task, served.serve.unseen, served.identity, job.keep)
    return scoring.score(frame, first_row, built)


def scored(
    client: Client, chunks: Iterable[tuple[int, pd.DataFrame, float]], job: Job, blob: bytes
) -> Iterator[tuple[scoring.Scored, float]]:
    """Each (first row, chunk, share read) answered on the cluster, in the input's order, with its share.

    Twice as many chunks as the cluster has threads are in flight: every worker stays busy while memory
    holds a bounded number of chunks."""
    threads = sum(client.nthreads().values())
    log.info("scoring on the Dask cluster at %s: %d worker thread(s)", client.scheduler.address, threads)
    shipped = client.scatter(blob, broadcast=True, hash=False)
    pending: deque[tuple[Any, float]] = deque()
    for first_row, frame, share in chunks:
        part = client.scatter(frame, hash=False)
        pending.append((client.submit(score_part, part, first_row, job, shipped, pure=False), share))
        if len(pending) >= 2 * max(threads, 1):
            future, done = pending.popleft()
            yield future.result(), done
    while pending:
        future, done = pending.popleft()
        yield future.result(), done
