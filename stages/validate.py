"""Stage validate: schema checks on both splits and Evidently drift between them; fails the pipeline on problems."""

import logging
import time

from tabpipe.core import files, settings, stage
from tabpipe.core.errors import PipelineError
from tabpipe.data import prepared, validation

log = logging.getLogger("validate")


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "metrics", "report")
    params = settings.read(args.params)
    limits = params.section(settings.Validate)
    data_schema = prepared.read_schema(args.prepared)
    splits = {
        str(prepared.split_path(args.prepared, name)): prepared.read_split(args.prepared, name)
        for name in prepared.SPLITS
    }

    outcome = validation.validate(splits, data_schema, limits, seed=params.seed)

    files.write_json(args.metrics, outcome.metrics)
    if outcome.report is not None:
        started = time.perf_counter()
        files.write_with(args.report, lambda tmp: outcome.report.save_html(str(tmp)))
        log.info("HTML report written to %s in %.1f s", args.report, time.perf_counter() - started)
    if not outcome.passed:
        raise PipelineError("\n".join(outcome.failures))


if __name__ == "__main__":
    stage.run(main)
