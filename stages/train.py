"""Stage train: search every candidate with seeded cross-validation, refit the winner, track it all in MLflow."""

import joblib

from tabpipe.core import files, settings, stage
from tabpipe.data import schema
from tabpipe.model import features
from tabpipe.tracking import runs


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "preprocessor", "model", "metrics")
    params = settings.read(args.params)
    prepared = schema.read(args.prepared / "schema.json")
    x, y = features.split_xy(files.read_parquet(args.prepared / "train.parquet"), prepared)

    trained = runs.train(
        params.section(settings.Train), params.seed, params.raw, prepared.name, joblib.load(args.preprocessor), x, y
    )

    files.write_with(args.model, lambda tmp: tmp.write_bytes(trained.blob))
    files.write_json(args.metrics, trained.summary)


if __name__ == "__main__":
    stage.run(main)
