"""The serving manifest (models/serving.json): which model serves, for which dataset, under what limits.

The pipeline's `package` stage writes it (deterministic: model hash, dataset, gated metrics,
schema, serving limits). With the model in the local BentoML store (from `package`, or from
`tabpipe store-model` after a `dvc pull`), any machine holding it can serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpipe.core.errors import PipelineError
from tabpipe.core.files import read_json
from tabpipe.core.settings import Serve, parse
from tabpipe.data.schema import Schema


@dataclass(frozen=True)
class Manifest:
    """models/serving.json, parsed: `raw` is the file's content, the rest typed views of it."""

    raw: dict[str, Any]
    schema: Schema
    serve: Serve

    @property
    def name(self) -> str:
        return str(self.raw["name"])

    @property
    def tag(self) -> str:
        return str(self.raw["tag"])

    @property
    def version(self) -> str:
        """The model's version as clients see it: the BentoML tag's version part (a hash prefix)."""
        return self.tag.split(":", 1)[1]

    @property
    def identity(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    @property
    def model_sha256(self) -> str:
        return str(self.raw["model_sha256"])

    @property
    def pipeline_sha256(self) -> str:
        """The trained pipeline's hash (models/model.joblib): what explanations are made from."""
        return str(self.raw["pipeline_sha256"])

    @property
    def model_file(self) -> str:
        """The served file's name: model.onnx (compiled) or model.joblib (the scikit-learn pipeline)."""
        return str(self.raw["model_file"])

    @property
    def metrics(self) -> dict[str, Any]:
        return self.raw["metrics"]

    @property
    def value_buckets(self) -> list[float]:
        """A regressor's histogram buckets for served values: the training target's deciles."""
        return [float(b) for b in self.raw.get("value_buckets", [])]


def build(
    schema: Schema,
    *,
    model_file: str,
    model_sha256: str,
    pipeline_sha256: str,
    metrics: dict[str, Any],
    serve: Serve,
    value_buckets: list[float] | None = None,
) -> dict[str, Any]:
    """`model_sha256` is the served file's hash; `pipeline_sha256` the trained pipeline's (MLflow's key);
    `value_buckets` a regressor's (Task.buckets: its training target's deciles)."""
    name = f"tabpipe-{schema.name}"
    extra = {"value_buckets": value_buckets} if value_buckets else {}
    return {
        "name": name,
        "tag": f"{name}:{model_sha256[:20]}",
        "dataset": schema.name,
        "model_file": model_file,
        "model_sha256": model_sha256,
        "pipeline_sha256": pipeline_sha256,
        "metrics": metrics,
        "schema": schema.to_dict(),
        "serve": serve.model_dump(),
        **extra,
    }


def release_record(manifest: dict[str, Any]) -> dict[str, str]:
    """The part of the manifest a reviewer needs: which model, for which dataset."""
    return {k: manifest[k] for k in ("name", "tag", "dataset", "model_file", "model_sha256", "pipeline_sha256")}


def read(path: Path) -> Manifest:
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run `dvc repro` (or `dvc pull`) to produce the gated model first")
    raw = read_json(path)
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), dict) for k in ("schema", "serve")):
        raise PipelineError(f"{path}: not a serving manifest (no schema or serve section); rerun `dvc repro`")
    if not isinstance(raw.get("model_file"), str):
        raise PipelineError(f"{path}: written by an older tabpipe (no model_file); rerun `dvc repro`")
    return Manifest(raw, Schema.from_dict(raw["schema"]), parse(Serve, raw["serve"], f"{path}: serve"))
