"""The entry-point helpers: the stages' arguments, and one error line out instead of a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from tabpipe.core.errors import PipelineError


def arguments(doc: str | None, *paths: str) -> argparse.Namespace:
    """Parse `--params` and one required `--<name> PATH` per entry of `paths`.

    Paths have no defaults here: dvc.yaml passes each one, so every path is written once (in its vars).
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in paths:
        parser.add_argument(f"--{name}", type=Path, required=True)
    return parser.parse_args()


def run(main: Callable[[], int | None]) -> None:
    """Run an entry point's main(); a PipelineError becomes one line per problem on stderr and exit 1.

    main() may return an exit status (the monitor's 3 means "retrain advised").
    """
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        status = main()
    except PipelineError as error:
        for line in str(error).splitlines() or ["failed"]:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
    if status:
        sys.exit(status)
