"""The masked RMSE as the loss of a tiny Keras model: `fit` runs on targets with
NaN (missing keypoints) and the loss falls, with the op (no XLA) and with XLA
(as Keras compiles on a GPU by default), where the op runs as its pure-TF twin."""

from __future__ import annotations

import numpy as np
import oracles
import pytest
import tensorflow as tf

import fkd_ops


def masked_rmse_loss(y_true, y_pred):
    return fkd_ops.masked_rmse(y_pred, y_true).loss


@pytest.mark.parametrize("jit_compile", [False, True])
def test_tiny_model_fits_with_nan_targets(jit_compile):
    keras = tf.keras
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(128, 8)).astype(np.float32)
    targets = (features @ rng.normal(size=(8, 30)) * 0.3).astype(np.float32)
    targets[rng.random(targets.shape) < 0.6] = np.nan  # most keypoints missing, as in Kaggle's file
    targets[:5] = np.nan  # and a few rows with none at all
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(30)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=masked_rmse_loss, jit_compile=jit_compile)
    history = model.fit(features, targets, batch_size=32, epochs=15, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < 0.3 * losses[0], losses
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    # The model's own prediction, scored by the numpy oracle, agrees with the op.
    predictions = model.predict(features, verbose=0)
    expected = oracles.masked_rmse(predictions, targets)[0]
    np.testing.assert_allclose(fkd_ops.masked_rmse(predictions, targets).loss.numpy(), expected, rtol=1e-5)
    assert expected < 0.3 * losses[0]
