"""The usual alternative to our service, for the serving benchmark only: FastAPI + uvicorn, one worker.

Same model file (hash-checked), same request model built from the schema, same answer; no
prediction log, no metrics, no batching.

    TABPIPE_PROJECT=path/to/project uvicorn bench.fastapi_app:app --host 127.0.0.1 --port 8000
    TABPIPE_FASTAPI_ASYNC=1 ...    # an `async def` endpoint instead of FastAPI's thread pool
"""

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from tabpipe.core.layout import paths
from tabpipe.model.predict import classes_of, predict
from tabpipe.serve import manifest, request, store

MODELS = paths(Path(os.environ.get("TABPIPE_PROJECT", ".")))["models"]
MANIFEST = manifest.read(MODELS["serving"])
SCHEMA = MANIFEST.schema
MODEL = store.load_file(MODELS["model"], MANIFEST.model_sha256)
CLASSES = classes_of(MODEL)
Row = request.row_model(SCHEMA)


class Request(BaseModel):
    rows: Annotated[list[Row], Field(min_length=1, max_length=MANIFEST.serve.max_rows)]  # type: ignore[valid-type]


app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


def answer(body: Request) -> dict[str, Any]:
    labels, proba = predict(MODEL, request.rows_frame(request.records(body.rows), SCHEMA))
    return request.answer(labels, proba, CLASSES, MANIFEST.identity)


if os.environ.get("TABPIPE_FASTAPI_ASYNC") == "1":
    # `async def`: requests run one at a time on the event loop, no thread pool.
    @app.post("/predict")
    async def predict_async(body: Request) -> dict[str, Any]:
        return answer(body)
else:
    # `def`, as FastAPI's docs advise for blocking work: a pool of up to 40 threads.
    @app.post("/predict")
    def predict_sync(body: Request) -> dict[str, Any]:
        return answer(body)
