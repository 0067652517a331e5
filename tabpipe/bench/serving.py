"""Serving benchmark: our service against what users would pick instead, for every candidate family, in one run.

    tabpipe bench serving                     # every family (a regressor on california), 4 servers, ~40 min
    tabpipe bench serving --duration 1 --concurrency 1 --concurrency 2 --batch 100 --model logreg \
        --fraction 0.05                       # a smoke run

Each family is trained alone by the real pipeline (`dvc repro` on adult, a regressor on california)
in a scratch copy of the project. Then, with the same worker count each (`--workers`, default serve.workers):
1. ours: `bentoml serve` of the compiled (ONNX) model, prediction log on;
2. FastAPI + uvicorn around the scikit-learn pipeline, written the way users write it;
3. `mlflow models serve` of the registered model (it answers probabilities too);
4. BentoML's ceiling: tabpipe/bench/ceiling.py, the same shape answering a constant (once, not per
   family), returning a finished response as ours does; and the standard ceiling, returning the dict
   for BentoML to serialise, as BentoML services usually do.
The peers run with OMP_NUM_THREADS=1, so histogram gradient boosting's OpenMP threads do not
fight their request threads (without it they collapse under concurrency, as ours once did).

Load comes from wrk (Debian's `wrk`) on 127.0.0.1, after a warm-up per level: single-row
requests at each concurrency, then batches of 100 and 1,000 rows at --batch-concurrency (rows/s).
Results go to --out (JSON) and stdout (markdown tables and the ratios the goals are stated in).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpipe.core import files
from tabpipe.core.errors import PipelineError
from tabpipe.model import estimators
from tabpipe.sandbox import project, servers

BIN = Path(sys.executable).parent
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


def build(
    root: Path, name: str, workdir: Path, fraction: float, environ: dict[str, str], overrides: dict[str, Any]
) -> Path:
    """A scratch project that trains only this family on adult (a regressor: california), after `dvc repro`."""
    repo = project.copy_project(root, workdir / name, environ)
    regressor = estimators.task_of(FAMILIES[name]["estimator"]) == "regression"
    section = "train.regression.candidates" if regressor else "train.candidates"
    params = {"data.dataset": "california" if regressor else "adult", "data.fraction": fraction}
    params |= {section: {name: FAMILIES[name]}}
    params |= {"train.cv_folds": 2, "evaluate.importance_repeats": 1, "serve.prediction_log": str(repo / "log.db")}
    project.set_params(repo, {**params, **overrides})
    result = subprocess.run([str(BIN / "dvc"), "repro"], cwd=repo, env=environ, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc repro for {name} failed:\n{result.stderr[-2000:]}")
    return repo


def test_rows(repo: Path, count: int) -> list[dict[str, Any]]:
    """The first `count` test rows as JSON-ready dicts (missing values as null)."""
    import pandas as pd

    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    test = pd.read_parquet(repo / "data/prepared/test.parquet")[[f["name"] for f in schema["features"]]]
    rows = test.astype(object).where(test.notna(), None).to_dict(orient="records")
    return [rows[i % len(rows)] for i in range(count)]


def in_process(repo: Path) -> dict[str, float]:
    """The floor: one row through the scikit-learn pipeline and through the compiled model (median ms)."""
    import statistics

    import joblib
    import pandas as pd

    from tabpipe.core.layout import paths
    from tabpipe.model import runtime
    from tabpipe.serve import manifest, request

    models = paths(repo)["models"]
    served = manifest.read(models["serving"])
    pipeline = joblib.load(models["model"])
    compiled = runtime.load(models["served"] / served.model_file)
    (row,) = test_rows(repo, 1)
    frame = request.rows_frame([row], served.schema)
    batch = test_rows(repo, 1000)
    regressor = served.schema.regression
    predict = pipeline.predict if regressor else pipeline.predict_proba
    served_rows = request.predict_values if regressor else request.predict

    def median_ms(call: Any, rounds: int = 200) -> float:
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            call()
            timings.append(time.perf_counter() - started)
        return round(statistics.median(timings) * 1000, 4)

    return {
        "pipeline_row_ms": median_ms(lambda: predict(frame)),
        "compiled_row_ms": median_ms(lambda: served_rows(compiled, [row], served.schema)),
        "compiled_1000_rows_per_s": round(
            1000 / median_ms(lambda: served_rows(compiled, batch, served.schema), 20) * 1000
        ),
        "pipeline_1000_rows_per_s": round(1000 / median_ms(lambda: predict(pd.DataFrame(batch)), 5) * 1000),
    }


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


def measure(url: str, bodies: dict[int, Path], levels: list[int], batch_level: int, duration: float) -> dict:
    """Single rows at each concurrency, then each batch size at `batch_level` (rows/s added)."""

    def run(script: Path, concurrency: int) -> dict[str, float]:
        wrk(url, script, concurrency, min(2.0, duration))  # warm-up, discarded
        return wrk(url, script, concurrency, duration)

    single = {str(c): run(bodies[1], c) for c in levels}
    batch = {}
    for size, script in bodies.items():
        if size > 1:
            figures = run(script, batch_level)
            batch[str(size)] = {**figures, "rows_per_s": round(figures["rps"] * size)}
    return {"single": single, "batch": batch}


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


def bench_server(kind: str, repo: Path, environ: dict[str, str], args: Load) -> dict:
    key = "dataframe_records" if kind == "mlflow" else "rows"
    bodies = scripts(repo / "wrk", test_rows(repo, max(args.batches, default=1)), args.batches, key)
    with server(kind, repo, environ, args.workers) as url:
        return measure(url, bodies, args.concurrency, args.batch_concurrency, args.duration)


CEILINGS = {
    "ceiling": "BentoML ceiling (constant, finished response)",
    "ceiling_standard": "BentoML ceiling (constant, dict serialised by BentoML)",
}


def table(results: dict[str, Any], ceilings: dict[str, Any], levels: list[int], sizes: list[int]) -> str:
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
        lines += [row(family, kind, result[kind]) for kind in SERVERS if kind in result]
    lines += [row("-", CEILINGS[kind], figures) for kind, figures in ceilings.items()]

    loaded = [str(c) for c in levels if c > 1]
    head = ["family", f"c={high}: ours / FastAPI", "ours / MLflow", *(f"c={c}: ours / ceiling" for c in loaded)]
    head += [f"c={c}: ours / standard ceiling" for c in loaded]
    head += ["c=1 p50 ms: ours, ceiling", "one row in-process: pipeline ms, compiled ms"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family, result in results.items():
        ours = result["ours"]["single"]
        floor = result["in_process"]
        cells = [
            family,
            f"{ours[high]['rps'] / result['fastapi']['single'][high]['rps']:.1f}x",
            f"{ours[high]['rps'] / result['mlflow']['single'][high]['rps']:.1f}x",
        ]
        for kind in CEILINGS:
            cells += [f"{ours[c]['rps'] / ceilings[kind]['single'][c]['rps']:.2f}x" for c in loaded]
        cells += [f"{ours['1']['p50_ms']}, {ceilings['ceiling']['single']['1']['p50_ms']}"]
        cells += [f"{floor['pipeline_row_ms']}, {floor['compiled_row_ms']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(root: Path, models: list[str], load: Load, fraction: float, out: Path, overrides: dict[str, Any]) -> str:
    """Build every family, measure every server on it and the ceiling once; writes `out`, returns the tables."""
    overrides = {**overrides, "serve.workers": load.workers}
    if shutil.which("wrk") is None:
        raise PipelineError("bench: wrk not found; install it with `apt-get install wrk`")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tabpipe-bench-") as temporary:
        workdir = Path(temporary)
        environ = project.environment(workdir, BIN)
        try:
            for name in models:
                repo = build(root, name, workdir, fraction, environ, overrides)
                results[name] = {"in_process": in_process(repo)}
                results[name] |= {kind: bench_server(kind, repo, environ, load) for kind in SERVERS}
            ceilings = {kind: bench_server(kind, repo, environ, load) for kind in CEILINGS}
        except (RuntimeError, subprocess.CalledProcessError) as error:
            raise PipelineError(f"bench: {error}") from error
    settings = {**overrides, "workers": load.workers, "batch_concurrency": load.batch_concurrency}
    files.write_json(out, {"settings": settings, "results": results, **ceilings})
    return table(results, ceilings, load.concurrency, load.batches)
