"""fkd_ops: custom TensorFlow ops (C++/CUDA) for Kaggle's Facial Keypoints Detection.

The ops: :func:`masked_rmse` (the loss that ignores missing keypoints),
:func:`normalize_images`, :func:`flip_horizontal` / :func:`random_flip` (mirror
the face and remap left/right keypoints) and the fused input-pipeline paths
:func:`flip_normalize` / :func:`random_flip_normalize`. Their pure-TF twins live
in :mod:`fkd_ops.reference`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("fkd_ops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from fkd_ops.keypoints import (
    FLIP_PAIRS,
    IMAGE_SIZE,
    KEYPOINT_COLUMNS,
    KEYPOINT_NAMES,
    NUM_COORDINATES,
    NUM_KEYPOINTS,
)
from fkd_ops.ops import (
    MaskedRmse,
    flip_horizontal,
    flip_normalize,
    masked_rmse,
    normalize_images,
    random_flip,
    random_flip_normalize,
)

from fkd_ops.layers import ImageNormalization, KeypointRandomFlip, TargetsToPixels
from fkd_ops.losses import MaskedRmseLoss
from fkd_ops.metrics import MaskedRmseMetric
from fkd_ops.networks import NETWORK_NAMES, NetworkOptions, build_network, build_predictor

__all__ = [
    "ImageNormalization",
    "KeypointRandomFlip",
    "MaskedRmseLoss",
    "MaskedRmseMetric",
    "NETWORK_NAMES",
    "NetworkOptions",
    "TargetsToPixels",
    "build_network",
    "build_predictor",
    "FLIP_PAIRS",
    "IMAGE_SIZE",
    "KEYPOINT_COLUMNS",
    "KEYPOINT_NAMES",
    "NUM_COORDINATES",
    "NUM_KEYPOINTS",
    "MaskedRmse",
    "flip_horizontal",
    "flip_normalize",
    "masked_rmse",
    "normalize_images",
    "random_flip",
    "random_flip_normalize",
]
