"""Stage evaluate: test-set metrics, plot data and predictions; the same figures go to the winner's MLflow run."""

import argparse
from pathlib import Path

import joblib

from tabpipe import evaluation, experiment, features, io, tracking
from tabpipe.errors import run_stage
from tabpipe.schema import Schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--model", type=Path, default=Path("models/model.joblib"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/evaluate.json"))
    parser.add_argument("--plots", type=Path, default=Path("metrics/plots"))
    parser.add_argument("--predictions", type=Path, default=Path("data/predictions/test.parquet"))
    args = parser.parse_args()

    all_params = io.load_params(args.params)
    params, seed = io.section(all_params, "evaluate"), int(io.section(all_params, "base")["seed"])
    schema = Schema.from_dict(io.read_json(args.prepared / "schema.json"))
    x, y = features.split_xy(io.read_parquet(args.prepared / "test.parquet"), schema)
    model = joblib.load(args.model)

    labels, proba = evaluation.predict(model, x)
    classes = [str(c) for c in model.classes_]
    metrics = evaluation.metrics(y, proba, classes)
    curves = {"roc": evaluation.roc_points(y, proba, classes), "pr": evaluation.pr_points(y, proba, classes)}
    importance = evaluation.importance(
        model, x, y, scoring=params["importance_scoring"], repeats=int(params["importance_repeats"]), seed=seed
    )

    io.write_json(args.metrics, metrics)
    io.write_json(args.plots / "roc.json", curves["roc"])
    io.write_json(args.plots / "pr.json", curves["pr"])
    io.write_json(args.plots / "importance.json", importance)
    confusion = evaluation.confusion_rows(y, labels)
    io.write_with(args.plots / "confusion.csv", lambda tmp: confusion.to_csv(tmp, index=False))
    io.write_parquet(args.predictions, evaluation.predictions(x, y, labels, proba, classes))
    experiment.record_evaluation(tracking.file_sha256(args.model), metrics, y, labels, classes, curves, importance)


if __name__ == "__main__":
    run_stage(main)
