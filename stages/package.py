"""Stage package: register the gated model in MLflow (alias champion), write its serving manifest, store it."""

from tabpipe.core import files, hashing, settings, stage
from tabpipe.data import prepared
from tabpipe.serve import manifest, store
from tabpipe.tracking import registry


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "model", "evaluation", "out", "release")
    params = settings.read(args.params)
    data_schema = prepared.read_schema(args.prepared)
    metrics = files.read_json(args.evaluation)
    model_sha256 = hashing.file_sha256(args.model)

    name, version = registry.release_gated(
        params.section(settings.Gate).registered_model,
        data_schema.name,
        model_sha256,
        metrics,
        hashing.params_hash(params.raw),
    )
    built = manifest.build(data_schema, model_sha256, metrics, params.section(settings.Serve))

    files.write_json(args.out, built)
    files.write_json(args.release, manifest.release_record(built))
    store.ensure_model(manifest.read(args.out), args.model, labels={"mlflow_model": name, "mlflow_version": version})


if __name__ == "__main__":
    stage.run(main)
