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

from tabpipe import evaluation, serving
from tabpipe.schema import Schema

PROJECT = Path(os.environ.get("TABPIPE_PROJECT", "."))
MANIFEST = serving.read_manifest(PROJECT / "models/serving.json")
SCHEMA = Schema.from_dict(MANIFEST["schema"])
MODEL = serving.load_file(PROJECT / "models/model.joblib", MANIFEST["model_sha256"])
CLASSES = [str(c) for c in MODEL.classes_]
IDENTITY = {"name": MANIFEST["name"], "version": MANIFEST["tag"].split(":", 1)[1]}
Row = serving.row_model(SCHEMA)


class Request(BaseModel):
    rows: Annotated[list[Row], Field(min_length=1, max_length=int(MANIFEST["serve"]["max_rows"]))]  # type: ignore[valid-type]


app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


def answer(request: Request) -> dict[str, Any]:
    labels, proba = evaluation.predict(MODEL, serving.rows_frame(serving.records(request.rows), SCHEMA))
    return serving.answer(labels, proba, CLASSES, IDENTITY)


if os.environ.get("TABPIPE_FASTAPI_ASYNC") == "1":
    # `async def`: requests run one at a time on the event loop, no thread pool.
    @app.post("/predict")
    async def predict_async(request: Request) -> dict[str, Any]:
        return answer(request)
else:
    # `def`, as FastAPI's docs advise for blocking work: a pool of up to 40 threads.
    @app.post("/predict")
    def predict(request: Request) -> dict[str, Any]:
        return answer(request)
