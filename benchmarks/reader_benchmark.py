"""Reading training.csv: fkd_ops' native reader against the usual user code.

The usual code (as in Daniel Nouri's tutorial and most kernels):
``pandas.read_csv`` on the file, then ``np.fromstring(image, sep=" ")`` on each
Image string, stacked into one array. Both read the same 7049-row Kaggle-format
file (the built-in synthetic training.csv, generated once into the cache), in
interleaved repetitions; the medians are compared. The outputs are checked to
be identical before anything is timed.

Usage: python benchmarks/reader_benchmark.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fkd_ops.data.builtin import builtin_data  # noqa: E402
from fkd_ops.data.kaggle_files import read_training  # noqa: E402
from fkd_ops.keypoints import IMAGE_SIZE, KEYPOINT_COLUMNS  # noqa: E402

FULL_ROWS = 7049  # the real training.csv's row count
QUICK_ROWS = 1000


def usual_user_code(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """pandas.read_csv, then np.fromstring on each Image string."""
    frame = pd.read_csv(path)
    images = np.vstack(frame["Image"].apply(lambda text: np.fromstring(text, sep=" ")).to_numpy())
    keypoints = frame[list(KEYPOINT_COLUMNS)].to_numpy(np.float32)
    return keypoints, images.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


TARGET = 20.0  # the bar: at least 20x faster than the usual code
NATIVE = "fkd_ops native reader"
USUAL = "pandas.read_csv + np.fromstring"


def run(quick: bool) -> dict:
    """Times both readers on a Kaggle-format training.csv, interleaved; returns a
    section result (seconds per read of the whole file, MB/s, their ratio)."""
    from benchmarks.report import ratio_row, section, timing_row
    from benchmarks.timing import interleaved

    rows = QUICK_ROWS if quick else FULL_ROWS
    path = builtin_data(n_train=rows, n_test=0 if quick else 1783, seed=0).training

    native = read_training(path)
    keypoints, images = usual_user_code(path)
    if not (np.array_equal(native.images, images) and np.array_equal(native.keypoints, keypoints, equal_nan=True)):
        raise AssertionError("the two readers disagree")

    # The first reads above also warmed the page cache: no untimed round is needed.
    t = interleaved(
        {NATIVE: lambda: read_training(path), USUAL: lambda: usual_user_code(path)}, rounds=2 if quick else 5, warmup=0
    )
    size = path.stat().st_size
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    timings = [
        timing_row(f"{rows} rows", name, timing, mb_per_s=size / timing.median_s / 1e6) for name, timing in t.items()
    ]
    ratios = [ratio_row(f"{rows} rows", "usual code / native reader", t[USUAL].median_s / t[NATIVE].median_s, TARGET)]
    return section(
        "reading training.csv: fkd_ops' native reader vs pandas.read_csv + np.fromstring per Image",
        f"One unit = one read of the whole file ({size / 1e6:.1f} MB, {rows} rows, Kaggle's format, the "
        f"built-in synthetic training.csv) into keypoints [N, 30] and uint8 images [N, 96, 96]; both outputs "
        f"checked identical first; interleaved rounds, medians, {cores} cores (the native reader uses them "
        f"all, pandas one).",
        timings,
        ratios,
        file=str(path),
        rows=rows,
        bytes=size,
    )


def main() -> int:
    from benchmarks.run import render

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS} rows, 2 rounds")
    args = parser.parse_args()
    print(render("reader", run(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
