"""Monitor the served model: drift of logged traffic (or a batch file) against the reference, and a retrain decision.

    tabpipe monitor                                 # the newest monitor.window logged rows
    tabpipe monitor --labels truth.csv              # plus metrics on rows whose truth is known
    tabpipe monitor --batch new.csv                 # a file of rows instead (the model predicts them)
    tabpipe monitor --batch scores.parquet          # tabpipe predict's output (its answers are the served ones)

Writes <out>/drift.json (everything), <out>/drift.html (Evidently), <out>/drift.prom (Prometheus
textfile) and <out>/metrics.json (flat). Exit status: 0 keep serving, 3 retrain advised, 1 error;
the command (tabpipe/cli/app.py) also tells the team's webhook when retraining is advised.
The pipeline's files (test split, predictions, importance, manifest, model) are found through dvc.yaml.
"""

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tabpipe.core import files, settings
from tabpipe.core.errors import PipelineError
from tabpipe.core.layout import paths
from tabpipe.data import datasets, schema
from tabpipe.monitor import assess, prometheus, traffic
from tabpipe.serve import bento_model, manifest, prediction_log
from tabpipe.task import tasks

log = logging.getLogger("monitor")


@dataclass(frozen=True, kw_only=True)
class Options:
    """The command line's choices (tabpipe monitor --help)."""

    params: Path = Path("params.yaml")
    log: Path | None = None
    last: int | None = None
    after_id: int | None = None
    until_id: int | None = None
    labels: Path | None = None
    batch: Path | None = None
    out: Path = Path("reports/monitor")


@dataclass(frozen=True)
class Checked:
    """One window's assessment and the served model it judged (its BentoML tag), for the command to report."""

    tag: str
    assessment: assess.Assessment


def run(args: Options) -> Checked:
    """Assess one window and write its reports; the assessment's exit code says whether to retrain."""
    params = settings.read(args.params)
    rules = params.section(settings.Monitor)
    layout = paths()
    served = manifest.read(layout["models"]["serving"])
    prepared = schema.read(layout["data"]["prepared"] / "schema.json")
    reference = assess.reference_frame(
        files.read_parquet(layout["data"]["prepared"] / "test.parquet"),
        files.read_parquet(layout["data"]["predictions"]),
        tasks.of(prepared.task),
    )

    model = bento_model.load_file(
        layout["models"]["served"] / served.model_file, served.model_sha256, tasks.of(prepared.task)
    )
    if args.batch:
        batch = datasets.read_table(args.batch, prepared)
        if traffic.is_scored(batch.columns):
            log.info(
                "%s is tabpipe predict's output: its answers are taken as %s's, not predicted again",
                args.batch,
                served.tag,
            )
            window = traffic.from_scored(batch, model, prepared, served.identity, str(args.batch))
        else:
            log.info("predicting %s with %s", args.batch, served.tag)
            window = traffic.from_batch(batch, model, prepared, str(args.batch))
    else:
        log_path = args.log or prediction_log.location(params.section(settings.Serve).prediction_log, dict(os.environ))
        if log_path is None:
            raise PipelineError("monitor: no prediction log configured; pass --log or --batch")
        log.info("reading the prediction log %s", log_path)
        last = None if args.after_id is not None else (args.last or rules.window)
        logged = prediction_log.read(log_path, after_id=args.after_id or 0, until_id=args.until_id, last=last)
        labels = datasets.read_table(args.labels, prepared) if args.labels else None
        window = traffic.from_log(logged, model, prepared, labels, str(args.labels))

    log.info(
        "drift of %d rows against %d reference rows, %d features (Evidently)",
        len(window.window),
        len(reference),
        len(prepared.features),
    )
    started = time.perf_counter()
    result = assess.assess(
        reference,
        window.window,
        prepared,
        rules,
        importance=assess.top_features(files.read_json(layout["plots"]["importance"])),
        gated=served.metrics,
        **window.labelled,
    )

    log.info("assessed in %.1f s; writing %s", time.perf_counter() - started, args.out)
    values = {**result.metrics, **window.unseen_summary()}
    files.write_json(args.out / "drift.json", {**values, "reasons": result.reasons, "model": served.identity})
    files.write_json(args.out / "metrics.json", values)
    files.write_with(args.out / "drift.html", lambda tmp: result.report.save_html(str(tmp)))
    prometheus.write(
        args.out / "drift.prom", prometheus.collect(values, rules, served.identity, served.metrics, time.time())
    )
    for column, kinds in window.unseen.items():
        found = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
        print(f"unseen: column '{column}': {found}", file=sys.stderr)
    for reason in result.reasons:
        print(f"retrain: {reason}", file=sys.stderr)
    state = "retrain advised" if result.retrain else "healthy"
    print(
        f"monitor: {result.metrics['rows']} rows ({window.unseen_rows} with values outside the schema's limits),"
        f" drift share {result.metrics['drift_share']}, {state}",
        file=sys.stderr,
    )
    return Checked(served.tag, result)
