"""Hypothesis strategies for the ops' inputs.

Hypothesis draws the structure (shapes, dtypes, how much is missing, a seed) and
numpy fills the arrays from that seed: large arrays stay cheap, and every failure
still replays from the printed example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from fkd_ops.keypoints import FLIP_PAIRS
from fkd_ops.ops.normalization import NORMALIZE_MODES

FLOAT_DTYPES = (np.float32, np.float64)
IMAGE_DTYPES = (np.uint8, np.float32, np.float64)


def rng_from(draw) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def with_missing(rng: np.random.Generator, values: np.ndarray, fraction: float) -> np.ndarray:
    values = values.copy()
    values[rng.random(values.shape) < fraction] = np.nan
    return values


# Missing fractions that hit the edges (none, all) as well as the middle.
missing_fractions = st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)


@dataclass
class RmseCase:
    predictions: np.ndarray
    targets: np.ndarray
    squared: bool


@st.composite
def rmse_cases(draw, dtypes=FLOAT_DTYPES) -> RmseCase:
    """Predictions and targets of rank 1 to 3 (batch may be 0), targets with NaN."""
    dtype = draw(st.sampled_from(dtypes))
    shape = tuple(draw(st.lists(st.integers(0, 7), min_size=1, max_size=3)))
    rng = rng_from(draw)
    targets = rng.uniform(0, 96, shape).astype(dtype)
    predictions = (targets + rng.normal(0, 5, shape)).astype(dtype)
    targets = with_missing(rng, targets, draw(missing_fractions))
    return RmseCase(predictions, targets, draw(st.booleans()))


def random_images(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.uniform(0, 255, shape).astype(dtype)


@st.composite
def image_shapes(draw, max_batch: int = 4, max_side: int = 9):
    """[B, H, W] or [B, H, W, C] with C in {1, 3}; B may be 0, H and W >= 1."""
    batch = draw(st.integers(0, max_batch))
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    channels = draw(st.sampled_from([None, 1, 3]))
    return (batch, height, width) if channels is None else (batch, height, width, channels)


@dataclass
class NormalizeCase:
    images: np.ndarray
    mode: str
    scale: float
    mean: float
    stddev: float
    out_dtype: type


@st.composite
def normalize_cases(draw, in_dtypes=IMAGE_DTYPES, modes=NORMALIZE_MODES) -> NormalizeCase:
    rng = rng_from(draw)
    shape = draw(image_shapes())
    in_dtype = draw(st.sampled_from(in_dtypes))
    images = random_images(rng, shape, in_dtype)
    if draw(st.booleans()) and images.size:  # constant images: std 0 takes the 1/sqrt(N) floor
        images[: max(1, shape[0] // 2)] = images.flat[0]
    return NormalizeCase(
        images=images,
        mode=draw(st.sampled_from(modes)),
        scale=draw(st.sampled_from([1.0 / 255.0, 1.0, 0.5, 2.0 / 255.0])),
        mean=draw(st.sampled_from([0.0, 127.5, 33.3])),
        stddev=draw(st.sampled_from([1.0, 64.0, 0.1])),
        out_dtype=draw(st.sampled_from(FLOAT_DTYPES)),
    )


@st.composite
def point_pairs(draw, num_points: int):
    """Disjoint (left, right) pairs of distinct point indices."""
    order = draw(st.permutations(list(range(num_points))))
    count = draw(st.integers(0, num_points // 2))
    return [(order[2 * i], order[2 * i + 1]) for i in range(count)]


@dataclass
class FlipCase:
    images: np.ndarray
    keypoints: np.ndarray
    flip: np.ndarray
    pairs: list
    pixel_centers: bool


@st.composite
def flip_cases(draw, image_dtypes=IMAGE_DTYPES, kaggle_layout: bool | None = None) -> FlipCase:
    """Images, keypoints with NaN, decisions, and either Kaggle's 15 points and
    pairs or a random number of points with random pairs."""
    rng = rng_from(draw)
    shape = draw(image_shapes())
    batch, width = shape[0], shape[2]
    images = random_images(rng, shape, draw(st.sampled_from(image_dtypes)))
    kaggle = draw(st.booleans()) if kaggle_layout is None else kaggle_layout
    num_points = 15 if kaggle else draw(st.integers(0, 6))
    pairs = FLIP_PAIRS if kaggle else draw(point_pairs(num_points))
    kp_dtype = draw(st.sampled_from(FLOAT_DTYPES))
    keypoints = rng.uniform(0, width, (batch, 2 * num_points)).astype(kp_dtype)
    keypoints = with_missing(rng, keypoints, draw(missing_fractions))
    flip = rng.random(batch) < draw(st.sampled_from([0.0, 0.5, 1.0]))
    return FlipCase(images, keypoints, flip, pairs, draw(st.booleans()))
