"""Stage validate: schema checks on both splits and Evidently drift between them; fails the pipeline on problems."""

import argparse
from pathlib import Path

from tabpipe import io, validation
from tabpipe.errors import PipelineError, run_stage
from tabpipe.schema import Schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/validation.json"))
    parser.add_argument("--report", type=Path, default=Path("reports/validation.html"))
    args = parser.parse_args()

    params = io.section(io.load_params(args.params), "validate")
    schema = Schema.from_dict(io.read_json(args.prepared / "schema.json"))
    splits = {
        str(args.prepared / f"{name}.parquet"): io.read_parquet(args.prepared / f"{name}.parquet")
        for name in ("train", "test")
    }
    outcome = validation.validate(splits, schema, params)

    io.write_json(args.metrics, outcome.metrics)
    if outcome.report is not None:
        io.write_with(args.report, lambda tmp: outcome.report.save_html(str(tmp)))
    if not outcome.passed:
        raise PipelineError("\n".join(outcome.failures))


if __name__ == "__main__":
    run_stage(main)
