"""BentoML's own ceiling, for the serving benchmark: the service's shape (POST /predict with a list of
rows, the same worker count), answering a constant. What the framework alone costs on this machine.

    TABPIPE_BENCH_WORKERS=2 bentoml serve tabpipe.bench.ceiling:Ceiling --host 127.0.0.1 --port 3001
"""

import os
from typing import Any

import bentoml

ANSWER = {"label": "constant", "probabilities": {"constant": 1.0}}


@bentoml.service(
    name="ceiling",
    workers=int(os.environ.get("TABPIPE_BENCH_WORKERS", "2")),
    logging={"access": {"enabled": False}},
)
class Ceiling:
    @bentoml.api(route="/predict")
    def predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"model": {"name": "ceiling", "version": "0"}, "predictions": [ANSWER] * len(rows)}
