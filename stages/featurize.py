"""Stage featurize: build the preprocessor from the schema and fit it on the training split only."""

import argparse
from pathlib import Path

import joblib

from tabpipe import features, io
from tabpipe.errors import run_stage
from tabpipe.schema import Schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("models/preprocessor.joblib"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/features.json"))
    args = parser.parse_args()

    params = io.section(io.load_params(args.params), "featurize")
    schema = Schema.from_dict(io.read_json(args.prepared / "schema.json"))
    x, _ = features.split_xy(io.read_parquet(args.prepared / "train.parquet"), schema)
    preprocessor = features.preprocessor(schema, params).fit(x)

    io.write_with(args.out, lambda tmp: joblib.dump(preprocessor, tmp))
    names = list(preprocessor.get_feature_names_out())
    io.write_json(args.metrics, {"inputs": len(schema.features), "outputs": len(names)})


if __name__ == "__main__":
    run_stage(main)
