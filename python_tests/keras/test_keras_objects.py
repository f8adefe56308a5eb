"""The Keras loss, metric and layers built on the ops."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import fkd_ops
from fkd_ops import reference


def _targets(rng, n, missing=0.6):
    t = rng.normal(size=(n, 30)).astype(np.float32)
    t[rng.random(t.shape) < missing] = np.nan
    return t


def test_metric_equals_the_op_on_the_whole_dataset():
    rng = np.random.default_rng(1)
    truth, pred = _targets(rng, 203), rng.normal(size=(203, 30)).astype(np.float32)
    metric = fkd_ops.MaskedRmseMetric(scale=48.0)
    batch_rmses = []
    for start in range(0, 203, 32):  # uneven last batch on purpose
        metric.update_state(truth[start : start + 32], pred[start : start + 32])
        batch_rmses.append(float(fkd_ops.masked_rmse(pred[start : start + 32], truth[start : start + 32]).loss))
    whole = 48.0 * float(fkd_ops.masked_rmse(pred.astype(np.float64), truth.astype(np.float64)).loss)
    assert float(metric.result()) == pytest.approx(whole, rel=1e-6)
    # The reason it exists: the average of batch RMSEs is a different number.
    assert 48.0 * np.mean(batch_rmses) != pytest.approx(whole, rel=1e-4)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_metric_with_no_present_target_is_zero_not_nan():
    metric = fkd_ops.MaskedRmseMetric()
    metric.update_state(np.full((4, 30), np.nan, np.float32), np.zeros((4, 30), np.float32))
    assert float(metric.result()) == 0.0


def test_loss_matches_twin_and_rejects_sample_weights():
    rng = np.random.default_rng(2)
    truth, pred = _targets(rng, 16), rng.normal(size=(16, 30)).astype(np.float32)
    loss = fkd_ops.MaskedRmseLoss()
    assert float(loss(truth, pred)) == pytest.approx(float(reference.masked_rmse(pred, truth).loss), rel=1e-6)
    squared = fkd_ops.MaskedRmseLoss(squared=True)
    assert float(squared(truth, pred)) == pytest.approx(float(loss(truth, pred)) ** 2, rel=1e-5)
    with pytest.raises(ValueError, match="sample_weight"):
        loss(truth, pred, sample_weight=np.ones(16, np.float32))


@pytest.mark.parametrize(
    "obj",
    [
        fkd_ops.MaskedRmseLoss(squared=True),
        fkd_ops.MaskedRmseMetric(scale=2.0, name="m"),
        fkd_ops.ImageNormalization(mode="affine", mean=100.0, stddev=50.0),
        fkd_ops.KeypointRandomFlip(probability=0.25, seed=3),
        fkd_ops.TargetsToPixels(center=1.0, scale=2.0),
    ],
)
def test_objects_serialize_by_registered_name(obj):
    config = keras.saving.serialize_keras_object(obj)
    assert config["registered_name"] == f"fkd_ops>{type(obj).__name__}"
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(obj)
    assert clone.get_config() == obj.get_config()


def test_image_normalization_layer_runs_the_op():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (3, 96, 96), dtype=np.uint8)
    layer = fkd_ops.ImageNormalization(mode="standardize")
    np.testing.assert_allclose(layer(images), reference.normalize_images(images, mode="standardize"), atol=1e-5)
    with pytest.raises(ValueError, match="mode"):
        fkd_ops.ImageNormalization(mode="whiten")


def test_random_flip_layer_flips_in_training_only():
    rng = np.random.default_rng(4)
    images = rng.random((64, 96, 96, 1)).astype(np.float32)
    targets = rng.uniform(-1, 1, (64, 30)).astype(np.float32)
    layer = fkd_ops.KeypointRandomFlip(probability=0.5, seed=7)
    same_images, same_targets = layer((images, targets), training=False)
    np.testing.assert_array_equal(same_images, images)
    np.testing.assert_array_equal(same_targets, targets)
    out_images, out_targets = layer((images, targets), training=True)
    flipped = np.any(np.asarray(out_images) != images, axis=(1, 2, 3))
    assert 0 < flipped.sum() < 64
    # Flipped samples equal the twin's flip in pixel space; the others are untouched.
    pixels = targets * 48 + 48
    want_images, want_pixels = reference.flip_horizontal(images, pixels, flipped)
    np.testing.assert_array_equal(out_images, want_images)
    np.testing.assert_allclose(np.asarray(out_targets) * 48 + 48, want_pixels, atol=1e-4)
    with pytest.raises(ValueError, match="probability"):
        fkd_ops.KeypointRandomFlip(probability=1.5)
