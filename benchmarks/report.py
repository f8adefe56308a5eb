"""The shape of a section's result, shared by the sections and the runner.

A section module (``benchmarks/<name>_benchmark.py``) exposes
``run(quick: bool) -> dict``. The runner prints and saves whatever JSON-able
dict it returns; a dict of the shape built here is also printed as tables:

``title``    one line naming what is compared.
``method``   what exactly is timed (the runner prints it above the tables).
``timings``  rows ``{"case", "contender", "median_us", "q1_us", "q3_us", "rounds", ...}``;
             extra keys (``gb_per_s``, ``images_per_s``...) become extra columns.
``ratios``   rows ``{"case", "name", "value", "target", "met"}``: ``value`` is how
             many times faster (or, per ``name``, what fraction); ``target`` is the
             issue's bar (None when there is none), ``met`` whether value >= target.
``notes``    free lines printed after the tables.
"""

from __future__ import annotations

from benchmarks.timing import Timing


def timing_row(case: str, contender: str, timing: Timing, **extra: float) -> dict:
    """One contender's timing on one case, in microseconds per unit of work."""
    row = {
        "case": case,
        "contender": contender,
        "median_us": timing.median_s * 1e6,
        "q1_us": timing.q1_s * 1e6,
        "q3_us": timing.q3_s * 1e6,
        "rounds": timing.rounds,
    }
    row.update(extra)
    return row


def ratio_row(case: str, name: str, value: float | None, target: float | None = None) -> dict:
    """A ratio, with the target it must reach (if any) and whether it does.
    None stands for a ratio that could not be formed (see `ratio`)."""
    return {
        "case": case,
        "name": name,
        "value": value,
        "target": target,
        "met": None if target is None or value is None else bool(value >= target),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is not positive (a
    time that vanished into the noise once the floor is subtracted)."""
    return numerator / denominator if denominator > 0 else None


def section(
    title: str, method: str, timings: list[dict], ratios: list[dict], notes: list[str] | None = None, **extra
) -> dict:
    """A section result in the shape the runner prints as tables."""
    result = {"title": title, "method": method, "timings": timings, "ratios": ratios, "notes": list(notes or [])}
    result.update(extra)
    return result
