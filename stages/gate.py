"""Stage gate: may this model ship? Minimum metrics and the champion rule; exits non-zero if not
(and tells the team's webhook which rules failed)."""

import logging
import os

from tabpipe.core import files, hashing, settings, stage
from tabpipe.core.errors import PipelineError
from tabpipe.data import prepared
from tabpipe.model import features, fingerprint, gate, runtime
from tabpipe.notify import webhook
from tabpipe.task import tasks
from tabpipe.tracking import registry


def main() -> None:
    args = stage.arguments(__doc__, "prepared", "model", "served", "compiled", "evaluation", "slices", "out", "report")
    params = settings.read(args.params)
    data_schema = prepared.read_schema(args.prepared)
    rules = params.section(settings.Gate).for_task(data_schema.task)
    test = prepared.read_split(args.prepared, "test")
    x, y = features.split_xy(test, data_schema)
    name = registry.model_name(rules.registered_model, data_schema.name)
    champion, incumbent = registry.challenger(name, hashing.file_sha256(args.model))
    seen = fingerprint.seen(incumbent, test) if incumbent is not None else None

    task = tasks.of(data_schema.task)
    candidate = runtime.load(runtime.model_file(args.served), task)

    decision = gate.decide(
        rules,
        metrics=files.read_json(args.evaluation),
        sliced=files.read_json(args.slices),
        agreement=files.read_json(args.compiled),
        candidate=candidate,
        champion=incumbent,
        x=x,
        y=y,
        seed=params.seed,
        seen=seen,
        task=task,
    )

    log = logging.getLogger("gate")
    if decision.schema_note:
        log.warning("%s", decision.schema_note)
    if decision.comparison and champion:
        log.info("compared with %s version %s %s", name, champion.version, gate.rows_line(decision.comparison))
    files.write_json(args.out, decision.flags)
    files.write_json(
        args.report,
        {
            "flags": decision.flags,
            "champion": champion.__dict__ if champion else None,
            "comparison": decision.comparison.as_dict() if decision.comparison else None,
            "schema_change": decision.schema_note,
        },
    )
    if decision.failures:
        message = webhook.gate_failed(name, data_schema.name, decision.failures, decision.flags)
        webhook.post(message, params.section(settings.Notify), os.environ)
        raise PipelineError("\n".join(decision.failures))


if __name__ == "__main__":
    stage.run(main)
