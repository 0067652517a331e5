"""A peer of our service, for the serving benchmark only: FastAPI + uvicorn around the scikit-learn
pipeline, written the way users write it (a DataFrame from the request, `predict_proba`, or a
regressor's `predict` and its interval).

Same trained pipeline (hash-checked), same request model built from the schema, same answer;
no prediction log, no metrics.

    TABPIPE_PROJECT=path/to/project uvicorn tabpipe.bench.fastapi_app:app --host 127.0.0.1 --port 8000 --workers 2
"""

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from tabpipe.core.layout import paths
from tabpipe.serve import bento_model, manifest, request
from tabpipe.task import tasks

MODELS = paths(Path(os.environ.get("TABPIPE_PROJECT", ".")))["models"]
MANIFEST = manifest.read(MODELS["serving"])
SCHEMA = MANIFEST.schema
TASK = tasks.of(SCHEMA.task)
MODEL = bento_model.load_file(MODELS["model"], MANIFEST.raw["pipeline_sha256"], TASK)
Row = request.row_model(SCHEMA, MANIFEST.serve.unseen)


class Request(BaseModel):
    rows: Annotated[list[Row], Field(min_length=1, max_length=MANIFEST.serve.max_rows)]  # type: ignore[valid-type]


app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
def predict_rows(body: Request) -> dict[str, Any]:
    """`def`, as FastAPI's docs advise for blocking work: it runs in FastAPI's thread pool."""
    frame = request.rows_frame(request.records(body.rows, SCHEMA), SCHEMA)
    return TASK.body(TASK.predict(MODEL, frame), MANIFEST.identity, None)  # as ours answers
