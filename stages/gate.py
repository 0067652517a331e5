"""Stage gate: may this model ship? Thresholds, drift, and the champion rule; exits non-zero if not."""

import argparse
from pathlib import Path

import joblib

from tabpipe import features, gate, io, registry, tracking
from tabpipe.errors import PipelineError, run_stage
from tabpipe.schema import Schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--model", type=Path, default=Path("models/model.joblib"))
    parser.add_argument("--evaluation", type=Path, default=Path("metrics/evaluate.json"))
    parser.add_argument("--validation", type=Path, default=Path("metrics/validation.json"))
    parser.add_argument("--out", type=Path, default=Path("metrics/gate.json"))
    parser.add_argument("--report", type=Path, default=Path("reports/gate.json"))
    args = parser.parse_args()

    all_params = io.load_params(args.params)
    params, seed = io.section(all_params, "gate"), int(io.section(all_params, "base")["seed"])
    champion_params = params["champion"]
    schema = Schema.from_dict(io.read_json(args.prepared / "schema.json"))
    metrics, validation = io.read_json(args.evaluation), io.read_json(args.validation)
    model_sha256 = tracking.file_sha256(args.model)

    comparison = None
    champion = registry.champion(registry.model_name(params["registered_model"], schema.name))
    if champion and champion.model_sha256 != model_sha256:
        x, y = features.split_xy(io.read_parquet(args.prepared / "test.parquet"), schema)
        candidate, incumbent = joblib.load(args.model), registry.load(champion)
        comparison = gate.compare_models(candidate, incumbent, x, y, champion_params, seed)

    rules = [
        *gate.minimum_rules(metrics, params["min"]),
        gate.drift_rule(validation, float(params["max_drifted_share"])),
        *gate.champion_rules(
            comparison,
            tolerance=float(champion_params["tolerance"]),
            require_improvement=bool(champion_params["require_improvement"]),
            alpha=float(champion_params["alpha"]),
        ),
    ]
    flags, failures = gate.verdict(rules)
    io.write_json(args.out, flags)
    io.write_json(
        args.report,
        {
            "flags": flags,
            "champion": champion.__dict__ if champion else None,
            "comparison": comparison.as_dict() if comparison else None,
        },
    )
    if failures:
        raise PipelineError("\n".join(failures))


if __name__ == "__main__":
    run_stage(main)
