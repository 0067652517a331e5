"""`tabpipe predict --model models:/NAME@ALIAS` (or `models:/NAME/VERSION`): a registered version's served model.

The version's `served.sha256` tag names its model in the local BentoML store, where the package stage
put it; its manifest is rebuilt from what the store recorded, as `tabpipe rollback` rebuilds one, under
the serving limits of the workspace's manifest. The file is loaded only if its hash is the registered one.
"""

from __future__ import annotations

import re
from pathlib import Path

from tabpipe.batch.predict import Served
from tabpipe.core.errors import PipelineError
from tabpipe.core.layout import paths
from tabpipe.data.schema import Schema
from tabpipe.deploy import rollback
from tabpipe.serve import manifest
from tabpipe.tracking import backend as tracking

URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))")


def resolve(uri: str, project: Path) -> Served:
    """The served model of a registry URI, from the local BentoML store."""
    import bentoml
    from mlflow.exceptions import MlflowException

    match = URI.fullmatch(uri)
    if match is None:
        raise PipelineError(f"--model {uri}: expected models:/<name>@<alias> or models:/<name>/<version>")
    name, alias, number = match["name"], match["alias"], match["version"]
    current = manifest.read(paths(project)["models"]["serving"])
    store = tracking.tracking_uri(project)
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).is_file():
        raise PipelineError(f"--model {uri}: no model registry at {store}")
    client = tracking.client()
    if alias:
        version = rollback.alias(client, name, alias)
    else:
        try:
            version = client.get_model_version(name, number)
        except MlflowException:
            version = None
    if version is None:
        raise PipelineError(f"--model {uri}: no such registered version")
    again = (f"--model {uri}", "score again")
    built = rollback.stored_manifest(client, name, version, current.name, current.serve, again)
    served = manifest.Manifest(built, Schema.from_dict(built["schema"]), current.serve)
    return Served(served, Path(bentoml.models.get(served.tag).path_of(served.model_file)))
