"""Keras with XLA: what Keras does by default wherever a GPU is visible
(jit_compile="auto" compiles the steps with XLA), forced here on XLA_CPU. The
networks train and the predictor predicts, saved and reloaded; the loss and the
metric equal the op; the flip layer keeps its seed state on the host and so
keeps XLA off for its model.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import fkd_ops

F32 = np.float32


def _faces(n=48, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 96, 96), dtype=np.uint8)
    targets = (images.reshape(n, -1)[:, :30] / 255.0 - 0.5).astype(F32)
    targets[rng.random(targets.shape) < 0.5] = np.nan
    return images, targets


def test_a_network_trains_and_its_predictor_predicts_under_xla(tmp_path):
    """What Keras's default does on a GPU (jit_compile="auto" -> XLA), forced on XLA_CPU."""
    images, targets = _faces()
    model = fkd_ops.build_network("cnn", seed=0)
    model.compile(optimizer=model.optimizer, loss=model.loss, metrics=[fkd_ops.MaskedRmseMetric()], jit_compile=True)
    x = fkd_ops.normalize_images(images)[..., None]
    history = model.fit(x, targets, batch_size=16, epochs=2, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]

    predictor = fkd_ops.build_predictor(model)
    eager = predictor(images[:8], training=False).numpy()  # the op, no XLA
    predictor.compile(jit_compile=True)
    np.testing.assert_allclose(predictor.predict(images[:8], verbose=0), eager, rtol=1e-4, atol=1e-3)
    path = tmp_path / "predictor.keras"
    predictor.save(path)
    reloaded = keras.models.load_model(path)
    reloaded.compile(jit_compile=True)
    np.testing.assert_allclose(reloaded.predict(images[:8], verbose=0), eager, rtol=1e-4, atol=1e-3)


def test_the_loss_and_the_metric_under_xla_equal_the_op():
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=(64, 30)).astype(F32)
    y_true[rng.random(y_true.shape) < 0.4] = np.nan
    y_pred = rng.normal(size=(64, 30)).astype(F32)
    loss, metric = fkd_ops.MaskedRmseLoss(), fkd_ops.MaskedRmseMetric()

    @tf.function(jit_compile=True)
    def compiled(t, p):
        metric.update_state(t, p)
        return loss(t, p)

    np.testing.assert_allclose(compiled(y_true, y_pred).numpy(), loss(y_true, y_pred).numpy(), rtol=1e-6)
    expected = fkd_ops.MaskedRmseMetric()
    expected.update_state(y_true, y_pred)
    np.testing.assert_allclose(metric.result().numpy(), expected.result().numpy(), rtol=1e-6)


def test_the_flip_layer_keeps_xla_off_for_its_model_and_refuses_an_xla_trace():
    flip = fkd_ops.KeypointRandomFlip(seed=3)
    assert flip.supports_jit is False
    images = keras.Input((96, 96, 1))
    keypoints = keras.Input((30,))
    x, k = flip((images, keypoints))
    out = keras.layers.Dense(30)(keras.layers.Flatten()(x)) + 0.0 * k
    model = keras.Model([images, keypoints], out)
    # Keras's "auto" (XLA on a GPU) and even an explicit True leave XLA off for this model.
    model.compile(optimizer="sgd", loss=fkd_ops.MaskedRmseLoss(), jit_compile=True)
    assert model.jit_compile is False
    data = [np.zeros((4, 96, 96, 1), F32), np.zeros((4, 30), F32)]
    history = model.fit(data, np.zeros((4, 30), F32), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # A hand-written XLA step that trains through the layer says why it cannot.
    step = tf.function(lambda a, b: flip((a, b), training=True), jit_compile=True)
    with pytest.raises(ValueError, match="jit_compile='auto'"):
        step(*data)
    # Inference passes through and compiles.
    infer = tf.function(lambda a, b: flip((a, b), training=False), jit_compile=True)
    np.testing.assert_array_equal(infer(*data)[0].numpy(), data[0])


# Two logical CPUs stand in for a host and a GPU: the model runs on /CPU:1, the
# seed state must stay on /CPU:0 (the host), and training must work there.
_SEED_ON_HOST = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, fkd_ops
    with tf.device("/CPU:1"):
        flip = fkd_ops.KeypointRandomFlip(seed=5)
        images, keypoints = keras.Input((96, 96, 1)), keras.Input((30,))
        x, k = flip((images, keypoints))
        model = keras.Model([images, keypoints], keras.layers.Dense(30)(keras.layers.Flatten()(x)) + 0.0 * k)
        model.compile(optimizer="sgd", loss=fkd_ops.MaskedRmseLoss())
        before = flip.seed_generator.state.numpy().copy()
        model.fit([np.ones((8, 96, 96, 1), "float32"), np.ones((8, 30), "float32")], np.zeros((8, 30), "float32"),
                  batch_size=4, epochs=1, verbose=0)
    print(flip.seed_generator.state.value.device)
    print(model.weights[0].value.device)
    print(int((flip.seed_generator.state.numpy() != before).any()))
""")


def test_the_flip_layers_seed_state_lives_on_the_host(tmp_path):
    # Run away from the repository root, whose unbuilt fkd_ops/ would shadow the installed package.
    done = subprocess.run(
        [sys.executable, "-c", _SEED_ON_HOST], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seed_device, weight_device, advanced = done.stdout.split()[-3:]
    assert seed_device.endswith("CPU:0") and weight_device.endswith("CPU:1"), done.stdout
    assert advanced == "1"  # the steps drew fresh seeds
