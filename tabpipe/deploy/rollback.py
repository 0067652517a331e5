"""Rollback: the registry's `champion` alias back to the `previous` version, and the serving manifest with it.

The previous version's served model must still be in the local BentoML store (under the tag the
package stage gave it, `<name>:<served sha256[:20]>`); its manifest is rebuilt from what the store
recorded with it, the version's tags and today's `serve` settings, so `bentoml serve` then serves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tabpipe.core import files, settings
from tabpipe.core.errors import PipelineError
from tabpipe.core.layout import paths
from tabpipe.data.schema import Schema
from tabpipe.serve import manifest as manifests
from tabpipe.tracking import backend as tracking
from tabpipe.tracking import registry
from tabpipe.tracking.keys import MODEL_HASH_TAG

SERVED_TAG = "served.sha256"  # the served file's hash, as `package` tags every registered version
ROLLED_BACK_TAG = "rolled_back_from"


def manifest_from(
    metadata: dict[str, Any], served_sha256: str, pipeline_sha256: str, serve: settings.Serve
) -> dict[str, Any]:
    """The serving manifest of a stored model: the store's metadata, the registry's hashes, the serve settings."""
    if metadata.get("model_sha256") != served_sha256:
        raise PipelineError(
            f"the stored model's sha256 {str(metadata.get('model_sha256'))[:12]}... is not the registered "
            f"{served_sha256[:12]}..."
        )
    schema = Schema.from_dict(metadata["schema"])
    return manifests.build(
        schema,
        model_file=metadata["model_file"],
        model_sha256=served_sha256,
        pipeline_sha256=pipeline_sha256,
        metrics=metadata["metrics"],
        serve=serve,
    )


def alias(client: Any, name: str, which: str) -> Any | None:
    """The registered version holding alias `which`, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, which)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise tracking.unreachable(error) from None


def commit_of(client: Any, version: Any) -> str | None:
    """The git commit the version was trained at (MLflow records it on the run), when known."""
    try:
        return client.get_run(version.run_id).data.tags.get("mlflow.source.git.commit")
    except Exception:  # only for the hint in an error line
        return None


def stored_manifest(
    client: Any,
    name: str,
    version: Any,
    bento_name: str,
    serve: settings.Serve,
    command: tuple[str, str] = ("rollback", "roll back again"),
) -> dict[str, Any]:
    """The manifest that serves registered `version`, from its model in the local BentoML store; `command`
    is what its error lines start with and what they say to do last (a rollback's, or `tabpipe predict`'s)."""
    import bentoml
    from bentoml.exceptions import NotFound

    served_sha256, pipeline_sha256 = version.tags.get(SERVED_TAG), version.tags.get(MODEL_HASH_TAG)
    where = f"{command[0]}: {name} version {version.version}"
    if not served_sha256 or not pipeline_sha256:
        raise PipelineError(f"{where} has no {SERVED_TAG} or {MODEL_HASH_TAG} tag (registered by an older tabpipe)")
    tag = f"{bento_name}:{served_sha256[:20]}"
    try:
        stored = bentoml.models.get(tag)
    except NotFound:
        commit = commit_of(client, version)
        at = f" (commit {commit[:12]})" if commit else ""
        raise PipelineError(
            f"{where}: its model {tag} is not in the BentoML store; run the pipeline at that version{at} "
            f"or `tabpipe store-model` on a checkout of it, then {command[1]}"
        ) from None
    try:
        built = manifest_from(dict(stored.info.metadata), served_sha256, pipeline_sha256, serve)
    except (KeyError, PipelineError) as error:
        raise PipelineError(f"{where}: model {tag}: {error}") from None
    if built["tag"] != tag:
        raise PipelineError(f"{where}: model {tag} was stored for another dataset ({built['tag']})")
    return built


def run(root: Path) -> str:
    """Roll the project's registered model back to its previous version; the line that says so."""
    models = paths(root)["models"]
    current = manifests.read(models["serving"])
    params = settings.read(root / "params.yaml")
    name = registry.model_name(params.section(settings.Gate).registered_model, current.raw["dataset"])
    uri = tracking.tracking_uri(root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise PipelineError(f"rollback: {name} has no previous version to roll back to (no registry at {uri})")
    client = tracking.client()
    previous = alias(client, name, registry.PREVIOUS)
    champion = alias(client, name, registry.CHAMPION)
    if previous is None or champion is None or str(previous.version) == str(champion.version):
        raise PipelineError(f"rollback: {name} has no previous version to roll back to")
    built = stored_manifest(client, name, previous, current.name, params.section(settings.Serve))

    from mlflow.exceptions import MlflowException

    try:
        client.set_registered_model_alias(name, registry.CHAMPION, str(previous.version))
        client.delete_registered_model_alias(name, registry.PREVIOUS)  # no record of the one before it
        client.set_model_version_tag(name, str(previous.version), ROLLED_BACK_TAG, str(champion.version))
    except MlflowException as error:
        raise tracking.unreachable(error) from None
    files.write_json(models["serving"], built)
    files.write_json(models["release"], manifests.release_record(built))
    return (
        f"rolled back {name}: champion is version {previous.version} again (was {champion.version}); "
        f"{models['serving'].relative_to(root)} serves {built['tag']}"
    )
