"""Keras metric: the exact masked RMSE of everything seen, in pixels."""

from __future__ import annotations

import keras
import tensorflow as tf

from fkd_ops.keypoints import TARGET_SCALE
from fkd_ops.ops.wrappers import masked_rmse


@keras.saving.register_keras_serializable(package="fkd_ops")
class MaskedRmseMetric(keras.metrics.Metric):
    """RMSE over all present targets seen since the last reset, times ``scale``.

    It accumulates the sum of squared errors and the count of present targets
    (in float64, summed across replicas), so the result is the RMSE of the whole
    dataset, unlike an average of batch RMSEs. With targets normalized as
    (v - 48) / 48, the default ``scale=48`` reports pixels, Kaggle's metric.
    """

    def __init__(self, scale: float = TARGET_SCALE, name: str = "rmse_px", dtype=None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.scale = float(scale)
        self.sum_sq = self.add_variable(
            shape=(), initializer="zeros", dtype="float64", name="sum_sq", aggregation="sum"
        )
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="count", aggregation="sum")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if sample_weight is not None:
            raise ValueError("MaskedRmseMetric does not support sample_weight: mark missing targets with NaN instead")
        result = masked_rmse(tf.cast(y_pred, tf.float64), tf.cast(y_true, tf.float64))
        self.sum_sq.assign_add(result.sum_sq)
        self.count.assign_add(result.count)

    def result(self):
        mse = tf.math.divide_no_nan(tf.convert_to_tensor(self.sum_sq), tf.convert_to_tensor(self.count))
        return tf.cast(self.scale * tf.sqrt(mse), self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(scale=self.scale)
        return config
