"""BentoML service for the gated model: POST /predict answers labels and class probabilities.

Run from the repository root after `dvc repro`:  bentoml serve
"""

import gc
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import bentoml
from pydantic import Field

from tabpipe import evaluation, predlog, serving
from tabpipe.errors import PipelineError
from tabpipe.middleware import RequestGuard
from tabpipe.schema import Schema

try:
    MANIFEST = serving.read_manifest(Path("models/serving.json"))
    TAG = serving.ensure_model(MANIFEST, Path("models/model.joblib"))
except PipelineError as error:  # nothing to serve: one line and a non-zero exit, not a traceback
    raise SystemExit(f"error: {error}") from None
SCHEMA = Schema.from_dict(MANIFEST["schema"])
LIMITS = MANIFEST["serve"]
LOG_PATH = predlog.location(LIMITS.get("prediction_log"), dict(os.environ))
Row = serving.row_model(SCHEMA)
Rows = Annotated[list[Row], Field(min_length=1, max_length=int(LIMITS["max_rows"]))]

log = logging.getLogger("tabpipe.service")
predicted = bentoml.metrics.Counter(
    name="tabpipe_predictions", documentation="Rows predicted, by predicted class", labelnames=["label"]
)
rejected = bentoml.metrics.Counter(
    name="tabpipe_rejected_requests", documentation="Requests refused as invalid, by status", labelnames=["status"]
)
log_failures = bentoml.metrics.Counter(
    name="tabpipe_prediction_log_failures", documentation="Answered requests whose rows could not be logged"
)


@bentoml.service(
    name="tabpipe",
    traffic={"timeout": 30},
    workers=int(LIMITS.get("workers", 1)),
    # Every request is already counted in /metrics and every row in the prediction log.
    logging={"access": {"enabled": bool(LIMITS.get("access_log", False))}},
)
class Classifier:
    bento_model = bentoml.models.BentoModel(TAG)

    def __init__(self) -> None:
        self.model: Any = None
        self.classes: list[str] = []
        self.identity = {"name": MANIFEST["name"], "version": TAG.split(":", 1)[1]}
        self.log: predlog.PredictionLog | None = None
        try:
            self.model = serving.load_model(self.bento_model)
            self.classes = [str(c) for c in self.model.classes_]
            self.log = predlog.PredictionLog(LOG_PATH) if LOG_PATH else None
        except Exception as error:  # a corrupt model or unwritable log: up and not ready, not crash-looping
            log.error("not ready: model %s: %s", TAG, error)
            self.model = None
        # Move everything allocated so far out of the collector's way: no GC pauses on the request path.
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.model is not None

    @bentoml.api(route="/predict")
    def predict(self, rows: Rows) -> dict[str, Any]:
        """Predict a list of rows; each answer has the label and the probability of every class."""
        if self.model is None:
            raise bentoml.exceptions.ServiceUnavailable("model not loaded")
        records = serving.records(rows)
        labels, proba = evaluation.predict(self.model, serving.rows_frame(records, SCHEMA))
        for label in labels:
            predicted.labels(label=str(label)).inc()
        request_id = None
        if self.log is not None:
            try:
                request_id = self.log.append(records, labels, proba, self.classes, self.identity)
            except Exception as error:  # the answer is still right; the monitor sees the gap in the counter
                log_failures.inc()
                log.error("prediction log %s: %s", LOG_PATH, error)
        return serving.answer(labels, proba, self.classes, self.identity, request_id)

    @bentoml.api(route="/model")
    def model_info(self) -> dict[str, Any]:
        """The served model: name, version, dataset, gated metrics and the input schema."""
        return {
            **self.identity,
            "dataset": MANIFEST["dataset"],
            "model_sha256": MANIFEST["model_sha256"],
            "metrics": MANIFEST["metrics"],
            "schema": MANIFEST["schema"],
            "max_rows": int(LIMITS["max_rows"]),
            "prediction_log": str(LOG_PATH) if LOG_PATH else None,
        }


Classifier.add_asgi_middleware(
    RequestGuard, paths=("/predict", "/model"), max_body_bytes=int(LIMITS["max_body_bytes"]), rejected=rejected
)
