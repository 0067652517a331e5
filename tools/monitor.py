"""Monitor the served model: drift of logged traffic (or a batch file) against the reference, and a retrain decision.

    python -m tools.monitor                                 # the newest monitor.window logged rows
    python -m tools.monitor --labels truth.csv              # plus metrics on rows whose truth is known
    python -m tools.monitor --batch new.csv                 # a file of rows instead (the model predicts them)

Writes <out>/drift.json (everything), <out>/drift.html (Evidently), <out>/drift.prom (Prometheus
textfile) and <out>/metrics.json (flat). Exit status: 0 keep serving, 3 retrain advised, 1 error.
The pipeline's files (test split, predictions, importance, manifest, model) are found through dvc.yaml.
"""

import argparse
import os
import sys
import time
from pathlib import Path

from tabpipe.core import files, settings, stage
from tabpipe.core.errors import PipelineError
from tabpipe.core.layout import paths
from tabpipe.data import datasets, schema
from tabpipe.monitor import assess, prometheus, traffic
from tabpipe.serve import manifest, predlog, store


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--log", type=Path, help="prediction log (default: TABPIPE_PREDICTION_LOG or serve.prediction_log)"
    )
    parser.add_argument("--last", type=int, help="rows from the end of the log (default: monitor.window)")
    parser.add_argument("--after-id", type=int, help="only log rows with a larger id")
    parser.add_argument("--until-id", type=int, help="only log rows up to this id")
    parser.add_argument("--labels", type=Path, help="CSV or parquet: request_id, row and the target column")
    parser.add_argument("--batch", type=Path, help="CSV or parquet of rows to check instead of the log")
    parser.add_argument("--out", type=Path, default=Path("reports/monitor"))
    return parser.parse_args()


def main() -> int:
    args = arguments()
    params = settings.read(args.params)
    rules = params.section(settings.Monitor)
    layout = paths()
    served = manifest.read(layout["models"]["serving"])
    prepared = schema.read(layout["data"]["prepared"] / "schema.json")
    reference = assess.reference_frame(
        files.read_parquet(layout["data"]["prepared"] / "test.parquet"),
        files.read_parquet(layout["data"]["predictions"]),
    )

    if args.batch:
        model = store.load_file(layout["models"]["served"] / served.model_file, served.model_sha256)
        window = traffic.from_batch(datasets.read_table(args.batch, prepared), model, prepared, str(args.batch))
    else:
        log_path = args.log or predlog.location(params.section(settings.Serve).prediction_log, dict(os.environ))
        if log_path is None:
            raise PipelineError("monitor: no prediction log configured; pass --log or --batch")
        last = None if args.after_id is not None else (args.last or rules.window)
        logged = predlog.read(log_path, after_id=args.after_id or 0, until_id=args.until_id, last=last)
        labels = datasets.read_table(args.labels, prepared) if args.labels else None
        window = traffic.from_log(logged, prepared, labels, str(args.labels))

    result = assess.assess(
        reference,
        window.window,
        prepared,
        rules,
        importance=assess.top_features(files.read_json(layout["plots"]["importance"])),
        gated=served.metrics,
        **window.labelled,
    )

    files.write_json(args.out / "drift.json", {**result.metrics, "reasons": result.reasons, "model": served.identity})
    files.write_json(args.out / "metrics.json", result.metrics)
    files.write_with(args.out / "drift.html", lambda tmp: result.report.save_html(str(tmp)))
    prometheus.write(
        args.out / "drift.prom", prometheus.collect(result.metrics, rules, served.identity, served.metrics, time.time())
    )
    for reason in result.reasons:
        print(f"retrain: {reason}", file=sys.stderr)
    state = "retrain advised" if result.retrain else "healthy"
    print(
        f"monitor: {result.metrics['rows']} rows, drift share {result.metrics['drift_share']}, {state}", file=sys.stderr
    )
    return result.exit_code


if __name__ == "__main__":
    stage.run(main)
