"""The Dask scheduler a run may use, and reaching it: the training search and `tabpipe predict --cluster`.

It is named by the environment (TABPIPE_DASK_SCHEDULER) or the command line, not params.yaml: it changes
where the work runs, not what it computes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    from distributed import Client

SCHEDULER = "TABPIPE_DASK_SCHEDULER"


def address() -> str:
    """The scheduler's address (tcp://host:8786), or "" for a local run."""
    return os.environ.get(SCHEDULER, "").strip()


def connect(scheduler: str, named: str) -> Client:
    """A client of the scheduler at `scheduler`, or one error line saying where it was `named` (an unreachable
    scheduler is the user's setting, not a bug)."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=10, set_as_default=False)
    except OSError as error:
        raise PipelineError(f"{named}: cannot reach the Dask scheduler ({error})") from None
