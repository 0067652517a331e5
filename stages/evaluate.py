"""Stage evaluate: the served model's test metrics (a regressor's intervals' coverage too), plot data and
predictions, and the trained pipeline's mean contribution per column, also logged to the winner's run."""

from tabpipe.core import files, hashing, settings, stage
from tabpipe.data import prepared
from tabpipe.model import evaluation, features, runtime
from tabpipe.task import tasks
from tabpipe.tracking import runs


def main() -> None:
    args = stage.arguments(
        __doc__,
        "prepared",
        "model",
        "served",
        "metrics",
        "slices",
        "predictions",
        "confusion",
        "importance",
        *evaluation.PLOTS,
    )
    params = settings.read(args.params)
    data_schema = prepared.read_schema(args.prepared)
    test = prepared.read_split(args.prepared, "test")
    x, y = features.split_xy(test, data_schema)

    task = tasks.of(data_schema.task)
    served = runtime.load(runtime.model_file(args.served), task)
    trained = runtime.load(args.model, task)  # explained: no contributions exist inside the compiled graph

    rules = params.section(settings.Evaluate).for_task(data_schema.task)
    result = evaluation.evaluate(served, test, x, y, rules, params.seed, task, trained=trained, schema=data_schema)

    files.write_json(args.metrics, result.metrics)
    files.write_json(args.slices, result.slices)
    for plot in evaluation.PLOTS:  # a task leaves the other's plots empty
        files.write_json(getattr(args, plot), result.curves[plot])
    files.write_json(args.importance, result.importance)
    files.write_with(args.confusion, lambda tmp: result.confusion.to_csv(tmp, index=False))
    files.write_parquet(args.predictions, result.predictions)
    runs.record_evaluation(
        hashing.file_sha256(args.model), test, data_schema.target, prepared.split_path(args.prepared, "test"), result
    )


if __name__ == "__main__":
    stage.run(main)
