"""Stage ingest: load the dataset named in params.yaml, split it, write the splits and its schema."""

import argparse
from pathlib import Path

from tabpipe import datasets, io, split
from tabpipe.errors import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, default=Path("data/prepared"))
    args = parser.parse_args()

    params = io.load_params(args.params)
    data, base = io.section(params, "data"), io.section(params, "base")
    loaded = datasets.load(data, Path("."))
    frame = split.subsample(
        loaded.frame, loaded.schema, fraction=float(data.get("fraction", 1.0)), seed=int(base["seed"])
    )
    train, test = split.train_test(frame, loaded.schema, test_size=float(data["test_size"]), seed=int(base["seed"]))

    io.write_parquet(args.out / "train.parquet", train)
    io.write_parquet(args.out / "test.parquet", test)
    io.write_json(args.out / "schema.json", loaded.schema.to_dict())
    io.write_json(args.out / "source.json", {"dataset": data["dataset"], "source": loaded.source})


if __name__ == "__main__":
    run_stage(main)
