"""Stage ingest: load the dataset named in params.yaml, split it, write the splits and its schema."""

from pathlib import Path

from tabpipe.core import settings, stage
from tabpipe.data import datasets, prepared


def main() -> None:
    args = stage.arguments(__doc__, "raw", "out")
    params = settings.read(args.params)
    data = params.section(settings.Data)

    splits = datasets.prepare(data, params.seed, Path("."), args.raw)

    prepared.write(args.out, splits, data.dataset)


if __name__ == "__main__":
    stage.run(main)
