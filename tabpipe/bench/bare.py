"""The "one train.py" a user would otherwise write: the pipeline's ML work in one process, none of the pipeline.

Same data, split, preprocessing, candidate search and cross-validation, refit, test metrics and
permutation importance as `dvc repro` with the same params.yaml; no DVC, no validation report,
no MLflow, no gate, no registry, no BentoML. `tabpipe bench pipeline` times it beside `dvc repro`.

    tabpipe bench bare --params params.yaml
"""

import json
import time
from pathlib import Path

from tabpipe.core import settings
from tabpipe.core.layout import paths
from tabpipe.data import datasets
from tabpipe.model import evaluation, features, search, training
from tabpipe.task import tasks


def run(params_path: Path, root: Path) -> str:
    """Train and evaluate as the pipeline does, in this process; one JSON line with the winner and the time."""
    started = time.perf_counter()
    params = settings.read(params_path)
    train_settings, seed = params.section(settings.Train), params.seed
    prepared = datasets.prepare(params.section(settings.Data), seed, root, paths(root)["data"]["raw"])
    x, y = features.split_xy(prepared.train, prepared.schema)
    preprocessor = features.preprocessor(prepared.schema, params.section(settings.Featurize))
    results = search.search(train_settings.candidates, preprocessor, x, y, train_settings, seed)
    winner = search.best(results)
    model = training.refit(winner, preprocessor.fit(x), x, y, seed)
    x_test, y_test = features.split_xy(prepared.test, prepared.schema)
    task, rules = tasks.of(prepared.schema.task), params.section(settings.Evaluate).for_task(prepared.schema.task)
    result = evaluation.evaluate(
        model, prepared.test, x_test, y_test, rules, seed, task, trained=model, schema=prepared.schema
    )
    seconds = time.perf_counter() - started
    return json.dumps({"winner": winner.name, "roc_auc": result.metrics["roc_auc"], "seconds": round(seconds, 2)})
