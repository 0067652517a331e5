"""Stage ingest: load the dataset named in params.yaml, split it, write the splits and its schema."""

from pathlib import Path

from tabpipe.core import files, settings, stage
from tabpipe.data import datasets


def main() -> None:
    args = stage.arguments(__doc__, "out")
    params = settings.read(args.params)
    data = params.section(settings.Data)

    prepared = datasets.prepare(data, params.seed, Path("."))

    files.write_parquet(args.out / "train.parquet", prepared.train)
    files.write_parquet(args.out / "test.parquet", prepared.test)
    files.write_json(args.out / "schema.json", prepared.schema.to_dict())
    files.write_json(args.out / "source.json", {"dataset": data.dataset, "source": prepared.source})


if __name__ == "__main__":
    stage.run(main)
