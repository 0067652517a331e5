"""Prometheus observations for a whole request at once."""

from __future__ import annotations

from typing import Any


def observe_all(histogram: Any, values: Any) -> None:
    """`histogram.observe(v)` for every value, as one increment per bucket and one of the sum.

    prometheus_client has no bulk observe, and in BentoML's multiprocess mode each increment takes a
    lock and writes to the worker's metrics file: observing a 1,000-row answer value by value took
    5.5 ms, longer than the rest of the request. This reaches into the Histogram of the pinned
    prometheus_client (its bounds, buckets and sum); a unit test holds it to `observe`.
    """
    import numpy as np

    values = np.asarray(values, dtype="float64").ravel()
    if not len(values):
        return
    bounds = np.asarray(histogram._upper_bounds, dtype="float64")
    # observe() counts a value in the first bucket whose bound is >= it; a NaN in none.
    index = np.searchsorted(bounds, values, side="left")
    buckets, counts = np.unique(index[index < len(bounds)], return_counts=True)
    histogram._sum.inc(float(values.sum()))
    for bucket, count in zip(buckets.tolist(), counts.tolist(), strict=True):
        histogram._buckets[bucket].inc(count)
