"""Stage featurize: build the preprocessor from the schema and fit it on the training split only."""

import joblib

from tabpipe.core import files, settings, stage
from tabpipe.data import prepared
from tabpipe.model import features


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "out", "metrics")
    featurize = settings.read(args.params).section(settings.Featurize)
    data_schema = prepared.read_schema(args.prepared)
    x, _ = features.split_xy(prepared.read_split(args.prepared, "train"), data_schema)

    preprocessor = features.preprocessor(data_schema, featurize).fit(x)

    files.write_with(args.out, lambda tmp: joblib.dump(preprocessor, tmp))
    files.write_json(args.metrics, features.summary(data_schema, preprocessor))


if __name__ == "__main__":
    stage.run(main)
