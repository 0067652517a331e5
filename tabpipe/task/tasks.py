"""Every task, by the name data.task and the schema use."""

from __future__ import annotations

from tabpipe.core.errors import PipelineError
from tabpipe.task.base import Task
from tabpipe.task.classification import Classification
from tabpipe.task.regression import Regression

TASKS: dict[str, Task] = {task.name: task for task in (Classification(), Regression())}


def of(name: str) -> Task:
    """The task called `name`; an unknown name is one error line."""
    if name not in TASKS:
        raise PipelineError(f"task '{name}', expected one of {', '.join(TASKS)}")
    return TASKS[name]
