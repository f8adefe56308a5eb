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
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fkd_ops.builtin_data import builtin_data  # noqa: E402
from fkd_ops.kaggle_files import read_training  # noqa: E402
from fkd_ops.keypoints import IMAGE_SIZE, KEYPOINT_COLUMNS  # noqa: E402

FULL_ROWS = 7049  # the real training.csv's row count
QUICK_ROWS = 1000


def usual_user_code(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """pandas.read_csv, then np.fromstring on each Image string."""
    frame = pd.read_csv(path)
    images = np.vstack(frame["Image"].apply(lambda text: np.fromstring(text, sep=" ")).to_numpy())
    keypoints = frame[list(KEYPOINT_COLUMNS)].to_numpy(np.float32)
    return keypoints, images.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def run(quick: bool) -> dict:
    """Times both readers on a Kaggle-format training.csv; returns the medians
    (seconds), their ratio and the file's size."""
    rows = QUICK_ROWS if quick else FULL_ROWS
    repetitions = 2 if quick else 5
    path = builtin_data(n_train=rows, n_test=0 if quick else 1783, seed=0).training

    native = read_training(path)
    keypoints, images = usual_user_code(path)
    if not (np.array_equal(native.images, images) and np.array_equal(native.keypoints, keypoints, equal_nan=True)):
        raise AssertionError("the two readers disagree")

    native_times, usual_times = [], []
    for _ in range(repetitions):  # interleaved, so both see the same machine load
        native_times.append(_timed(read_training, path))
        usual_times.append(_timed(usual_user_code, path))
    native_s, usual_s = statistics.median(native_times), statistics.median(usual_times)
    size = path.stat().st_size
    return {
        "file": str(path),
        "rows": rows,
        "bytes": size,
        "repetitions": repetitions,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "native_s": native_s,
        "usual_s": usual_s,
        "native_times_s": native_times,
        "usual_times_s": usual_times,
        "native_mb_per_s": size / native_s / 1e6,
        "speedup": usual_s / native_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS} rows, 2 repetitions")
    args = parser.parse_args()
    r = run(args.quick)
    print(f"training.csv with {r['rows']} rows, {r['bytes'] / 1e6:.1f} MB, {r['cores']} cores, "
          f"median of {r['repetitions']} interleaved runs")
    print(f"  pandas.read_csv + np.fromstring: {r['usual_s']:8.3f} s")
    print(f"  fkd_ops native reader:           {r['native_s']:8.3f} s  ({r['native_mb_per_s']:.0f} MB/s)")
    print(f"  speedup: {r['speedup']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
