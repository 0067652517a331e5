"""Stage featurize: build the preprocessor from the schema and fit it on the training split only."""

import joblib

from tabpipe.core import files, settings, stage
from tabpipe.data import schema
from tabpipe.model import features


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "out", "metrics")
    featurize = settings.read(args.params).section(settings.Featurize)
    prepared = schema.read(args.prepared / "schema.json")
    x, _ = features.split_xy(files.read_parquet(args.prepared / "train.parquet"), prepared)

    preprocessor = features.preprocessor(prepared, featurize).fit(x)

    files.write_with(args.out, lambda tmp: joblib.dump(preprocessor, tmp))
    files.write_json(args.metrics, features.summary(prepared, preprocessor))


if __name__ == "__main__":
    stage.run(main)
