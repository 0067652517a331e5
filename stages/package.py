"""Stage package: register the gated model in MLflow (alias champion), write its serving manifest, store it;
a new champion is announced to the team's webhook."""

import os

from tabpipe.core import files, hashing, settings, stage
from tabpipe.data import prepared
from tabpipe.model import runtime
from tabpipe.notify import webhook
from tabpipe.serve import bento_model, manifest
from tabpipe.task import tasks
from tabpipe.tracking import registry, runs


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "model", "served", "evaluation", "out", "release")
    params = settings.read(args.params)
    data_schema = prepared.read_schema(args.prepared)
    metrics = files.read_json(args.evaluation)
    pipeline_sha256 = hashing.file_sha256(args.model)
    served = runtime.model_file(args.served)
    served_sha256 = hashing.file_sha256(served)

    compiled_id = runs.log_compiled(pipeline_sha256, served)
    prefix = params.section(settings.Gate).registered_model
    before = registry.champion(registry.model_name(prefix, data_schema.name))
    name, version = registry.release_gated(
        prefix,
        data_schema.name,
        pipeline_sha256,
        metrics,
        hashing.params_hash(params.raw),
        {"runtime": served.suffix.lstrip("."), "sha256": served_sha256, "model_id": compiled_id or ""},
    )
    serve = params.section(settings.Serve)
    buckets = tasks.of(data_schema.task).buckets(prepared.read_split(args.prepared, "train")[data_schema.target])
    built = manifest.build(
        data_schema,
        model_file=served.name,
        model_sha256=served_sha256,
        pipeline_sha256=pipeline_sha256,
        metrics=metrics,
        serve=serve,
        value_buckets=buckets,
    )

    if before is None or before.version != version:
        previous = registry.version_metrics(name, before.version) if before else None
        message = webhook.new_champion(name, version, headline(metrics), previous, before.version if before else None)
        webhook.post(message, params.section(settings.Notify), os.environ)

    files.write_json(args.out, built)
    files.write_json(args.release, manifest.release_record(built))
    bento_model.ensure_model(
        manifest.read(args.out), served, args.model, labels={"mlflow_model": name, "mlflow_version": version}
    )


def headline(metrics: dict) -> dict[str, float]:
    """The single-number test metrics (not rows or per-class tables), as the registry tags them."""
    return {key: value for key, value in metrics.items() if isinstance(value, float)}


if __name__ == "__main__":
    stage.run(main)
