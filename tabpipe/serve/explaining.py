"""POST /explain: request rows explained exactly by the trained pipeline stored beside the served model.

A worker builds its explainer on the first /explain it gets, not when it starts: loading the pipeline
(scikit-learn, and shap for a forest or histogram boosting) takes seconds and memory that a service
asked only for predictions never pays. The rows are the ones the model answered for (`unseen.model_rows`:
dates in parts, numbers past the range at its ends), so an explanation is of the answer /predict gives.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.serve import request

log = logging.getLogger("tabpipe.service")

if TYPE_CHECKING:
    from tabpipe.data.schema import Schema
    from tabpipe.model.explanations import Explainer


class Explaining:
    """One worker's explainer of the pipeline `load` returns, built on first use (under a lock: requests
    run on threads). A build that failed fails every later request the same way, without loading again."""

    def __init__(self, load: Callable[[], Any], schema: Schema) -> None:
        self._load, self._schema = load, schema
        self._lock = threading.Lock()
        self._explainer: Explainer | None = None
        self._failure: str | None = None

    def get(self) -> Explainer:
        if self._explainer is not None:
            return self._explainer
        with self._lock:
            if self._explainer is None and self._failure is None:
                try:
                    from tabpipe.model.explanations import explainer

                    self._explainer = explainer(self._load(), self._schema)
                except Exception as error:  # an unpickling error too: a 503 naming it, never a 500
                    log.error("explanations unavailable: %s", error)
                    self._failure = f"explanations unavailable: {error}"
            if self._explainer is None:
                raise PipelineError(str(self._failure))
            return self._explainer


def answer(explainer: Explainer, model_rows: list[dict[str, Any]], schema: Schema, served: Any) -> dict[str, Any]:
    """The body's `units` and one explanation per row: `output`, `base` and `contributions` keyed by the
    request's columns (each keyed by class first for a multiclass model). The `served` compiled model
    preprocesses the rows (microseconds a row); otherwise scikit-learn does (milliseconds)."""
    from tabpipe.model.explanations import as_json, explain, explain_transformed

    if getattr(served, "transforms", False):
        explained = explain_transformed(explainer, served.transform_records(model_rows))
    else:
        explained = explain(explainer, request.rows_frame(model_rows, schema))
    return {"units": explained.units, "explanations": as_json(explained)}
