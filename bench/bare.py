"""The "one train.py" a user would otherwise write: the pipeline's ML work in one process, none of the pipeline.

Same data, split, preprocessing, candidate grids, cross-validation, refit, test metrics and
permutation importance as `dvc repro` with the same params.yaml; no DVC, no validation report,
no MLflow, no gate, no registry, no BentoML. bench/pipeline.py times it beside `dvc repro`.

    python -m bench.bare --params params.yaml
"""

import argparse
import json
import time
from pathlib import Path

from tabpipe import datasets, evaluation, features, io, split, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--root", type=Path, default=Path("."))
    args = parser.parse_args()
    started = time.perf_counter()
    params = io.load_params(args.params)
    data, train_params, seed = params["data"], params["train"], int(params["base"]["seed"])
    loaded = datasets.load(data, args.root)
    frame = split.subsample(loaded.frame, loaded.schema, fraction=float(data.get("fraction", 1.0)), seed=seed)
    train, test = split.train_test(frame, loaded.schema, test_size=float(data["test_size"]), seed=seed)
    x, y = features.split_xy(train, loaded.schema)
    preprocessor = features.preprocessor(loaded.schema, params["featurize"])
    settings = {
        "scoring": train_params["scoring"],
        "folds": int(train_params["cv_folds"]),
        "seed": seed,
        "n_jobs": int(train_params["n_jobs"]),
    }
    results = [training.search(c, preprocessor, x, y, **settings) for c in training.candidates(train_params)]
    winner = training.select(results)
    model = training.refit(winner, preprocessor.fit(x), x, y, seed)
    x_test, y_test = features.split_xy(test, loaded.schema)
    _, proba = evaluation.predict(model, x_test)
    metrics = evaluation.metrics(y_test, proba, [str(c) for c in model.classes_])
    evaluation.importance(
        model,
        x_test,
        y_test,
        scoring=params["evaluate"]["importance_scoring"],
        repeats=int(params["evaluate"]["importance_repeats"]),
        seed=seed,
    )
    seconds = time.perf_counter() - started
    print(json.dumps({"winner": winner.candidate.name, "roc_auc": metrics["roc_auc"], "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
