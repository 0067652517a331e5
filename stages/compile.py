"""Stage compile: turn the trained pipeline into what serves (ONNX), and measure how far the two agree."""

import joblib

from tabpipe.core import files, settings, stage
from tabpipe.data import prepared
from tabpipe.model import conversion, features, runtime
from tabpipe.task import tasks


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "model", "out", "metrics")
    serve = settings.read(args.params).section(settings.Serve)
    data_schema = prepared.read_schema(args.prepared)
    x, _ = features.split_xy(prepared.read_split(args.prepared, "test"), data_schema)
    pipeline = joblib.load(args.model)

    built = conversion.build(args.model.read_bytes(), pipeline, data_schema, serve.runtime)

    for stale in set(runtime.FILES.values()) - {built.file_name}:
        (args.out / stale).unlink(missing_ok=True)
    files.write_with(args.out / built.file_name, lambda tmp: tmp.write_bytes(built.blob))
    task = tasks.of(data_schema.task)
    served = runtime.load(args.out / built.file_name, task)
    summary = {"runtime": built.runtime, **task.agreement(pipeline, served, x)}
    files.write_json(args.metrics, {**summary, "reason": built.reason} if built.reason else summary)


if __name__ == "__main__":
    stage.run(main)
