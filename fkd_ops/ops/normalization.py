"""Image normalization settings, checked once for every face that takes them (the
op wrappers, the Keras layer, the input pipeline, the command line). No TensorFlow."""

from __future__ import annotations

import math

NORMALIZE_MODES: tuple[str, ...] = ("scale", "standardize", "affine")
"""What :func:`fkd_ops.normalize_images` can do: ``x * scale``, per-image
standardization, or ``(x - mean) / stddev``."""

IMAGE_NORMALIZATIONS: tuple[str, ...] = ("scale", "standardize")
"""The modes that need no statistics of a data set, which the input pipeline, the
networks and ``fkd-ops train --normalization`` offer."""

DEFAULT_SCALE: float = 1.0 / 255.0
"""``scale`` mode's default factor: uint8 pixels to [0, 1]."""


def check_normalization(mode: str, scale: float, mean: float, stddev: float) -> dict:
    """Validates normalization settings; returns them as the ops' attributes."""
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"mode must be one of {NORMALIZE_MODES}, got {mode!r}")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    if mode == "affine" and not (math.isfinite(stddev) and stddev > 0 and math.isfinite(mean)):
        raise ValueError(f"affine normalization needs a finite mean and stddev > 0, got mean {mean}, stddev {stddev}")
    return {"mode": mode, "scale": float(scale), "mean": float(mean), "stddev": float(stddev)}
