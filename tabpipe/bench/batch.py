"""Batch benchmark: `tabpipe predict` on a large table against onnxruntime's own call, and on a Dask cluster.

    tabpipe bench batch                                      # lightgbm and logreg, 10,000,000 rows each
    tabpipe bench batch --model logreg --rows 200000 --fraction 0.05   # a smoke run (about 2 min)

Each family is trained alone by the real pipeline on adult, in a scratch copy of the project
(tabpipe/bench/serving.py's `build`). Its test rows are repeated to --rows into one Parquet file in
the same temporary folder. Then, in one run:
1. `tabpipe predict` in a process of its own: rows/s over the whole command (start, read, score,
   write), and its peak RSS as the kernel counts it (wait4's ru_maxrss of that process);
2. the ceiling: onnxruntime's own call (`Compiled.run`) on the same rows already in memory as the
   graph's input arrays, --chunk-rows at a time: rows/s;
3. `tabpipe predict --cluster` on --cluster, or else on a scheduler and two one-thread worker
   processes started on 127.0.0.1 for the run: rows/s.
The goals: (1) at least 0.7 of (2), and a peak RSS of at most 1.5 GiB (memory follows the chunk,
not the file). Results go to --out (JSON) and stdout (a markdown table).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpipe.core import files
from tabpipe.core.errors import PipelineError
from tabpipe.sandbox import servers

BIN = Path(sys.executable).parent
DEFAULT = ["lightgbm", "logreg"]
RATIO_GOAL = 0.7  # tabpipe predict's rows/s over onnxruntime's own
RSS_GOAL_MB = 1.5 * 1024  # tabpipe predict's peak RSS, MiB


@dataclass(frozen=True)
class Load:
    """What every family gets: the table's size, the chunk, and the cluster ("" to start one here)."""

    rows: int = 10_000_000
    chunk_rows: int = 100_000
    cluster: str = ""


def table_file(repo: Path, rows: int, path: Path) -> Path:
    """The project's test rows (its features) repeated to `rows` rows in one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    served = files.read_json(repo / "models/serving.json")
    names = [feature["name"] for feature in served["schema"]["features"]]
    test = pa.Table.from_pandas(
        pq.read_table(repo / "data/prepared/test.parquet").to_pandas()[names], preserve_index=False
    )
    block = pa.concat_tables([test] * max(1, 100_000 // test.num_rows)).combine_chunks()
    with pq.ParquetWriter(path, block.schema) as writer:
        for start in range(0, rows, block.num_rows):
            writer.write_table(block.slice(0, min(block.num_rows, rows - start)))
    return path


def timed_command(args: list[str], cwd: Path, environ: dict[str, str], log: Path) -> dict[str, float]:
    """Run a command to its end: its wall seconds and its peak RSS (MiB, from wait4: that process alone)."""
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(args, cwd=cwd, env=environ, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} exited {process.returncode}:\n{log.read_text()[-2000:]}")
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def ceiling(repo: Path, rows: int, chunk_rows: int) -> dict[str, float]:
    """onnxruntime's own call on the table's rows (the test rows repeated, as in the file), held as the
    graph's input arrays, `chunk_rows` at a time."""
    import numpy as np
    import pandas as pd

    from tabpipe.model import compiled, runtime
    from tabpipe.serve import manifest
    from tabpipe.task import tasks

    served = manifest.read(repo / "models/serving.json")
    model = runtime.load(repo / "models/served" / served.model_file, tasks.of(served.schema.task))
    if not isinstance(model, compiled.Compiled):
        raise PipelineError(f"bench: {served.model_file} is not an ONNX model; onnxruntime's call is the ceiling")
    test = compiled.feed(pd.read_parquet(repo / "data/prepared/test.parquet"), model.numeric, model.categorical)
    at = np.arange(rows) % len(test[0])
    numbers, texts = (part[at] for part in test)
    started = time.perf_counter()
    for start in range(0, rows, chunk_rows):
        model.run(numbers[start : start + chunk_rows], texts[start : start + chunk_rows])
    return {"seconds": round(time.perf_counter() - started, 3)}


@contextlib.contextmanager
def local_cluster(repo: Path, environ: dict[str, str]) -> Iterator[str]:
    """A Dask scheduler and two one-thread worker processes on 127.0.0.1, running the project's tabpipe;
    yields the scheduler's address once both have joined, then stops them."""
    from distributed import Client

    port, http = servers.free_port(), servers.free_port()
    address = f"tcp://127.0.0.1:{port}"
    run_env = {**environ, "PYTHONPATH": str(repo)}
    scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    scheduler += ["--dashboard-address", f"127.0.0.1:{http}"]
    with contextlib.ExitStack() as stack:
        ready = f"http://127.0.0.1:{http}/health"
        stack.enter_context(servers.background(scheduler, repo, run_env, ready, repo / "scheduler.log"))
        for name in ("one", "two"):
            dashboard = servers.free_port()
            worker = [str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--name", name]
            worker += ["--dashboard-address", f"127.0.0.1:{dashboard}"]
            ready = f"http://127.0.0.1:{dashboard}/health"
            stack.enter_context(servers.background(worker, repo, run_env, ready, repo / f"{name}.log"))
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield address


def bench_family(repo: Path, workdir: Path, environ: dict[str, str], load: Load) -> dict[str, Any]:
    """The three measurements of one family's gated model on one table of `load.rows` rows."""
    source = table_file(repo, load.rows, workdir / f"{repo.name}-batch.parquet")
    predict = [sys.executable, "-m", "tabpipe", "predict", str(source), "--chunk-rows", str(load.chunk_rows)]
    one = timed_command([*predict, "--output", str(repo / "one.parquet")], repo, environ, repo / "one.log")
    with contextlib.ExitStack() as stack:
        address = load.cluster or stack.enter_context(local_cluster(repo, environ))
        spread = [*predict, "--output", str(repo / "spread.parquet"), "--cluster", address]
        dask = timed_command(spread, repo, environ, repo / "spread.log")
    return {
        "rows": load.rows,
        "predict": one,
        "ceiling": ceiling(repo, load.rows, load.chunk_rows),
        "dask": {"seconds": dask["seconds"], "cluster": load.cluster or "local: 2 workers, 1 thread each"},
    }


def rates(result: dict[str, Any]) -> dict[str, float]:
    """rows/s of each measurement, tabpipe predict's share of the ceiling, and its peak RSS."""
    rows = result["rows"]
    predict, top, dask = (rows / result[name]["seconds"] for name in ("predict", "ceiling", "dask"))
    return {
        "predict_rows_per_s": predict,
        "ceiling_rows_per_s": top,
        "dask_rows_per_s": dask,
        "ratio": predict / top,
        "peak_rss_mb": result["predict"]["peak_rss_mb"],
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    """One row per family: the three rates, the ratio and the peak RSS against their goals."""
    head = [
        "family",
        "rows",
        "tabpipe predict rows/s",
        "onnxruntime rows/s",
        f"predict / onnxruntime (goal >= {RATIO_GOAL}x)",
    ]
    head += [f"predict peak RSS MiB (goal <= {RSS_GOAL_MB:,.0f})", "Dask rows/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family, result in results.items():
        found = rates(result)
        ratio = f"{found['ratio']:.2f}x {'met' if found['ratio'] >= RATIO_GOAL else 'missed'}"
        rss = f"{found['peak_rss_mb']:,.0f} {'met' if found['peak_rss_mb'] <= RSS_GOAL_MB else 'missed'}"
        cells = [family, f"{result['rows']:,}"]
        cells += [f"{found[name]:,.0f}" for name in ("predict_rows_per_s", "ceiling_rows_per_s")]
        cells += [ratio, rss, f"{found['dask_rows_per_s']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(root: Path, models: list[str], load: Load, fraction: float, out: Path, overrides: dict[str, Any]) -> str:
    """Build every family, measure it on a table of `load.rows` rows; writes `out`, returns the table."""
    from tabpipe.bench import serving

    unknown = [name for name in models if trained_on(name) != "adult"]
    if unknown:
        raise PipelineError(f"bench batch: {unknown[0]}: not a family trained on adult ({', '.join(DEFAULT)}, ...)")
    results = serving.each_family(
        root, models, fraction, overrides, lambda repo, workdir, environ: bench_family(repo, workdir, environ, load)
    )
    settings = {**overrides, "rows": load.rows, "chunk_rows": load.chunk_rows, "fraction": fraction}
    files.write_json(out, {"settings": settings, "results": {name: {**r, **rates(r)} for name, r in results.items()}})
    return table(results)


def trained_on(name: str) -> str:
    """The dataset `serving.build` trains a family on ("" for an unknown family)."""
    from tabpipe.bench import serving
    from tabpipe.model import estimators
    from tabpipe.task import tasks

    if name not in serving.FAMILIES:
        return ""
    return serving.DATASETS[tasks.of(estimators.task_of(serving.FAMILIES[name]["estimator"])).name]
