"""The Kaggle keypoint layout: 15 named points, 30 columns (x, y interleaved),
and the map between pixel coordinates and the networks' targets.

The foundation every layer of fkd_ops shares: plain Python, no TensorFlow.
Coordinates are continuous pixel coordinates on a 96 x 96 image: pixel column i
spans [i, i + 1), so a horizontal flip maps x to 96 - x.
"""

from __future__ import annotations

IMAGE_SIZE: int = 96
"""Width and height of every image in the competition."""

KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)
"""The 15 points in Kaggle's column order."""

NUM_KEYPOINTS: int = len(KEYPOINT_NAMES)

KEYPOINT_COLUMNS: tuple[str, ...] = tuple(f"{name}_{axis}" for name in KEYPOINT_NAMES for axis in ("x", "y"))
"""The 30 coordinate columns of training.csv, x then y for each point."""

NUM_COORDINATES: int = len(KEYPOINT_COLUMNS)


def _index(name: str) -> int:
    return KEYPOINT_NAMES.index(name)


FLIP_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (_index(f"left_{part}"), _index(f"right_{part}"))
    for part in (
        "eye_center",
        "eye_inner_corner",
        "eye_outer_corner",
        "eyebrow_inner_end",
        "eyebrow_outer_end",
    )
) + ((_index("mouth_left_corner"), _index("mouth_right_corner")),)
"""Point index pairs (left, right) that swap under a horizontal flip. The nose tip
and both lip centres map to themselves."""


TARGET_CENTER: float = IMAGE_SIZE / 2
"""The pixel coordinate that maps to network target 0 (the image centre)."""
TARGET_SCALE: float = IMAGE_SIZE / 2
"""Pixels per network target unit: targets span about [-1, 1]."""


def pixels_to_targets(pixels):
    """Pixel coordinates -> network targets, ``(v - 48) / 48`` (numpy, TF or floats; NaN stays NaN)."""
    return (pixels - TARGET_CENTER) / TARGET_SCALE


def targets_to_pixels(targets):
    """Network targets -> pixel coordinates, ``t * 48 + 48`` (numpy, TF or floats)."""
    return targets * TARGET_SCALE + TARGET_CENTER
