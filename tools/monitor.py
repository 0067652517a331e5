"""Monitor the served model: drift of logged traffic (or a batch file) against the reference, and a retrain decision.

    python -m tools.monitor                                 # the newest monitor.window logged rows
    python -m tools.monitor --labels truth.csv              # plus metrics on rows whose truth is known
    python -m tools.monitor --batch new.csv                 # a file of rows instead (the model predicts them)

Writes <out>/drift.json (everything), <out>/drift.html (Evidently), <out>/drift.prom (Prometheus
textfile) and a flat metrics file. Exit status: 0 keep serving, 3 retrain advised, 1 error.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from tabpipe import datasets, evaluation, io, monitoring, predlog, serving
from tabpipe.errors import PipelineError, run_stage
from tabpipe.schema import Schema


def read_table(path: Path, schema: Schema) -> Any:
    """A batch or labels file, cleaned and typed like training data."""
    if path.suffix == ".parquet":
        return datasets.coerce(io.read_parquet(path), schema)
    return datasets.coerce(
        datasets.clean(datasets.read_csv(path, schema.missing_markers), schema.missing_markers), schema
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--predictions", type=Path, default=Path("data/predictions/test.parquet"))
    parser.add_argument("--importance", type=Path, default=Path("metrics/plots/importance.json"))
    parser.add_argument("--manifest", type=Path, default=Path("models/serving.json"))
    parser.add_argument("--model", type=Path, default=Path("models/model.joblib"))
    parser.add_argument(
        "--log", type=Path, help="prediction log (default: TABPIPE_PREDICTION_LOG or serve.prediction_log)"
    )
    parser.add_argument("--last", type=int, help="rows from the end of the log (default: monitor.window)")
    parser.add_argument("--after-id", type=int, help="only log rows with a larger id")
    parser.add_argument("--until-id", type=int, help="only log rows up to this id")
    parser.add_argument("--labels", type=Path, help="CSV or parquet: request_id, row and the target column")
    parser.add_argument("--batch", type=Path, help="CSV or parquet of rows to check instead of the log")
    parser.add_argument("--out", type=Path, default=Path("reports/monitor"))
    parser.add_argument("--metrics", type=Path, default=Path("reports/monitor/metrics.json"))
    args = parser.parse_args()

    params = io.load_params(args.params)
    settings = monitoring.MonitorSettings.from_params(io.section(params, "monitor"))
    manifest = serving.read_manifest(args.manifest)
    schema = Schema.from_dict(io.read_json(args.prepared / "schema.json"))
    reference = monitoring.reference_frame(
        io.read_parquet(args.prepared / "test.parquet"), io.read_parquet(args.predictions)
    )
    importance = monitoring.top_features(io.read_json(args.importance))
    classes = list(schema.classes)

    truth = None
    if args.batch:
        batch = read_table(args.batch, schema)
        model = serving.load_file(args.model, manifest["model_sha256"])
        labels, proba = evaluation.predict(model, batch[schema.feature_names])
        classes = [str(c) for c in model.classes_]
        window = batch[schema.feature_names].assign(**{monitoring.PREDICTION: labels.astype(str)})
        if schema.target in batch.columns:
            truth = batch[schema.target]
    else:
        log_path = args.log or predlog.location(io.section(params, "serve").get("prediction_log"), dict(os.environ))
        if log_path is None:
            raise PipelineError("monitor: no prediction log configured; pass --log or --batch")
        last = None if args.after_id is not None else (args.last or int(io.section(params, "monitor")["window"]))
        logged = predlog.read(log_path, after_id=args.after_id or 0, until_id=args.until_id, last=last)
        window = monitoring.window_from_log(logged, schema)
        proba = monitoring.logged_probabilities(logged, classes)
        if args.labels:
            truth = monitoring.join_labels(logged, read_table(args.labels, schema), schema.target, str(args.labels))

    labelled = {}
    if truth is not None:
        known = truth.notna().to_numpy()
        if not known.any():
            raise PipelineError(f"{args.labels or args.batch}: no row of the window has a label")
        labelled = {"truth": truth[known].astype(str).to_numpy(), "proba": proba[known], "classes": classes}
    assessment = monitoring.assess(
        reference, window, schema, settings, importance=importance, gated=manifest["metrics"], **labelled
    )

    identity = {"name": manifest["name"], "version": manifest["tag"].split(":", 1)[1]}
    io.write_json(args.out / "drift.json", {**assessment.metrics, "reasons": assessment.reasons, "model": identity})
    io.write_json(args.metrics, assessment.metrics)
    io.write_with(args.out / "drift.html", lambda tmp: assessment.report.save_html(str(tmp)))
    io.write_text(
        args.out / "drift.prom", monitoring.prometheus_text(assessment.metrics, settings, identity, time.time())
    )
    for reason in assessment.reasons:
        print(f"retrain: {reason}", file=sys.stderr)
    print(
        f"monitor: {assessment.metrics['rows']} rows, drift share {assessment.metrics['drift_share']},"
        f" {'retrain advised' if assessment.retrain else 'healthy'}",
        file=sys.stderr,
    )
    sys.exit(assessment.exit_code)


if __name__ == "__main__":
    run_stage(main)
