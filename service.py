"""BentoML service for the gated model: POST /predict answers labels and class probabilities.

Run from the repository root after `dvc repro`:  bentoml serve
"""

import gc
import logging
from pathlib import Path
from typing import Annotated, Any

import bentoml
from pydantic import Field

from tabpipe import evaluation, serving
from tabpipe.middleware import RequestGuard
from tabpipe.schema import Schema

MANIFEST = serving.read_manifest(Path("models/serving.json"))
SCHEMA = Schema.from_dict(MANIFEST["schema"])
LIMITS = MANIFEST["serve"]
TAG = serving.ensure_model(MANIFEST, Path("models/model.joblib"))
Row = serving.row_model(SCHEMA)
Rows = Annotated[list[Row], Field(min_length=1, max_length=int(LIMITS["max_rows"]))]

log = logging.getLogger("tabpipe.service")
predicted = bentoml.metrics.Counter(
    name="tabpipe_predictions", documentation="Rows predicted, by predicted class", labelnames=["label"]
)
rejected = bentoml.metrics.Counter(
    name="tabpipe_rejected_requests", documentation="Requests refused as invalid, by status", labelnames=["status"]
)


@bentoml.service(name="tabpipe", traffic={"timeout": 30})
class Classifier:
    bento_model = bentoml.models.BentoModel(TAG)

    def __init__(self) -> None:
        self.model: Any = None
        self.classes: list[str] = []
        self.identity = {"name": MANIFEST["name"], "version": TAG.split(":", 1)[1]}
        try:
            self.model = serving.load_model(self.bento_model)
            self.classes = [str(c) for c in self.model.classes_]
        except Exception as error:  # a corrupt model must leave the service up and not ready, not crash-looping
            log.error("model %s not loaded: %s", TAG, error)
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
        labels, proba = evaluation.predict(self.model, serving.rows_frame(rows, SCHEMA))
        for label in labels:
            predicted.labels(label=str(label)).inc()
        return serving.answer(labels, proba, self.classes, self.identity)

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
        }


Classifier.add_asgi_middleware(
    RequestGuard, paths=("/predict",), max_body_bytes=int(LIMITS["max_body_bytes"]), rejected=rejected
)
