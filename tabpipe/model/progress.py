"""Training's progress on its log: a line per finished configuration, with the time elapsed and an
estimate of what is left, and a heartbeat while none finishes (tabpipe/model/search.py reports to it)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    """One configuration's cross-validation in one round, reported the moment it finishes."""

    candidate: str
    index: int
    total: int
    params: dict[str, Any]
    mean: float
    std: float
    seconds: float


class Progress:
    """Logs each finished configuration with the elapsed time and an estimate of what is left.

    Training on real data runs for minutes: a line per configuration shows it is alive and when it ends.
    """

    def __init__(self, configurations: int, folds: int, log: logging.Logger) -> None:
        self.total, self.folds, self.log = configurations, folds, log
        self.done, self.started = 0, time.perf_counter()
        self.activity, self.said = "starting", self.started

    def _say(self, message: str, *args: Any) -> None:
        self.said = time.perf_counter()
        self.log.info(message, *args)

    def doing(self, activity: str) -> None:
        """What the heartbeat names while no configuration finishes (a fit, the refit, logging the model)."""
        self.activity = activity
        self._say("%s", activity)

    @contextlib.contextmanager
    def heartbeat(self, every: float = 5.0) -> Iterator[None]:
        """A line at least every `every` seconds: one configuration's folds can take a minute on real data."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every / 5):
                if time.perf_counter() - self.said >= every:
                    self._say("still %s, %.0f s elapsed", self.activity, time.perf_counter() - self.started)

        thread = threading.Thread(target=beat, name="train-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def start(self, number: int, rounds: int, configurations: int, rows: int, of: int) -> None:
        """A round's first line: how many configurations, on how many of the training rows."""
        self.activity = f"cross-validating round {number}/{rounds}"
        self._say(
            "round %d/%d: %d configuration(s) x %d folds = %d fits, on %d of %d training rows",
            number,
            rounds,
            configurations,
            self.folds,
            configurations * self.folds,
            rows,
            of,
        )

    def __call__(self, step: Step) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        shown = ", ".join(f"{k}={v}" for k, v in step.params.items()) or "defaults"
        self._say(
            "%s %d/%d (%s): CV %.4f +/- %.4f in %.1f s | %d/%d done, %.0f s elapsed, about %.0f s left",
            step.candidate,
            step.index,
            step.total,
            shown,
            step.mean,
            step.std,
            step.seconds,
            self.done,
            self.total,
            elapsed,
            left,
        )
