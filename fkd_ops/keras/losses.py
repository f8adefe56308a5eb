"""Keras loss on the masked-RMSE op."""

from __future__ import annotations

import keras
import tensorflow as tf

from fkd_ops.ops.wrappers import masked_rmse


@keras.saving.register_keras_serializable(package="fkd_ops")
class MaskedRmseLoss(keras.losses.Loss):
    """RMSE (or MSE with ``squared=True``) over the targets that are not NaN.

    The whole batch is one reduction: the loss is sqrt(sum of squared errors /
    number of present targets), not a mean of per-sample RMSEs, so rows with few
    keypoints weigh what their keypoints weigh. Sample weights are not supported
    (the op has none) and raise.
    """

    def __init__(self, squared: bool = False, name: str = "masked_rmse", dtype=None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.squared = bool(squared)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("MaskedRmseLoss does not support sample_weight: mark missing targets with NaN instead")
        return super().__call__(y_true, y_pred)

    def call(self, y_true, y_pred):
        y_pred = tf.cast(y_pred, self.dtype)
        y_true = tf.cast(y_true, self.dtype)
        return masked_rmse(y_pred, y_true, squared=self.squared).loss

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(squared=self.squared)
        config.pop("reduction", None)
        return config
