"""Serving benchmark: in-process floor, FastAPI + uvicorn, and our `bentoml serve`, in one run, for two models.

    python -m bench.serving                        # adult, logistic regression and random forest, ~10 min
    python -m bench.serving --duration 2 --concurrency 1,2 --models logreg --fraction 0.05   # a smoke run
    python -m bench.serving --set serve.workers=1 --set serve.prediction_log=   # other service settings

Each model is trained by the real pipeline (`dvc repro`) in a scratch copy of the project, then
served both ways from the same files. Load comes from wrk (Debian's `wrk` package) on 127.0.0.1:
single-row JSON requests at each concurrency, after a warm-up. Results go to --out (JSON) and
stdout (a markdown table with ratios to FastAPI).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tools import scratch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELS = {
    "logreg": {"estimator": "logistic_regression", "grid": {"C": [1.0]}},
    "forest": {"estimator": "random_forest", "fixed": {"n_estimators": 100, "n_jobs": 1}, "grid": {"max_depth": [12]}},
}
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def build(name: str, workdir: Path, fraction: float, environ: dict[str, str], overrides: dict[str, Any]) -> Path:
    """A scratch project whose pipeline trains only this model on adult, after `dvc repro`."""
    repo = scratch.copy_project(ROOT, workdir / name, environ)
    params = {"data.dataset": "adult", "data.fraction": fraction, "train.candidates": {name: MODELS[name]}}
    params |= {"train.cv_folds": 2, "evaluate.importance_repeats": 1, "serve.prediction_log": str(repo / "log.db")}
    scratch.set_params(repo, {**params, **overrides})
    result = subprocess.run([str(BIN / "dvc"), "repro"], cwd=repo, env=environ, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc repro for {name} failed:\n{result.stderr[-2000:]}")
    return repo


def one_row(repo: Path) -> dict[str, Any]:
    import pandas as pd

    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    test = pd.read_parquet(repo / "data/prepared/test.parquet")
    names = [f["name"] for f in schema["features"]]
    row = test[names].dropna().iloc[0].astype(object)
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def log_cost(repo: Path, model: Any, frame: Any) -> dict[str, float]:
    """What the prediction log adds to a request: one append of 1 and of 100 rows (median ms)."""
    import statistics

    from tabpipe.model.predict import predict
    from tabpipe.serve import predlog

    log = predlog.PredictionLog(repo / "log-cost.db")
    figures = {}
    for rows in (1, 100):
        part = frame.iloc[:rows]
        records = part.astype(object).where(part.notna(), None).to_dict(orient="records")
        labels, proba = predict(model, part)
        timings = []
        for _ in range(200):
            started = time.perf_counter()
            log.append(records, labels, proba, [str(c) for c in model.classes_], {"name": "m", "version": "v"})
            timings.append(time.perf_counter() - started)
        figures[f"log_{rows}_rows_ms"] = round(statistics.median(timings) * 1000, 3)
    log.close()
    return figures


def in_process(repo: Path) -> dict[str, float]:
    """The floor: predict_proba alone, one row (median latency) and batches of 256 (rows/s)."""
    import statistics

    import pandas as pd

    from tabpipe.core.layout import paths
    from tabpipe.serve import manifest, store

    models = paths(repo)["models"]
    served = manifest.read(models["serving"])
    schema = served.schema
    model = store.load_file(models["model"], served.model_sha256)
    test = pd.read_parquet(repo / "data/prepared/test.parquet")[schema.feature_names]
    single, batch = test.iloc[:1], test.iloc[:256]
    timings = []
    for _ in range(200):
        started = time.perf_counter()
        model.predict_proba(single)
        timings.append(time.perf_counter() - started)
    started, rounds = time.perf_counter(), 20
    for _ in range(rounds):
        model.predict_proba(batch)
    return {
        "single_row_ms": round(statistics.median(timings) * 1000, 3),
        "batch_256_rows_per_s": round(rounds * len(batch) / (time.perf_counter() - started)),
        **log_cost(repo, model, test),
    }


def wrk(url: str, script: Path, concurrency: int, duration: float) -> dict[str, float]:
    threads = str(min(concurrency, 2))
    args = [
        "wrk",
        "-t",
        threads,
        "-c",
        str(concurrency),
        "-d",
        f"{max(1, round(duration))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, flags=re.M))
    if set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"wrk gave no latency distribution for {url}:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return {
        "rps": round(float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), 1),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "requests": requests,
        "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def load(url: str, script: Path, levels: list[int], duration: float) -> dict[int, dict[str, float]]:
    results = {}
    for concurrency in levels:
        wrk(url, script, concurrency, min(2.0, duration))  # warm-up, discarded
        results[concurrency] = wrk(url, script, concurrency, duration)
    return results


def bench_model(
    name: str, repo: Path, environ: dict[str, str], levels: list[int], duration: float, fastapi_async: bool
) -> dict:
    script = repo / "post.lua"
    script.write_text(LUA.format(body=json.dumps(json.dumps({"rows": [one_row(repo)]}))))
    result: dict[str, Any] = {"in_process": in_process(repo)}
    port = scratch.free_port()
    uvicorn = [str(BIN / "uvicorn"), "bench.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]
    uvicorn += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    fastapi_env = {**environ, "TABPIPE_PROJECT": str(repo), "PYTHONPATH": str(ROOT)}
    fastapi_env["TABPIPE_FASTAPI_ASYNC"] = "1" if fastapi_async else "0"
    url = f"http://127.0.0.1:{port}"
    with scratch.background(uvicorn, ROOT, fastapi_env, f"{url}/health", repo / "uvicorn.log"):
        result["fastapi"] = load(f"{url}/predict", script, levels, duration)
    with scratch.bentoml_serve(repo, BIN, environ) as url:
        result["bentoml"] = load(f"{url}/predict", script, levels, duration)
    return result


def table(results: dict[str, dict]) -> str:
    lines = [
        "| model | server | concurrency | requests/s | p50 ms | p99 ms | errors | rps vs FastAPI | p99 vs FastAPI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, result in results.items():
        floor = result["in_process"]
        lines.append(
            f"| {model} | in-process predict_proba | - | {1000 / floor['single_row_ms']:.0f} (1 row) |"
            f" {floor['single_row_ms']} | - | - | batch of 256: {floor['batch_256_rows_per_s']} rows/s |"
            f" log append: {floor['log_1_rows_ms']} ms (1 row), {floor['log_100_rows_ms']} ms (100) |"
        )
        for server in ("fastapi", "bentoml"):
            for concurrency, figures in result[server].items():
                base = result["fastapi"][concurrency]
                lines.append(
                    f"| {model} | {server} | {concurrency} | {figures['rps']} | {figures['p50_ms']} |"
                    f" {figures['p99_ms']} | {figures['errors']} | {figures['rps'] / base['rps']:.2f}x |"
                    f" {figures['p99_ms'] / base['p99_ms']:.2f}x |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="logreg,forest")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--fraction", type=float, default=0.3, help="share of adult used to train")
    parser.add_argument("--out", type=Path, default=Path("bench/results/serving.json"))
    parser.add_argument("--fastapi-async", action="store_true", help="the baseline with an `async def` endpoint")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a params.yaml override, e.g. serve.workers=1"
    )
    args = parser.parse_args()
    overrides = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.set)}
    if shutil.which("wrk") is None:
        sys.exit("error: bench: wrk not found; install it with `apt-get install wrk`")
    levels = [int(c) for c in args.concurrency.split(",")]
    results = {}
    with tempfile.TemporaryDirectory(prefix="tabpipe-bench-") as temporary:
        workdir = Path(temporary)
        environ = scratch.environment(workdir, BIN)
        for name in args.models.split(","):
            try:
                repo = build(name, workdir, args.fraction, environ, overrides)
                results[name] = bench_model(name, repo, environ, levels, args.duration, args.fastapi_async)
            except RuntimeError as error:
                sys.exit(f"error: bench: {error}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {**overrides, "fastapi": "async def" if args.fastapi_async else "def (thread pool)"}
    args.out.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
