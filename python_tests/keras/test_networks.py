"""The three networks: they train with the builders' defaults, and a saved model
reloads in a fresh process with identical predictions."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fkd_ops
from fkd_ops.keras.networks import NetworkOptions, build_network, build_predictor


def _batch(seed=0, n=48):
    rng = np.random.default_rng(seed)
    images = rng.random((n, 96, 96, 1)).astype(np.float32)
    # A target that depends on the image, so there is something to learn.
    base = images.reshape(n, -1)[:, :30] - 0.5
    targets = base.astype(np.float32)
    targets[rng.random(targets.shape) < 0.5] = np.nan
    return images, targets


@pytest.mark.parametrize("name", fkd_ops.NETWORK_NAMES)
def test_network_trains_and_its_loss_falls(name):
    images, targets = _batch()
    model = build_network(name, seed=1)
    assert model.jit_compile is False  # Keras's "auto": no XLA on a machine without a GPU
    history = model.fit(images, targets, batch_size=16, epochs=4, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert model.output_shape == (None, 30)


def test_options_reach_the_model():
    model = build_network("cnn", NetworkOptions(optimizer="nesterov", learning_rate=0.01, dropout=0.5, l2=1e-4))
    names = [layer.name for layer in model.layers]
    assert ["conv1", "pool1", "dropout1", "conv2", "pool2", "dropout2", "conv3", "pool3", "dropout3"] == names[1:10]
    rates = {layer.name: layer.rate for layer in model.layers if layer.name.startswith("dropout")}
    assert rates == pytest.approx({"dropout1": 0.1, "dropout2": 0.2, "dropout3": 0.3, "dropout4": 0.5})
    assert model.optimizer.nesterov and model.get_layer("conv1").kernel_regularizer is not None
    hidden = build_network("hidden", NetworkOptions(hidden_units=37))
    assert hidden.get_layer("hidden").units == 37
    assert len(build_network("linear").layers) == 3  # input, flatten, output: no hidden layer


@pytest.mark.parametrize(
    "bad", [dict(optimizer="rmsprop"), dict(dropout=1.0), dict(learning_rate=0.0), dict(l2=-1.0), dict(hidden_units=0)]
)
def test_bad_options_raise(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        NetworkOptions(**bad)


def test_unknown_network_raises():
    with pytest.raises(ValueError, match="network must be one of"):
        build_network("resnet")


def test_saved_models_reload_in_a_fresh_process(tmp_path):
    images, targets = _batch(seed=5, n=16)
    network = build_network("cnn", seed=2)
    network.fit(images, targets, epochs=1, verbose=0)
    predictor = build_predictor(network)
    pixels = (np.random.default_rng(6).random((5, 96, 96)) * 255).astype(np.uint8)
    expected = predictor.predict(pixels, verbose=0)
    predictor.save(tmp_path / "predictor.keras")
    # The weights once, without the trained network's optimizer state (Adam's two
    # moments would make the file three times as large).
    assert (tmp_path / "predictor.keras").stat().st_size < 1.1 * 4 * network.count_params()
    predictor.export(str(tmp_path / "saved_model"), verbose=False)
    np.save(tmp_path / "pixels.npy", pixels)
    script = textwrap.dedent(f"""
        import numpy as np, keras, tensorflow as tf
        import fkd_ops  # registers the ops and the Keras objects; nothing else is needed
        pixels = np.load({str(tmp_path / "pixels.npy")!r})
        keras_model = keras.models.load_model({str(tmp_path / "predictor.keras")!r})
        np.save({str(tmp_path / "from_keras.npy")!r}, keras_model.predict(pixels, verbose=0))
        saved = tf.saved_model.load({str(tmp_path / "saved_model")!r})
        np.save({str(tmp_path / "from_saved_model.npy")!r}, saved.serve(tf.constant(pixels)).numpy())
    """)
    # Run outside the source tree, so the installed fkd_ops is the one imported.
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "from_keras.npy"), expected)
    np.testing.assert_allclose(np.load(tmp_path / "from_saved_model.npy"), expected, rtol=1e-6, atol=1e-5)
    # The predictor maps raw pixels to pixels: values around the image centre.
    assert np.all(np.abs(expected - 48) < 200)
