"""Put the gated model into the local BentoML store, checked against its manifest's hash.

    tabpipe store-model       # after `dvc pull`, before `bentoml build`

`dvc repro` does this in its package stage. A machine that got the pipeline's outputs with
`dvc pull` runs it once before `bentoml serve` or `bentoml build`.
"""

from tabpipe.core.layout import paths
from tabpipe.serve import bento_model, manifest


def run() -> str:
    """Store the served model of the project in the current directory, with its trained pipeline when
    present (POST /explain needs it); returns its BentoML tag."""
    models = paths()["models"]
    served = manifest.read(models["serving"])
    pipeline = models["model"] if models["model"].is_file() else None
    return str(bento_model.ensure_model(served, models["served"] / served.model_file, pipeline))
