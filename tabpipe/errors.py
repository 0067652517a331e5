"""One kind of error for bad input, and the stage entry point that reports it as one line."""

import logging
import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A problem with the user's data, params or environment: reported as one line, no traceback."""


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(); turn a PipelineError into one line on stderr and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        main()
    except PipelineError as error:
        for line in str(error).splitlines() or ["failed"]:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
