"""Stage ingest: load the dataset named in params.yaml, split it, write the splits and its schema, and count
what a raw table set aside (rows without a target, columns that are not features)."""

from pathlib import Path

from tabpipe.core import files, settings, stage
from tabpipe.data import datasets, prepared


def main() -> None:
    args = stage.arguments(__doc__, "raw", "out", "metrics")
    params = settings.read(args.params)
    data = params.section(settings.Data)

    splits = datasets.prepare(data, params.seed, Path("."), args.raw)

    prepared.write(args.out, splits, data.dataset)
    files.write_json(args.metrics, splits.summary)


if __name__ == "__main__":
    stage.run(main)
