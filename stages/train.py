"""Stage train: search every candidate with seeded cross-validation, refit the winner, track it all in MLflow."""

import argparse
from pathlib import Path

import joblib

from tabpipe import experiment, features, io
from tabpipe.errors import run_stage
from tabpipe.schema import Schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--preprocessor", type=Path, default=Path("models/preprocessor.joblib"))
    parser.add_argument("--model", type=Path, default=Path("models/model.joblib"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/train.json"))
    args = parser.parse_args()

    all_params = io.load_params(args.params)
    params, seed = io.section(all_params, "train"), int(io.section(all_params, "base")["seed"])
    schema = Schema.from_dict(io.read_json(args.prepared / "schema.json"))
    x, y = features.split_xy(io.read_parquet(args.prepared / "train.parquet"), schema)
    preprocessor = joblib.load(args.preprocessor)

    selection = experiment.select(params, all_params, schema.name, preprocessor, x, y, seed)

    io.write_with(args.model, lambda tmp: tmp.write_bytes(selection.blob))
    io.write_json(args.metrics, selection.metrics())


if __name__ == "__main__":
    run_stage(main)
