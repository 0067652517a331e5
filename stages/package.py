"""Stage package: register the gated model in MLflow (alias champion), write its serving manifest, store it."""

from tabpipe.core import files, hashing, settings, stage
from tabpipe.data import prepared
from tabpipe.model import runtime
from tabpipe.serve import manifest, store
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
    name, version = registry.release_gated(
        params.section(settings.Gate).registered_model,
        data_schema.name,
        pipeline_sha256,
        metrics,
        hashing.params_hash(params.raw),
        {"runtime": served.suffix.lstrip("."), "sha256": served_sha256, "model_id": compiled_id or ""},
    )
    serve = params.section(settings.Serve)
    built = manifest.build(data_schema, served.name, served_sha256, pipeline_sha256, metrics, serve)

    files.write_json(args.out, built)
    files.write_json(args.release, manifest.release_record(built))
    store.ensure_model(manifest.read(args.out), served, labels={"mlflow_model": name, "mlflow_version": version})


if __name__ == "__main__":
    stage.run(main)
