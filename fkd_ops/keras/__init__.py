"""The Keras layer: the masked-RMSE loss (:mod:`~fkd_ops.keras.losses`), the exact
pixel RMSE metric (:mod:`~fkd_ops.keras.metrics`), the image and flip layers
(:mod:`~fkd_ops.keras.layers`) and the three networks
(:mod:`~fkd_ops.keras.networks`, whose choices live in
:mod:`~fkd_ops.keras.options` without TensorFlow).
"""
