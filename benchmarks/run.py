"""Runs the benchmark sections side by side and prints a table of ratios.

    python benchmarks/run.py [--quick] [--json PATH] [--only NAME ...]

A section is a module ``benchmarks/<name>_benchmark.py`` exposing
``run(quick: bool) -> dict`` (see benchmarks/report.py for the dict the tables
are printed from). The runner runs exactly the sections that exist, in the
order of SECTION_ORDER and then by name, prints each one's timings and ratios
with the issue's targets, and writes everything to JSON (by default
runs/benchmarks.json), through a temporary file so a failed run never leaves
half a file. ``--quick`` runs every section in seconds: it proves the
benchmarks still work and measures nothing worth quoting.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script: make `benchmarks` importable. Appended, so an installed
    # fkd_ops (with its compiled libraries) wins over the source folder.
    sys.path.append(str(ROOT))

SECTION_SUFFIX = "_benchmark"
SECTION_ORDER = ("masked_rmse", "flip_normalize", "reader", "training")


def discover() -> list[str]:
    """Names of the sections present in benchmarks/, in running order."""
    here = Path(__file__).resolve().parent
    names = [p.stem[: -len(SECTION_SUFFIX)] for p in here.glob(f"*{SECTION_SUFFIX}.py")]
    rank = {n: i for i, n in enumerate(SECTION_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def machine() -> dict:
    """What the numbers were measured on."""
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": _cpu_model(),
    }
    for module in ("numpy", "tensorflow", "fkd_ops"):
        try:
            info[module] = importlib.import_module(module).__version__
        except Exception as exc:  # a missing library is worth recording, not fatal
            info[module] = f"unavailable: {exc}"
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "NO", None: "-"}[v]
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def _table(rows: list[dict], columns: list[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def render(name: str, result: dict) -> str:
    """Text of one section: its tables when it has the shape of report.section."""
    out = [f"== {name}: {result.get('title', '')}".rstrip(": ")]
    if "method" in result:
        out.append(f"method: {result['method']}")
    timings = result.get("timings")
    if timings:
        base = ["case", "contender", "median_us", "q1_us", "q3_us"]
        extra = [k for k in timings[0] if k not in base and k != "rounds"]
        out.append(_table(timings, base + extra))
    ratios = result.get("ratios")
    if ratios:
        out.append(_table(ratios, ["case", "name", "value", "target", "met"]))
    for note in result.get("notes", []):
        out.append(f"note: {note}")
    if not timings and not ratios:  # a section of another shape: show its scalars
        for key, value in result.items():
            if key not in ("title", "method", "notes"):
                out.append(f"{key}: {json.dumps(value, default=str)}")
    return "\n".join(out)


def summary(results: dict) -> str:
    """One line per target, across sections."""
    rows = [
        {"section": name, **r}
        for name, result in results.items()
        for r in result.get("ratios", [])
        if r.get("target") is not None
    ]
    if not rows:
        return "no targets"
    return _table(rows, ["section", "case", "name", "value", "target", "met"])


def write_json(path: Path, payload: dict) -> None:
    """Writes atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1, default=float)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run in seconds (no meaningful numbers)")
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "runs" / "benchmarks.json",
        help="where to write the results (default: runs/benchmarks.json)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=available,
        metavar="NAME",
        help=f"run only these sections (of: {', '.join(available)})",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    names = args.only or available
    print(f"sections: {', '.join(names)}" + (" (quick)" if args.quick else ""), flush=True)
    results: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    failed = []
    for name in names:
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}{SECTION_SUFFIX}")
            results[name] = module.run(args.quick)
        except Exception as exc:  # one broken section must not hide the others' numbers
            traceback.print_exc()
            results[name] = {"title": "FAILED", "error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        seconds[name] = time.perf_counter() - start
        print("\n" + render(name, results[name]), flush=True)
    print("\n== targets\n" + summary(results))
    payload = {
        "quick": args.quick,
        "machine": machine(),
        "section_seconds": seconds,
        "sections": results,
        "failed": failed,
    }
    write_json(args.json, payload)
    print(f"\nwrote {args.json}")
    if failed:
        print(f"failed sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
