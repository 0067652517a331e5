"""BentoML service for the gated model: POST /predict answers labels and class probabilities
(a regressor: a value and its interval).

Run from the repository root after `dvc repro`:  bentoml serve
(after `dvc pull` instead, put the model into the BentoML store first: tabpipe store-model).
With TABPIPE_API_TOKEN (or TABPIPE_API_TOKEN_FILE) set, the API answers only its bearer token (docs/serving.md).
Importing this file only builds the service; each worker loads the model when it starts.
"""

import gc
import logging
import os
from typing import Annotated, Any

import bentoml
from pydantic import Field

from tabpipe.core.errors import PipelineError
from tabpipe.core.layout import paths
from tabpipe.serve import (
    bento_model,
    explaining,
    manifest,
    prediction_log,
    prediction_log_writer,
    request,
    service_log,
    token,
    unseen,
)
from tabpipe.serve.guard import RequestGuard
from tabpipe.task import intervals, tasks

try:
    MODELS = paths()["models"]
    MANIFEST = manifest.read(MODELS["serving"])
    bento_model.require(MANIFEST, MODELS["served"] / MANIFEST.model_file)
except PipelineError as error:  # nothing to serve: one line and a non-zero exit, not a traceback
    raise SystemExit(f"error: {error}") from None
LIMITS = MANIFEST.serve
LOG_PATH = prediction_log.location(LIMITS.prediction_log, dict(os.environ))
try:
    LOG_FORMAT = service_log.choose(LIMITS.log_format, dict(os.environ))
    TOKEN = token.configured(os.environ)  # None: the service is open, as it says once at start
except (ValueError, PipelineError) as error:
    raise SystemExit(f"error: {error}") from None
Row = request.row_model(MANIFEST.schema, LIMITS.unseen)
Rows = Annotated[list[Row], Field(min_length=1, max_length=LIMITS.max_rows)]
ExplainRows = Annotated[list[Row], Field(min_length=1, max_length=LIMITS.explain_max_rows)]

log = logging.getLogger("tabpipe.service")
TASK = tasks.of(MANIFEST.schema.task)
answered = TASK.series(bentoml.metrics, MANIFEST.value_buckets)  # a classifier's labels, a regressor's values
rejected = bentoml.metrics.Counter(
    name="tabpipe_rejected_requests", documentation="Requests refused as invalid, by status", labelnames=["status"]
)
unseen_values = bentoml.metrics.Counter(
    name="tabpipe_unseen_values",
    documentation="Answered values outside the schema's limits (serve.unseen: answer), by column and kind",
    labelnames=["column", "kind"],
)
log_failures = bentoml.metrics.Counter(
    name="tabpipe_prediction_log_failures", documentation="Answered requests whose rows could not be logged"
)
log_restarts = bentoml.metrics.Counter(
    name="tabpipe_prediction_log_writer_restarts",
    documentation="Prediction log writers found dead and replaced (each may have lost rows: docs/monitoring.md)",
)


@bentoml.service(
    name="tabpipe",
    traffic={"timeout": 30},
    workers=LIMITS.workers,
    # Every request is already counted in /metrics and every row in the prediction log.
    logging={"access": {"enabled": LIMITS.access_log}},
)
class Tabpipe:
    bento_model = bentoml.models.BentoModel(MANIFEST.tag)

    @bentoml.on_deployment
    def _say_who_may_ask() -> None:
        """Once per `bentoml serve`, before its workers start: a service without a token says it is open."""
        if TOKEN is None:
            log.warning(token.open_line(API_ROUTES))

    def __init__(self) -> None:
        service_log.install(LOG_FORMAT)  # BentoML has configured the worker's logging by now
        self.model: Any = None
        self.interval: intervals.Interval | None = None
        self.log: prediction_log_writer.LogPipe | None = None
        self.explaining = explaining.Explaining(
            lambda: bento_model.load_pipeline(self.bento_model, TASK), MANIFEST.schema
        )
        # A scikit-learn fallback's OpenMP threads would fight the request threads (set before it loads).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        try:
            self.model = bento_model.load_model(self.bento_model, TASK)
            if MANIFEST.model_file.endswith(".joblib"):  # the scikit-learn pipeline: one BLAS thread too
                from threadpoolctl import threadpool_limits

                threadpool_limits(1)
            self.interval = intervals.of(self.model)
            lacking = TASK.unfit_to_serve(self.model)
            if lacking:
                raise PipelineError(lacking)
            self.log = prediction_log_writer.LogPipe(LOG_PATH, self._writer_lost) if LOG_PATH else None
        except Exception as error:  # a corrupt model or unwritable log: up and not ready, not crash-looping
            log.error("not ready: model %s: %s", MANIFEST.tag, error)
            self.model = None
        # Every status the service refuses with starts at 0, so Prometheus's rate() sees a first burst.
        for status in ("400", "413", "415", *(("401",) if TOKEN else ())):
            rejected.labels(status=status)
        # Move everything allocated so far out of the collector's way: no GC pauses on the request path.
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.model is not None

    @bentoml.on_shutdown
    def _close_log(self) -> None:
        """Let the log's writer commit what it holds before the worker goes (a stopped container kills it)."""
        if self.log is not None:
            self.log.close()

    @bentoml.api(route="/predict")
    def predict(self, rows: Rows) -> dict[str, Any]:
        """Predict a list of rows; each answer has the label and the probability of every class
        (a regressor's: the value and its interval). The dict goes out already encoded as JSON
        (request.encoded); BentoML passes a returned Response through."""
        if self.model is None:
            raise bentoml.exceptions.ServiceUnavailable("model not loaded")
        records = request.records(rows, MANIFEST.schema)
        model_rows, flags = unseen.model_rows(records, MANIFEST.schema)
        for row in flags:
            for column, kind in row.items():
                unseen_values.labels(column=column, kind=kind).inc()
        predicted = request.predict(self.model, model_rows, MANIFEST.schema, TASK)
        TASK.observe(answered, predicted)
        request_id = self._log(records, predicted, flags)
        return request.encoded(TASK.body(predicted, MANIFEST.identity, request_id))

    def _writer_lost(self, returncode: int | None) -> None:
        """The log's writer had died (kill -9, out of memory): what it had not committed is lost."""
        log_restarts.inc()
        log.error("prediction log %s: writer exited (%s), restarted; rows it held are lost", LOG_PATH, returncode)

    def _log(self, records: list[Any], predicted: Any, flags: list[Any]) -> str | None:
        """Append the answered rows to the prediction log (a regressor's interval ends where a classifier's
        probabilities go); a failure is counted, and the answer still goes out."""
        if self.log is None:
            return None
        try:
            entry = prediction_log.new(
                records, predicted.labels, predicted.outputs, predicted.names, MANIFEST.identity, flags
            )
            return self.log.append(entry)
        except Exception as error:  # the answer is still right; the monitor sees the gap in the counter
            log_failures.inc()
            log.error("prediction log %s: %s", LOG_PATH, error)
            return None

    @bentoml.api(route="/explain")
    def explain(self, rows: ExplainRows) -> dict[str, Any]:
        """Explain a list of rows exactly: per row, the model's raw `output` (in `units`), the `base` and
        each column's `contributions`, which add up to the output (docs/serving.md, Explanations)."""
        if self.model is None:
            raise bentoml.exceptions.ServiceUnavailable("model not loaded")
        model_rows, _ = unseen.model_rows(request.records(rows, MANIFEST.schema), MANIFEST.schema)
        try:
            explainer = self.explaining.get()
        except PipelineError as error:
            raise bentoml.exceptions.ServiceUnavailable(str(error)) from None
        return request.encoded(
            {"model": MANIFEST.identity, **explaining.answer(explainer, model_rows, MANIFEST.schema, self.model)}
        )

    @bentoml.api(route="/model")
    def model_info(self) -> dict[str, Any]:
        """The served model: name, version, dataset, gated metrics and the input schema."""
        return {
            **MANIFEST.identity,
            "dataset": MANIFEST.raw["dataset"],
            "model_file": MANIFEST.model_file,
            "model_sha256": MANIFEST.model_sha256,
            "metrics": MANIFEST.metrics,
            "task": MANIFEST.schema.task,
            "interval_level": self.interval.level if self.interval else None,
            **TASK.reported(self.model),  # a classifier's decision and calibration, a regressor's interval
            "schema": MANIFEST.raw["schema"],
            "max_rows": LIMITS.max_rows,
            "unseen": LIMITS.unseen,
            "prediction_log": str(LOG_PATH) if LOG_PATH else None,
        }


API_ROUTES = tuple(api.route for api in Tabpipe.apis.values())  # a new API is guarded as it is added
Tabpipe.add_asgi_middleware(
    RequestGuard,
    paths=API_ROUTES,
    max_body_bytes=LIMITS.max_body_bytes,
    rejected=rejected,
    identity=MANIFEST.identity,
    token=TOKEN,
)
