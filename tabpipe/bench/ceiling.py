"""BentoML's own ceiling, for the serving benchmark: the service's shape (POST /predict with a list of
rows, the same worker count), answering a constant. What the framework alone costs on this machine.

    TABPIPE_BENCH_WORKERS=2 bentoml serve tabpipe.bench.ceiling:Ceiling --host 127.0.0.1 --port 3001

Two of them: `Ceiling` returns a finished JSON response, as the service does (the fastest way out
of BentoML); `StandardCeiling` returns the dict, which BentoML serialises itself, as a BentoML
service usually does. The first is what the service is held to.
"""

import os
from typing import Any

import bentoml

from tabpipe.serve.request import encoded

ANSWER = {"label": "constant", "probabilities": {"constant": 1.0}}
WORKERS = int(os.environ.get("TABPIPE_BENCH_WORKERS", "2"))


def constant(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": {"name": "ceiling", "version": "0"}, "predictions": [ANSWER] * len(rows)}


@bentoml.service(name="ceiling", workers=WORKERS, logging={"access": {"enabled": False}})
class Ceiling:
    @bentoml.api(route="/predict")
    def predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return encoded(constant(rows))


@bentoml.service(name="ceiling-standard", workers=WORKERS, logging={"access": {"enabled": False}})
class StandardCeiling:
    @bentoml.api(route="/predict")
    def predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return constant(rows)
