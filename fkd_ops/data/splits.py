"""Train/validation splits of a training set, deterministic from a seed.

Two protocols:

- ``complete``: only the rows with all 30 keypoint values (2140 of the real
  7049), a fraction held out for validation: the setup of Daniel Nouri's
  tutorial.
- ``masked``: every row; missing targets stay NaN for the masked loss.

The two are nested so that models trained under either protocol can be compared
on the same held-out faces: the masked protocol's validation rows are the
complete protocol's validation rows plus the same fraction of the incomplete
rows (drawn from the same seed). So no row a complete-protocol model validates
on is trained on under the masked protocol, and the complete protocol's
training rows are a subset of the masked protocol's.
"""

from __future__ import annotations

import numpy as np

from fkd_ops.keypoints import NUM_COORDINATES

PROTOCOLS: tuple[str, ...] = ("complete", "masked")


def complete_rows(keypoints: np.ndarray) -> np.ndarray:
    """bool [N]: the rows with all 30 keypoint values present."""
    return ~np.isnan(np.asarray(keypoints, dtype=np.float64)).any(axis=1)


def _held_out(rows: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    count = int(np.floor(fraction * len(rows) + 0.5))
    return rows[rng.permutation(len(rows))[:count]]


def split_indices(
    keypoints, protocol: str, *, seed: int = 0, validation_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation) of ``keypoints`` [N, 30] under a protocol.

    Args:
      keypoints: [N, 30], NaN = missing.
      protocol: ``"complete"`` (rows with all 30 values only) or ``"masked"`` (all rows).
      seed: the same seed gives the same split.
      validation_fraction: in [0, 1): the share of the protocol's rows held out
        (rounded to the nearest row).

    Returns:
      Two sorted int64 arrays that do not overlap.
    """
    keypoints = np.asarray(keypoints)
    if keypoints.ndim != 2 or keypoints.shape[1] != NUM_COORDINATES:
        raise ValueError(f"keypoints must have shape [N, {NUM_COORDINATES}], got {keypoints.shape}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    fraction = float(validation_fraction)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    rng = np.random.default_rng(int(seed))
    complete = complete_rows(keypoints)
    validation = _held_out(np.flatnonzero(complete), fraction, rng)
    if protocol == "complete":
        rows = np.flatnonzero(complete)
    else:
        rows = np.arange(len(keypoints))
        validation = np.concatenate([validation, _held_out(np.flatnonzero(~complete), fraction, rng)])
    validation = np.sort(validation).astype(np.int64)
    train = np.setdiff1d(rows, validation).astype(np.int64)
    return train, validation
