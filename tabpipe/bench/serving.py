"""Serving benchmark: our service against what users would pick instead, for every candidate family, in one run.

    tabpipe bench serving                     # every family (a regressor on california), 5 servers, ~80 min
    tabpipe bench serving --duration 1 --concurrency 1 --concurrency 2 --batch 100 --model logreg --rounds 1 \
        --fraction 0.05                       # a smoke run

Each family is trained alone by the real pipeline (`dvc repro` on adult, a regressor on california)
in a scratch copy of the project. Then, with the same worker count each (`--workers`, default serve.workers):
1. ours: `bentoml serve` of the compiled (ONNX) model, prediction log on;
2. FastAPI + uvicorn around the scikit-learn pipeline, written the way users write it;
3. `mlflow models serve` of the registered model (it answers probabilities too);
   and, after every /predict figure, its POST /explain of one row at c=1;
4. BentoML's ceiling: tabpipe/bench/ceiling.py, the same shape answering a constant, returning a
   finished response as ours does; and the standard ceiling, returning the dict for BentoML to
   serialise, as BentoML services usually do (`--no-peers`: ours and the ceilings only).
The peers run with OMP_NUM_THREADS=1, so histogram gradient boosting's OpenMP threads do not
fight their request threads (without it they collapse under concurrency, as ours once did).

Load comes from wrk (Debian's `wrk`) on 127.0.0.1, after a warm-up per level: single-row
requests at each concurrency, then batches of 100 and 1,000 rows at --batch-concurrency (rows/s).
All of a family's servers run at once and take turns: each round measures every server at one
level before the next level, and the figures are the median over --rounds. This machine's speed
swings by up to 2x within minutes (a CPU loop took 0.83-1.76 s), so servers measured one after the
other gave ratios that moved with it.
Results go to --out (JSON) and stdout (markdown tables and the ratios the goals are stated in).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpipe.core import files
from tabpipe.core.errors import PipelineError
from tabpipe.model import estimators
from tabpipe.sandbox import project, servers
from tabpipe.task import tasks

BIN = Path(sys.executable).parent
DATASETS = {"classification": "adult", "regression": "california"}  # each task's family trains on its own
FAMILIES = {
    "logreg": {"estimator": "logistic_regression", "grid": {"C": [1.0]}},
    "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 200, "min_samples_leaf": 5, "n_jobs": 2}},
    "boosting": {
        "estimator": "hist_gradient_boosting",
        "fixed": {"max_iter": 300, "early_stopping": False, "learning_rate": 0.1, "max_leaf_nodes": 31},
    },
    "lightgbm": {"estimator": "lightgbm", "fixed": {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31}},
    # A regressor, on california: each row answers a value and its interval.
    "lightgbm_regressor": {
        "estimator": "lightgbm_regressor",
        "fixed": {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31},
    },
}
DEFAULT = ["logreg", "forest", "boosting", "lightgbm", "lightgbm_regressor"]
SERVERS = ("ours", "fastapi", "mlflow")
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


@dataclass(frozen=True)
class Load:
    """What every server gets: the same workers, levels and durations."""

    concurrency: list[int]
    batches: list[int]
    batch_concurrency: int
    duration: float
    workers: int
    rounds: int = 1


def build(
    root: Path, name: str, workdir: Path, fraction: float, environ: dict[str, str], overrides: dict[str, Any]
) -> Path:
    """A scratch project that trains only this family on adult (a regressor: california), after `dvc repro`."""
    repo = project.copy_project(root, workdir / name, environ)
    task = tasks.of(estimators.task_of(FAMILIES[name]["estimator"]))
    params = {"data.dataset": DATASETS[task.name], "data.fraction": fraction}
    params |= {task.candidates: {name: FAMILIES[name]}}
    params |= {"train.cv_folds": 2, "evaluate.importance_repeats": 1, "serve.prediction_log": str(repo / "log.db")}
    project.set_params(repo, {**params, **overrides})
    result = subprocess.run([str(BIN / "dvc"), "repro"], cwd=repo, env=environ, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc repro for {name} failed:\n{result.stderr[-2000:]}")
    return repo


def each_family(
    root: Path,
    models: list[str],
    fraction: float,
    overrides: dict[str, Any],
    measure: Callable[[Path, Path, dict[str, str]], dict[str, Any]],
) -> dict[str, Any]:
    """Build each family in one temporary folder and `measure` it there (its repo, the folder, the
    environment): {family: what it measured}. A failed build or command is one error line."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tabpipe-bench-") as temporary:
        workdir = Path(temporary)
        environ = project.environment(workdir, BIN)
        try:
            for name in models:
                results[name] = measure(build(root, name, workdir, fraction, environ, overrides), workdir, environ)
        except (RuntimeError, subprocess.CalledProcessError) as error:
            raise PipelineError(f"bench: {error}") from error
    return results


def test_rows(repo: Path, count: int) -> list[dict[str, Any]]:
    """The first `count` test rows as JSON-ready dicts (missing values as null)."""
    import pandas as pd

    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    test = pd.read_parquet(repo / "data/prepared/test.parquet")[[f["name"] for f in schema["features"]]]
    rows = test.astype(object).where(test.notna(), None).to_dict(orient="records")
    return [rows[i % len(rows)] for i in range(count)]


def in_process(repo: Path) -> dict[str, Any]:
    """The floor: one row through the scikit-learn pipeline and through the compiled model (median ms),
    and a 1,000-row request's steps in the service (`request_phases`)."""

    import joblib
    import pandas as pd

    from tabpipe.core.layout import paths
    from tabpipe.model import runtime
    from tabpipe.serve import manifest, request

    models = paths(repo)["models"]
    served = manifest.read(models["serving"])
    pipeline = joblib.load(models["model"])
    compiled = runtime.load(models["served"] / served.model_file, tasks.of(served.schema.task))
    (row,) = test_rows(repo, 1)
    frame = request.rows_frame([row], served.schema)
    batch = test_rows(repo, 1000)
    task = tasks.of(served.schema.task)

    return {
        "pipeline_row_ms": median_ms(lambda: task.predict(pipeline, frame)),
        "compiled_row_ms": median_ms(lambda: request.predict(compiled, [row], served.schema, task)),
        "compiled_1000_rows_per_s": round(
            1000 / median_ms(lambda: request.predict(compiled, batch, served.schema, task), 20) * 1000
        ),
        "pipeline_1000_rows_per_s": round(
            1000 / median_ms(lambda: task.predict(pipeline, pd.DataFrame(batch)), 5) * 1000
        ),
        "request_1000_ms": request_phases(served, compiled, batch),
    }


def median_ms(call: Any, rounds: int = 200) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return round(statistics.median(timings) * 1000, 4)


def request_phases(served: Any, compiled: Any, batch: list[dict[str, Any]]) -> dict[str, float]:
    """What the service does with one request of `batch`'s rows, step by step (median ms, in-process):
    the part of a large request's time that is ours rather than the framework's."""
    from functools import partial

    import orjson
    from pydantic import TypeAdapter

    from tabpipe.serve import prediction_log, prediction_log_writer, request, unseen

    schema = served.schema
    body = orjson.dumps(batch)
    rows = TypeAdapter(list[request.row_model(schema, served.serve.unseen)]).validate_json  # type: ignore[misc]
    validated = rows(body)
    records = request.records(validated, schema)

    checks = partial(unseen.model_rows, records, schema)
    model_rows, flags = checks()
    task = tasks.of(schema.task)
    predicted = request.predict(compiled, model_rows, schema, task)
    labels, outputs, names = predicted.labels, predicted.outputs, predicted.names
    predict = partial(request.predict, compiled, model_rows, schema, task)
    answer = partial(task.body, predicted, served.identity, "id")
    answered = answer()
    steps = {
        "validate": partial(rows, body),
        "records": partial(request.records, validated, schema),
        "checks": checks,
        "predict": predict,
        "answer": answer,
        "encode": partial(orjson.dumps, answered),
        "log": lambda: prediction_log_writer.frame(
            prediction_log.new(records, labels, outputs, names, served.identity, flags)
        ),
    }
    timed = {name: median_ms(step, 20) for name, step in steps.items()}
    return {**timed, "total": round(sum(timed.values()), 4)}


def wrk(url: str, script: Path, concurrency: int, duration: float) -> dict[str, float]:
    threads = str(min(concurrency, 2))
    args = ["wrk", "-t", threads, "-c", str(concurrency), "-d", f"{max(1, round(duration))}s", "--latency"]
    output = subprocess.run([*args, "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, flags=re.M))
    if set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"wrk gave no latency distribution for {url}:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": round(float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), 1),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def interleaved(urls: dict[str, str], bodies: dict[str, dict[int, Path]], load: Load) -> dict[str, dict]:
    """Every server at each level in turn, `load.rounds` times (the order rotating each round); each
    figure is the median over the rounds, errors and requests their sum."""
    cases = [("single", str(c), 1, c) for c in load.concurrency]
    cases += [("batch", str(size), size, load.batch_concurrency) for size in load.batches]
    runs: dict[str, dict[tuple[str, str], list[dict[str, float]]]] = {kind: {} for kind in urls}
    kinds = list(urls)
    for round_ in range(load.rounds):
        for part, key, size, concurrency in cases:
            for kind in kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]:
                script = bodies[kind][size]
                wrk(urls[kind], script, concurrency, min(2.0, load.duration))  # warm-up, discarded
                runs[kind].setdefault((part, key), []).append(wrk(urls[kind], script, concurrency, load.duration))
    measured = {}
    for kind, by_case in runs.items():
        figures: dict[str, dict[str, Any]] = {"single": {}, "batch": {}}
        for (part, key), found in by_case.items():
            figures[part][key] = summary(found, int(key) if part == "batch" else 1)
        measured[kind] = figures
    return measured


def summary(runs: list[dict[str, float]], size: int) -> dict[str, Any]:
    """The rounds of one server at one level: medians, with requests and errors summed."""
    figures: dict[str, Any] = {name: statistics.median(r[name] for r in runs) for name in ("rps", "p50_ms", "p99_ms")}
    figures |= {"requests": sum(r["requests"] for r in runs), "errors": sum(r["errors"] for r in runs)}
    figures |= {"rounds": [r["rps"] for r in runs]}
    if size > 1:
        figures["rows_per_s"] = round(figures["rps"] * size)
    return figures


def scripts(folder: Path, rows: list[dict[str, Any]], sizes: list[int], key: str) -> dict[int, Path]:
    """One wrk script per request size, its body `{key: rows[:size]}`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for size in [1, *sizes]:
        out[size] = folder / f"{key}-{size}.lua"
        out[size].write_text(LUA.format(body=json.dumps(json.dumps({key: rows[:size]}))))
    return out


@contextlib.contextmanager
def server(kind: str, repo: Path, environ: dict[str, str], workers: int) -> Iterator[str]:
    """Start one server kind on 127.0.0.1 with `workers` workers; yields its predict URL."""
    port = servers.free_port()
    url = f"http://127.0.0.1:{port}"
    peer_env = {**environ, "OMP_NUM_THREADS": "1"}
    if kind == "ours":
        with servers.bentoml_serve(repo, BIN, environ) as address:
            yield f"{address}/predict"
    elif kind == "fastapi":
        args = [str(BIN / "uvicorn"), "tabpipe.bench.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]
        args += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
        run_env = {**peer_env, "TABPIPE_PROJECT": str(repo), "PYTHONPATH": str(repo)}
        with servers.background(args, repo, run_env, f"{url}/health", repo / "fastapi.log"):
            yield f"{url}/predict"
    elif kind == "mlflow":
        uri = f"models:/{json.loads((repo / 'models/serving.json').read_text())['name']}@champion"
        args = [str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1"]
        args += ["-p", str(port), "--workers", str(workers)]
        run_env = {**peer_env, "MLFLOW_TRACKING_URI": f"sqlite:///{repo}/mlflow.db"}
        with servers.background(args, repo, run_env, f"{url}/health", repo / "mlflow.log", timeout=180):
            yield f"{url}/invocations"
    else:
        target = "StandardCeiling" if kind == "ceiling_standard" else "Ceiling"
        args = [
            str(BIN / "bentoml"),
            "serve",
            f"tabpipe.bench.ceiling:{target}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        run_env = {**environ, "TABPIPE_BENCH_WORKERS": str(workers)}
        with servers.background(args, repo, run_env, f"{url}/readyz", repo / "ceiling.log"):
            yield f"{url}/predict"


def bench_family(kinds: list[str], repo: Path, environ: dict[str, str], load: Load) -> dict[str, dict]:
    """Start every server kind on the family's repo, then measure them in turns (interleaved)."""
    rows = test_rows(repo, max(load.batches, default=1))
    bodies = {}
    for kind in kinds:
        key = "dataframe_records" if kind == "mlflow" else "rows"
        bodies[kind] = scripts(repo / "wrk" / kind, rows, load.batches, key)
    with contextlib.ExitStack() as running:
        urls = {kind: running.enter_context(server(kind, repo, environ, load.workers)) for kind in kinds}
        measured = interleaved(urls, bodies, load)
        if "ours" in urls:  # after every /predict figure: those were measured with /explain never asked
            measured["ours"]["explain"] = explained(urls["ours"], bodies["ours"][1], load)
        return measured


def explained(predict_url: str, script: Path, load: Load) -> dict[str, Any]:
    """POST /explain of one row at c=1 (the median over `load.rounds`), after a warm-up that builds the
    explainer of the worker the one connection reaches: what a client asking why waits."""
    url = predict_url.removesuffix("/predict") + "/explain"
    wrk(url, script, 1, min(2.0, load.duration))
    return summary([wrk(url, script, 1, load.duration) for _ in range(load.rounds)], 1)


CEILINGS = {
    "ceiling": "BentoML ceiling (constant, finished response)",
    "ceiling_standard": "BentoML ceiling (constant, dict serialised by BentoML)",
}


def table(results: dict[str, Any], levels: list[int], sizes: list[int]) -> str:
    high = str(max(levels))
    head = ["family", "server", *(f"c={c} rps" for c in levels), "c=1 p50 ms", f"c={high} p99 ms"]
    head += [f"{s}-row rows/s" for s in sizes] + ["errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(family: str, name: str, figures: dict[str, Any]) -> str:
        single, batch = figures["single"], figures["batch"]
        errors = sum(f["errors"] for f in [*single.values(), *batch.values()])
        cells = [family, name, *(f"{single[str(c)]['rps']:.0f}" for c in levels)]
        cells += [f"{single['1']['p50_ms']}", f"{single[high]['p99_ms']}"]
        cells += [f"{batch[str(s)]['rows_per_s']:,}" for s in sizes] + [str(errors)]
        return "| " + " | ".join(cells) + " |"

    for family, result in results.items():
        lines += [
            row(family, CEILINGS.get(kind, kind), result[kind]) for kind in [*SERVERS, *CEILINGS] if kind in result
        ]

    loaded = [str(c) for c in levels if c > 1]
    peers = all("fastapi" in result for result in results.values())
    head = ["family", *([f"c={high}: ours / FastAPI", "ours / MLflow"] if peers else [])]
    head += [f"c={c}: ours / ceiling" for c in loaded] + [f"c={c}: ours / standard ceiling" for c in loaded]
    head += [f"{s}-row: ours / ceiling" for s in sizes]
    head += ["c=1 p50 ms: ours, ceiling", "c=1 /explain p50 ms", "one row in-process: pipeline ms, compiled ms"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family, result in results.items():
        ours, floor = result["ours"], result["in_process"]
        cells = [family]
        if peers:
            cells += [f"{ours['single'][high]['rps'] / result[k]['single'][high]['rps']:.1f}x" for k in SERVERS[1:]]
        for kind in CEILINGS:
            cells += [f"{ours['single'][c]['rps'] / result[kind]['single'][c]['rps']:.2f}x" for c in loaded]
        cells += [f"{ours['batch'][str(s)]['rps'] / result['ceiling']['batch'][str(s)]['rps']:.2f}x" for s in sizes]
        cells += [f"{ours['single']['1']['p50_ms']}, {result['ceiling']['single']['1']['p50_ms']}"]
        cells += [f"{ours['explain']['p50_ms']}"]
        cells += [f"{floor['pipeline_row_ms']}, {floor['compiled_row_ms']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(
    root: Path, models: list[str], load: Load, fraction: float, out: Path, overrides: dict[str, Any], peers: bool = True
) -> str:
    """Build every family and measure its servers with the ceilings; writes `out`, returns the tables."""
    overrides = {**overrides, "serve.workers": load.workers}
    if shutil.which("wrk") is None:
        raise PipelineError("bench: wrk not found; install it with `apt-get install wrk`")
    kinds = [*(SERVERS if peers else ["ours"]), *CEILINGS]

    def measure(repo: Path, workdir: Path, environ: dict[str, str]) -> dict[str, Any]:
        return {"in_process": in_process(repo), **bench_family(kinds, repo, environ, load)}

    results = each_family(root, models, fraction, overrides, measure)
    settings = {**overrides, "workers": load.workers, "batch_concurrency": load.batch_concurrency}
    files.write_json(
        out, {"settings": {**settings, "rounds": load.rounds, "duration": load.duration}, "results": results}
    )
    return table(results, load.concurrency, load.batches)
