"""Predictions in pixels and the Kaggle metric: RMSE over present keypoints."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from fkd_ops.data.pipeline import make_dataset
from fkd_ops.keypoints import KEYPOINT_NAMES, targets_to_pixels
from fkd_ops.ops.wrappers import masked_rmse


def is_predictor(model: keras.Model) -> bool:
    """Whether ``model`` takes raw pixels [B, 96, 96] and returns pixels, as
    :func:`~fkd_ops.keras.networks.build_predictor`'s models do, rather than
    normalized images [B, 96, 96, 1] and targets, as the networks do."""
    return len(model.inputs[0].shape) == 3


def predict_pixels(
    network: keras.Model,
    images: np.ndarray,
    *,
    batch_size: int = 256,
    normalization: str = "scale",
    verbose: int | str = 0,
) -> np.ndarray:
    """Keypoints in pixels [N, 30] predicted from images [N, 96, 96] (uint8) by
    a predictor, or by a network trained on images normalized by
    ``normalization`` (a predictor normalizes by itself)."""
    if is_predictor(network):
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[3] == 1:
            images = images[..., 0]
        return np.asarray(network.predict(images, batch_size=batch_size, verbose=verbose), dtype=np.float32)
    dataset = make_dataset(images, None, batch_size=batch_size, training=False, normalization=normalization)
    normalized = network.predict(dataset, verbose=verbose)
    return np.asarray(targets_to_pixels(normalized), dtype=np.float32)


def rmse_px(predictions: np.ndarray, truth: np.ndarray) -> float:
    """RMSE in pixels over the coordinates whose truth is present (not NaN)."""
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    return float(masked_rmse(p.reshape(-1), t.reshape(-1)).loss)


@dataclass(frozen=True)
class RmseReport:
    """RMSE in pixels overall and per keypoint, with how many values it covers."""

    rmse_px: float
    count: int
    per_keypoint_px: dict[str, float | None]

    def as_dict(self) -> dict:
        return {"rmse_px": self.rmse_px, "count": self.count, "per_keypoint_px": self.per_keypoint_px}


def rmse_report(predictions: np.ndarray, truth: np.ndarray) -> RmseReport:
    """Overall and per-keypoint RMSE (x and y together) in pixels; a keypoint
    that is missing everywhere reports None."""
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 2 or p.shape[1] != 2 * len(KEYPOINT_NAMES):
        raise ValueError(f"predictions and truth must both be [N, 30], got {p.shape} and {t.shape}")
    overall = masked_rmse(p.reshape(-1), t.reshape(-1))
    per_point: dict[str, float | None] = {}
    for k, name in enumerate(KEYPOINT_NAMES):
        r = masked_rmse(p[:, 2 * k : 2 * k + 2].reshape(-1), t[:, 2 * k : 2 * k + 2].reshape(-1))
        per_point[name] = float(r.loss) if float(r.count) > 0 else None
    return RmseReport(float(overall.loss), int(overall.count), per_point)


def mean_baseline_px(train_keypoints: np.ndarray, truth: np.ndarray) -> float:
    """RMSE in pixels of predicting, for every face, the mean of each training
    coordinate (over the rows where it is present)."""
    mean = np.nanmean(np.asarray(train_keypoints, dtype=np.float64), axis=0)
    return rmse_px(np.broadcast_to(mean, np.shape(truth)), truth)
