"""Model selection tracked in MLflow: one parent run per train stage, one child run per candidate.

The winner's run also holds the model (with signature and input example) and is tagged with the
SHA-256 of the model file DVC stores, which is how later stages find it again.
"""

from __future__ import annotations

import io as bytes_io
from dataclasses import dataclass
from typing import Any

from tabpipe import tracking, training


@dataclass(frozen=True)
class Selection:
    model: Any
    blob: bytes
    sha256: str
    winner: training.SearchResult
    results: list[training.SearchResult]
    run_id: str

    def metrics(self) -> dict[str, Any]:
        """Deterministic summary for metrics/train.json (fit times live in MLflow only)."""
        return {
            "winner": self.winner.candidate.name,
            "cv_score": round(self.winner.cv_mean, 6),
            "cv": {r.candidate.name: round(r.cv_mean, 6) for r in self.results},
        }


def select(
    params: dict[str, Any], all_params: dict[str, Any], dataset: str, preprocessor: Any, x: Any, y: Any, seed: int
) -> Selection:
    import mlflow

    settings = {
        "scoring": params["scoring"],
        "folds": int(params["cv_folds"]),
        "seed": seed,
        "n_jobs": int(params["n_jobs"]),
    }
    tracking.use_experiment(f"{params['experiment']}-{dataset}")
    tags = tracking.run_tags(dataset, all_params)
    results: list[training.SearchResult] = []
    run_ids: dict[str, str] = {}
    with mlflow.start_run(run_name="train", tags=tags):
        mlflow.log_params(tracking.flatten({"train": params, "seed": seed}))
        for candidate in training.candidates(params):
            with mlflow.start_run(
                run_name=candidate.name, nested=True, tags={**tags, "candidate": candidate.name}
            ) as run:
                result = training.search(candidate, preprocessor, x, y, **settings)
                mlflow.log_params({"estimator": candidate.kind, **candidate.fixed, **result.best_params})
                mlflow.log_metrics(
                    {"cv_mean": result.cv_mean, "cv_std": result.cv_std, "fit_seconds": result.fit_seconds}
                )
                mlflow.log_dict({"scoring": settings["scoring"], "grid": result.table}, "cv_results.json")
            results.append(result)
            run_ids[candidate.name] = run.info.run_id
        winner = training.select(results)
        model = training.refit(winner, preprocessor, x, y, seed)
        blob = serialize(model)
        sha256 = tracking.bytes_sha256(blob)
        mlflow.log_metric("best_cv_score", winner.cv_mean)
        mlflow.set_tags({"winner": winner.candidate.name, "winner_run_id": run_ids[winner.candidate.name]})
    run_id = run_ids[winner.candidate.name]
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"winner": "true", tracking.MODEL_HASH_TAG: sha256})
        tracking.log_model(model, x)
    return Selection(model, blob, sha256, winner, results, run_id)


def serialize(model: Any) -> bytes:
    """The model file's exact bytes (joblib), hashed before they are written."""
    import joblib

    buffer = bytes_io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def record_evaluation(
    model_sha256: str,
    metrics: dict[str, Any],
    y_true: Any,
    labels: Any,
    classes: list[str],
    curves: dict[str, list[dict[str, Any]]],
    importance: list[dict[str, Any]],
) -> str | None:
    """Log test metrics, the confusion matrix and curves to the winner's run; None if it is not in the store."""
    import logging

    import mlflow

    from tabpipe import figures

    run_id = tracking.run_for_model(model_sha256)
    if run_id is None:
        logging.getLogger("evaluate").warning(
            "no MLflow run holds this model (store %s); test metrics were not logged to MLflow", tracking.tracking_uri()
        )
        return None
    flat = {f"test_{tracking.metric_key(k)}": v for k, v in tracking.flatten(metrics).items()}
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(flat)
        mlflow.log_figure(figures.confusion(y_true, labels, classes), "confusion_matrix.png")
        mlflow.log_figure(figures.curve(curves["roc"], "fpr", "tpr", "ROC (test set)"), "roc_curve.png")
        mlflow.log_figure(
            figures.curve(curves["pr"], "recall", "precision", "Precision-recall (test set)"), "pr_curve.png"
        )
        mlflow.log_dict({"permutation_importance": importance}, "permutation_importance.json")
    return run_id
