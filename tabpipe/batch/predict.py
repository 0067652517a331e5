"""`tabpipe predict`: score a whole table with the gated model, as the service would answer each row.

    tabpipe predict batch.csv --output out/scores.parquet --keep customer_id

Reads the input in chunks, validates and answers each row through the service's own functions
(tabpipe/batch/scoring.py), and writes the answers and the rejects chunk by chunk to temporary names,
renamed when the run completes. The model is the workspace's gated one, found through dvc.yaml.
With `--cluster`, the chunks are answered on a Dask cluster's workers (tabpipe/batch/cluster.py) and
each output is a folder of Parquet parts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tabpipe.batch import reading, scoring, writing
from tabpipe.core.layout import paths
from tabpipe.serve import bento_model, manifest
from tabpipe.task import tasks

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("predict")


@dataclass(frozen=True, kw_only=True)
class Options:
    """The command line's choices (tabpipe predict --help)."""

    input: Path
    output: Path
    keep: tuple[str, ...] = ()
    overwrite: bool = False
    chunk_rows: int = 100_000
    project: Path = Path(".")  # the project whose gated model scores (its dvc.yaml names the files)
    cluster: str = ""  # a Dask scheduler (tcp://host:8786) whose workers answer the chunks; "" for this process


@dataclass(frozen=True)
class Counts:
    """What a run did with the input's rows: every one is scored or rejected; `flagged` are scored rows
    holding a value outside the schema's limits."""

    scored: int
    rejected: int
    flagged: int

    def line(self, options: Options) -> str:
        return (
            f"predict: {self.scored} rows scored into {options.output}, {self.rejected} rejected into "
            f"{writing.rejects_path(options.output)}, {self.flagged} flagged with values outside the schema's limits"
        )


class Progress:
    """A line at most every `every` seconds: rows done, rows/s and the time left (the share read so far)."""

    def __init__(self, total: int | None, every: float = 2.0) -> None:
        self.total, self.every = total, every
        self.started = self.said = time.perf_counter()
        self.shown = 0

    def __call__(self, rows: int, share: float, final: bool = False) -> None:
        now = time.perf_counter()
        if rows == self.shown or (not final and now - self.said < self.every):
            return
        self.said, self.shown = now, rows
        elapsed = max(now - self.started, 1e-9)
        left = elapsed / share * (1 - share) if share > 0 else float("nan")
        of = f"/{self.total}" if self.total is not None else ""
        log.info("%d%s rows, %.0f rows/s, %.0f s elapsed, about %.0f s left", rows, of, rows / elapsed, elapsed, left)


@dataclass(frozen=True)
class Served:
    """The model a run scores with: its serving manifest (schema, limits, identity, hash) and its file."""

    manifest: manifest.Manifest
    path: Path


def workspace(project: Path) -> Served:
    """The project's gated model: models/serving.json and the file in models/served/ it names."""
    models = paths(project)["models"]
    served = manifest.read(models["serving"])
    return Served(served, models["served"] / served.model_file)


def run(options: Options, model: Served | None = None) -> Counts:
    """Score the input into the output and its rejects with `model` (default: the workspace's gated one);
    nothing is written when the input as a whole is unusable, or the cluster cannot be reached."""
    writing.check_free(options.output, options.overwrite, parts=bool(options.cluster))
    chosen = model or workspace(options.project)
    served = chosen.manifest
    schema, task = served.schema, tasks.of(served.schema.task)
    policy = served.serve.unseen
    source = reading.open_source(options.input, [*scoring.required(schema, policy), *options.keep])
    for name in schema.request_names:
        if name not in source.columns:
            log.warning("column '%s' is not in %s: every row is answered as if it left it out", name, options.input)
    chunks = numbered(reading.chunks(source, options.chunk_rows, schema.missing_markers, list(options.keep)))
    log.info("scoring %s with %s, %d rows a chunk", options.input, served.tag, options.chunk_rows)
    progress = Progress(source.rows)
    if not options.cluster:
        loaded = bento_model.load_file(chosen.path, served.model_sha256, task)
        scorer = scoring.scorer(loaded, schema, task, policy, served.identity, options.keep)
        with writing.outputs(options.output) as out:
            results = ((scoring.score(chunk, first, scorer), share) for first, chunk, share in chunks)
            return written(results, out, progress, scorer)
    from tabpipe.batch import cluster
    from tabpipe.core.scheduler import connect

    blob = bento_model.checked_bytes(chosen.path, served.model_sha256)
    job = cluster.Job(served, chosen.path.suffix, options.keep)
    columns = scoring.scorer(None, schema, task, policy, served.identity, options.keep)  # the empty outputs'
    client = connect(options.cluster, f"--cluster {options.cluster}")
    with client, writing.outputs(options.output, parts=True) as out:
        return written(cluster.scored(client, chunks, job, blob), out, progress, columns)


def numbered(chunks: Iterable[tuple[pd.DataFrame, float]]) -> Iterator[tuple[int, pd.DataFrame, float]]:
    """Each chunk with its first row's position over the whole input."""
    first = 0
    for chunk, share in chunks:
        yield first, chunk, share
        first += len(chunk)


def written(
    results: Iterable[tuple[scoring.Scored, float]], out: writing.Outputs, progress: Progress, scorer: scoring.Scorer
) -> Counts:
    """The chunks' answers and rejects written in the input's order, and counted; an output with no rows
    gets the scorer's columns."""
    done = scored = rejected = flagged = 0
    for result, share in results:
        out.scored.write(result.scored)
        out.rejected.write(result.rejected)
        scored, rejected, flagged = (
            scored + len(result.scored),
            rejected + len(result.rejected),
            flagged + result.flagged,
        )
        done = scored + rejected
        progress(done, share)
    progress(done, 1.0, final=True)
    out.scored.close(scoring.empty_scored(scorer))
    out.rejected.close(scoring.empty_rejected(scorer))
    return Counts(scored, rejected, flagged)
