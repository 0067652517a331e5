"""Put the gated model into the local BentoML store, checked against its manifest's hash.

    python -m tools.store_model       # after `dvc pull`, before `bentoml build`

`dvc repro` does this in its package stage. A machine that got the pipeline's outputs with
`dvc pull` runs it once before `bentoml serve` or `bentoml build`.
"""

from tabpipe.core import stage
from tabpipe.core.layout import paths
from tabpipe.serve import manifest, store


def main() -> None:
    models = paths()["models"]
    served = manifest.read(models["serving"])
    tag = store.ensure_model(served, models["served"] / served.model_file)
    print(f"stored {tag}")


if __name__ == "__main__":
    stage.run(main)
