"""Stage package: register the gated model in MLflow (alias champion), write its serving manifest, store it."""

import argparse
from pathlib import Path

from tabpipe import io, registry, serving, tracking
from tabpipe.errors import run_stage
from tabpipe.schema import Schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--schema", type=Path, default=Path("data/prepared/schema.json"))
    parser.add_argument("--model", type=Path, default=Path("models/model.joblib"))
    parser.add_argument("--evaluation", type=Path, default=Path("metrics/evaluate.json"))
    parser.add_argument("--out", type=Path, default=Path("models/serving.json"))
    parser.add_argument("--release", type=Path, default=Path("models/release.json"))
    args = parser.parse_args()

    all_params = io.load_params(args.params)
    gate_params, serve = io.section(all_params, "gate"), io.section(all_params, "serve")
    schema = Schema.from_dict(io.read_json(args.schema))
    metrics = io.read_json(args.evaluation)
    model_sha256 = tracking.file_sha256(args.model)

    name = registry.model_name(gate_params["registered_model"], schema.name)
    tags = {**tracking.run_tags(schema.name, all_params), **registry.metric_tags(metrics)}
    version = registry.release(name, model_sha256, tags)

    manifest = serving.manifest(schema, model_sha256, metrics, serve)
    io.write_json(args.out, manifest)
    io.write_json(args.release, serving.release_record(manifest))
    serving.ensure_model(manifest, args.model, labels={"mlflow_model": name, "mlflow_version": version})


if __name__ == "__main__":
    run_stage(main)
