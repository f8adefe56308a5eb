"""Benchmark inputs shaped like the competition's (see ../shared/data/README.md).

About 30% of training rows carry all 15 points; the rest carry only the eye
centres, the nose tip and the bottom lip centre (8 of 30 columns). Targets are
normalized as the networks see them, (v - 48) / 48; images are uint8 96 x 96.
"""

from __future__ import annotations

import numpy as np

from fkd_ops.keypoints import IMAGE_SIZE, KEYPOINT_NAMES, NUM_COORDINATES, pixels_to_targets

_SPARSE_POINTS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip")
COMPLETE_FRACTION = 2140 / 7049


def _sparse_columns() -> np.ndarray:
    cols = []
    for name in _SPARSE_POINTS:
        k = KEYPOINT_NAMES.index(name)
        cols += [2 * k, 2 * k + 1]
    return np.array(cols)


def keypoints(rng: np.random.Generator, batch: int, *, normalized: bool) -> np.ndarray:
    """float32 [batch, 30]: positions of a face, NaN where Kaggle's rows usually lack them."""
    pixels = rng.uniform(20.0, 76.0, size=(batch, NUM_COORDINATES)).astype(np.float32)
    sparse = rng.random(batch) >= COMPLETE_FRACTION
    missing = np.ones(NUM_COORDINATES, dtype=bool)
    missing[_sparse_columns()] = False
    pixels[np.ix_(sparse, missing)] = np.nan
    if normalized:
        return pixels_to_targets(pixels).astype(np.float32)
    return pixels


def predictions(rng: np.random.Generator, batch: int) -> np.ndarray:
    """float32 [batch, 30] normalized predictions (no NaN), as a network outputs."""
    return rng.uniform(-0.6, 0.6, size=(batch, NUM_COORDINATES)).astype(np.float32)


def images(rng: np.random.Generator, batch: int) -> np.ndarray:
    """uint8 [batch, 96, 96] of random pixels (the ops' speed does not depend on them)."""
    return rng.integers(0, 256, size=(batch, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
