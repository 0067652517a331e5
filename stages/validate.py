"""Stage validate: schema checks on both splits and Evidently drift between them; fails the pipeline on problems."""

from tabpipe.core import files, settings, stage
from tabpipe.core.errors import PipelineError
from tabpipe.data import schema, validation


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "metrics", "report")
    limits = settings.read(args.params).section(settings.Validate)
    prepared = schema.read(args.prepared / "schema.json")
    splits = {
        str(args.prepared / f"{name}.parquet"): files.read_parquet(args.prepared / f"{name}.parquet")
        for name in ("train", "test")
    }

    outcome = validation.validate(splits, prepared, limits)

    files.write_json(args.metrics, outcome.metrics)
    if outcome.report is not None:
        files.write_with(args.report, lambda tmp: outcome.report.save_html(str(tmp)))
    if not outcome.passed:
        raise PipelineError("\n".join(outcome.failures))


if __name__ == "__main__":
    stage.run(main)
