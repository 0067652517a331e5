"""Stage train: search every candidate with seeded cross-validation and refit the winner, in an MLflow run."""

import joblib

from tabpipe.core import files, hashing, settings, stage
from tabpipe.data import prepared
from tabpipe.model import features, training
from tabpipe.tracking import runs


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "preprocessor", "model", "metrics")
    params = settings.read(args.params)
    data_schema = prepared.read_schema(args.prepared)
    train = training.for_task(params.section(settings.Train), data_schema.task)
    x, y = features.split_xy(prepared.read_split(args.prepared, "train"), data_schema)

    with runs.training_run(train, params.seed, hashing.params_hash(params.raw), data_schema.name) as run:
        trained = training.train(train, params.seed, joblib.load(args.preprocessor), x, y)
        run.record(trained)
    run.log_winner(trained, x)

    files.write_with(args.model, lambda tmp: tmp.write_bytes(trained.blob))
    files.write_json(args.metrics, trained.summary)


if __name__ == "__main__":
    stage.run(main)
