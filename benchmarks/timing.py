"""Side-by-side timing: every contender is timed in the same rounds, interleaved.

A round calls each contender once, starting from a different contender each
round, so a slow spell of a shared machine (other processes, frequency changes)
lands on all contenders alike instead of on whichever ran during it. The
statistic is the median over rounds; the quartiles say how noisy the run was.
Python's garbage collector is paused inside a timed call and run between rounds,
so a collection triggered by one contender's garbage is not billed to another.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds per unit of work (one call divided by `units`) over the rounds."""

    median_s: float
    q1_s: float
    q3_s: float
    rounds: int

    def as_dict(self) -> dict:
        return {"median_s": self.median_s, "q1_s": self.q1_s, "q3_s": self.q3_s, "rounds": self.rounds}


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def interleaved(
    contenders: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 2,
    units: Mapping[str, int] | int = 1,
) -> dict[str, Timing]:
    """Times each contender `rounds` times, interleaved, after `warmup` untimed rounds.

    Args:
      contenders: name -> a callable that does the work and returns when it is
        done (TensorFlow's eager CPU calls are synchronous).
      rounds: timed rounds; each calls every contender once.
      warmup: untimed rounds first (tracing, compilation, first-touch of memory).
      units: how many units of work one call does (per contender or for all);
        timings are reported per unit.

    Returns:
      name -> Timing, in seconds per unit.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = list(contenders)
    if not names:
        raise ValueError("contenders is empty")
    per_unit = {n: units if isinstance(units, int) else units[n] for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}
    gc_was_enabled = gc.isenabled()
    try:
        for r in range(warmup + rounds):
            start = r % len(names)
            for name in names[start:] + names[:start]:
                fn = contenders[name]
                gc.disable()
                t0 = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - t0
                if gc_was_enabled:
                    gc.enable()
                if r >= warmup:
                    samples[name].append(elapsed / per_unit[name])
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    result = {}
    for name, values in samples.items():
        q1, med, q3 = _quartiles(values)
        result[name] = Timing(median_s=med, q1_s=q1, q3_s=q3, rounds=len(values))
    return result


def net_of_floor(timings: Mapping[str, Timing], floor: str) -> dict[str, float]:
    """Median seconds per unit minus the floor's (a call that does no work), for
    every contender but the floor; never below zero."""
    base = timings[floor].median_s
    return {n: max(t.median_s - base, 0.0) for n, t in timings.items() if n != floor}
