"""Training and evaluation recorded in MLflow: one parent run per train stage, one child per candidate.

The winner's run also holds the model, an MLflow 3 logged model (with signature and input
example); the run is tagged with the SHA-256 of the model file DVC stores, which is how evaluate
and package find it again. Test metrics are logged against that logged model, with the test
split as the dataset they were measured on. The git commit, user and entry point are MLflow's own
`mlflow.source.*` tags; nothing here repeats them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabpipe.core.hashing import bytes_sha256
from tabpipe.tracking import backend
from tabpipe.tracking.keys import MODEL_HASH_TAG, flatten, metric_key

if TYPE_CHECKING:
    from tabpipe.core.settings import Train
    from tabpipe.model.evaluation import Evaluation
    from tabpipe.model.training import Trained

log = logging.getLogger("train")
PIPELINE = "model"  # the winner run's logged models: the scikit-learn pipeline (registered) ...
COMPILED = "compiled"  # ... and the ONNX model that serves it (logged by package)


class TrainingRun:
    """The train stage's parent run, open while training runs; `record` adds each candidate's child run."""

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags
        self.winner_run_id = ""

    def record(self, trained: Trained) -> None:
        """One child run per candidate (its best configuration, CV scores and grid); the winner tagged."""
        import mlflow

        run_ids = {}
        for result in trained.results:
            with mlflow.start_run(
                run_name=result.name, nested=True, tags={**self.tags, "candidate": result.name}
            ) as run:
                mlflow.log_params({"estimator": result.spec.estimator, **result.spec.fixed, **result.best_params})
                mlflow.log_metrics(
                    {
                        "cv_mean": result.cv_mean,
                        "cv_std": result.cv_std,
                        "cv_rows": result.rows,
                        "fit_seconds": result.fit_seconds,
                    }
                )
                mlflow.log_dict({"scoring": trained.scoring, "grid": result.table}, "cv_results.json")
            run_ids[result.name] = run.info.run_id
        self.winner_run_id = run_ids[trained.winner.name]
        mlflow.log_metric("best_cv_score", trained.winner.cv_mean)
        mlflow.set_tags({"winner": trained.winner.name, "winner_run_id": self.winner_run_id})

    def log_winner(self, trained: Trained, x: Any) -> None:
        """The winner's model into its candidate run, tagged with the model file's hash (how evaluate finds it)."""
        import mlflow

        log.info("logging the model to MLflow")
        with mlflow.start_run(run_id=self.winner_run_id):
            mlflow.set_tags({"winner": "true", MODEL_HASH_TAG: bytes_sha256(trained.blob)})
            log_model(trained.model, x)


@contextlib.contextmanager
def training_run(settings: Train, seed: int, params_digest: str, dataset: str) -> Iterator[TrainingRun]:
    """The parent run that training runs inside: the experiment <experiment>-<dataset>, the params and tags."""
    import mlflow

    backend.use_experiment(f"{settings.experiment}-{dataset}")
    tags = run_tags(dataset, params_digest)
    with mlflow.start_run(run_name="train", tags=tags):
        mlflow.log_params(flatten({"train": settings.model_dump(), "seed": seed}))
        yield TrainingRun(tags)


def record_evaluation(model_sha256: str, test: Any, target: str, test_file: Path, evaluation: Evaluation) -> None:
    """Log test metrics against the winner's logged model (and run), with the test split as their dataset;
    the confusion matrix and curves go to the run. A warning, not an error, if the store lacks the model."""
    import mlflow
    import pandas as pd

    from tabpipe.model import figures, slices

    warn = logging.getLogger("evaluate").warning
    run_id = run_for_model(model_sha256)
    if run_id is None:
        warn(
            "no MLflow run holds this model (store %s); test metrics were not logged to MLflow", backend.tracking_uri()
        )
        return
    model_id = logged_model_of(run_id)
    if model_id is None:
        warn("MLflow run %s has no logged model; test metrics were not logged to MLflow", run_id)
        return
    flat = {f"test_{metric_key(k)}": v for k, v in flatten(evaluation.metrics).items()}
    curves = evaluation.curves
    with warnings.catch_warnings():  # MLflow 3.17 registers its local-file source twice and warns that it is ambiguous
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        dataset = mlflow.data.from_pandas(
            test, source=str(test_file), targets=target, name="test", digest=file_md5(test_file)
        )
    y_true = evaluation.predictions["actual"].to_numpy()
    with mlflow.start_run(run_id=run_id):
        # log_input first: log_metrics(dataset=) logs the dataset again without the context tag, and
        # MLflow keeps only the first input per dataset and run.
        mlflow.log_input(dataset, context="test")
        mlflow.log_metrics(flat, model_id=model_id, dataset=dataset)
        if len(evaluation.confusion):
            confusion = figures.confusion(y_true, evaluation.predicted.labels, evaluation.predicted.names)
            mlflow.log_figure(confusion, "confusion_matrix.png")
        for plot, points in curves.items():  # each task fills its own plots
            if points and plot in figures.PLOT_FIGURES:
                name, figure = figures.of_plot(plot, curves)
                mlflow.log_figure(figure, name)
        mlflow.log_dict({"permutation_importance": evaluation.importance}, "permutation_importance.json")
        mlflow.log_dict({"contributions": curves["contributions"]}, "contributions.json")
        if evaluation.slices:  # evaluate.slices: one row per slice, with its column, metrics and interval
            mlflow.log_table(pd.DataFrame(slices.table(evaluation.slices)), "slices.json")


def file_md5(path: Path) -> str:
    """A file's MD5, the digest DVC keeps for it (in the prepared folder's .dir manifest in its cache)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_tags(dataset: str, params_digest: str) -> dict[str, str]:
    """Tags MLflow does not record itself: the dataset, a hash of params.yaml, and the DVC experiment."""
    tags = {"dataset": dataset, "params_hash": params_digest}
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("DVC_STAGE"):
        tags["dvc_stage"] = os.environ["DVC_STAGE"]
    return tags


def requirements(model: Any) -> list[str]:
    """Pinned requirements for a logged model, from what is installed (MLflow's inference costs seconds).

    An estimator from outside scikit-learn (LightGBM) needs its library to unpickle.
    """
    from importlib.metadata import version

    names = ["scikit-learn", "pandas", "numpy", "scipy", "cloudpickle"]
    library = type(model.steps[-1][1]).__module__.split(".")[0]
    if library != "sklearn":
        names.append(library)
    return [f"{name}=={version(name)}" for name in names]


def skip_module_scan() -> None:
    """Let MLflow check our pinned requirements without first mapping every installed module to its package.

    Logging a model checks its requirements against what is installed, and MLflow starts by
    mapping all installed distributions' modules (importlib_metadata.packages_distributions: about
    0.4 s here, in train and again in package). Our requirements are distribution names pinned
    from importlib.metadata (`requirements`), which MLflow looks up directly when the map is
    empty, so the check still runs and still warns on a mismatch. MLflow keeps the map in a
    private module global (mlflow 3.17, pinned); test_tracking_lifecycle.py covers the calls.
    """
    from mlflow.utils import requirements_utils

    if requirements_utils._MODULES_TO_PACKAGES is None:
        requirements_utils._MODULES_TO_PACKAGES = {}


def log_model(model: Any, x: Any) -> None:
    """Log the sklearn pipeline with its signature and an input example.

    cloudpickle, not MLflow's default skops: skops refuses forests, boosting and OneHotEncoder
    pipelines as untrusted types.
    """
    import mlflow
    from mlflow.models import infer_signature

    example = x.head(5)
    # `mlflow models serve` and pyfunc then answer class probabilities, as the service does; a regressor its values.
    method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
    skip_module_scan()
    mlflow.sklearn.log_model(
        model,
        name=PIPELINE,
        pyfunc_predict_fn=method,
        signature=infer_signature(example, getattr(model, method)(example)),
        input_example=example,
        serialization_format="cloudpickle",
        pip_requirements=requirements(model),
    )


def log_compiled(model_sha256: str, served: Path) -> str | None:
    """Log the served ONNX model (MLflow's onnx flavor) to the winner run of this pipeline; its model id.

    Idempotent: a run that already holds its compiled model logs nothing new. A scikit-learn
    fallback is the run's own model already, so nothing is logged for it (None).
    """
    import mlflow

    run_id = run_for_model(model_sha256)
    if served.suffix != ".onnx" or run_id is None:
        return None
    experiment_id = backend.client().get_run(run_id).info.experiment_id
    logged = mlflow.search_logged_models(
        experiment_ids=[experiment_id],
        filter_string=f"source_run_id = '{run_id}' and name = '{COMPILED}'",
        output_format="list",
    )
    if logged:
        return logged[0].model_id
    from importlib.metadata import version

    import onnx

    skip_module_scan()
    with mlflow.start_run(run_id=run_id):
        info = mlflow.onnx.log_model(
            onnx.load(served),
            name=COMPILED,
            pip_requirements=[f"{name}=={version(name)}" for name in ("onnx", "onnxruntime", "numpy")],
            save_as_external_data=False,
        )
    return info.model_id


def run_for_model(model_sha256: str) -> str | None:
    """The newest winner run whose model file has this hash (how evaluate finds train's winner)."""
    import mlflow

    backend.connect()
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`{MODEL_HASH_TAG}` = '{model_sha256}' and tags.winner = 'true'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def logged_model_of(run_id: str) -> str | None:
    """The id of the pipeline a run logged (its `model_id`), or None. The run's compiled model is another."""
    import mlflow

    experiment_id = backend.client().get_run(run_id).info.experiment_id
    logged = mlflow.search_logged_models(
        experiment_ids=[experiment_id],
        filter_string=f"source_run_id = '{run_id}' and name = '{PIPELINE}'",
        output_format="list",
    )
    return logged[0].model_id if logged else None
