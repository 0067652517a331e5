"""Stage train: search every candidate with seeded cross-validation and refit the winner, in an MLflow run."""

import joblib

from tabpipe.core import files, hashing, settings, stage
from tabpipe.data import prepared
from tabpipe.model import features, fingerprint, training
from tabpipe.task import tasks
from tabpipe.tracking import runs


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "preprocessor", "model", "metrics")
    params = settings.read(args.params)
    data_schema = prepared.read_schema(args.prepared)
    task = tasks.of(data_schema.task)
    train = training.for_task(params.section(settings.Train), task)
    rows = prepared.read_split(args.prepared, "train")
    x, y = features.split_xy(rows, data_schema)

    with runs.training_run(train, params.seed, hashing.params_hash(params.raw), data_schema.name) as run:
        preprocessor = joblib.load(args.preprocessor)
        trained = training.train(
            train,
            params.seed,
            preprocessor,
            x,
            y,
            fingerprint=fingerprint.of_rows(rows, data_schema),
            task=task,
            decision=params.section(settings.Decision),
        )
        run.record(trained)
    run.log_winner(trained, x)

    files.write_with(args.model, lambda tmp: tmp.write_bytes(trained.blob))
    files.write_json(args.metrics, trained.summary)


if __name__ == "__main__":
    stage.run(main)
