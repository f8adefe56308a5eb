"""The three networks: no hidden layer, one hidden layer, and a convolutional net.

Each builder returns a compiled Keras model that maps normalized images
[B, 96, 96, 1] to normalized keypoints [B, 30] ((v - 48) / 48), trained with the
masked-RMSE loss and reporting the exact RMSE in pixels. Models are compiled
with Keras's defaults: where a GPU is visible Keras compiles the steps with XLA,
and the ops, which have no XLA kernels, run there as their pure-TF twins.
"""

from __future__ import annotations

import keras
import numpy as np

from fkd_ops.keras.layers import ImageNormalization, TargetsToPixels
from fkd_ops.keras.losses import MaskedRmseLoss
from fkd_ops.keras.metrics import MaskedRmseMetric
from fkd_ops.keras.options import DEFAULT_LEARNING_RATES, NETWORK_NAMES, NetworkOptions
from fkd_ops.keypoints import IMAGE_SIZE, NUM_COORDINATES


def _regularizer(options: NetworkOptions):
    return keras.regularizers.L2(options.l2) if options.l2 > 0 else None


def _dense(units: int, options: NetworkOptions, name: str, activation: str | None = "relu"):
    return keras.layers.Dense(units, activation=activation, kernel_regularizer=_regularizer(options), name=name)


def _body(name: str, x, options: NetworkOptions):
    if name == "linear":
        return keras.layers.Flatten(name="flatten")(x)
    if name == "hidden":
        x = keras.layers.Flatten(name="flatten")(x)
        x = _dense(options.hidden_units, options, "hidden")(x)
        return keras.layers.Dropout(options.dropout, name="dropout")(x) if options.dropout else x
    # Nouri's net2..net6: 32@3x3, 64@2x2, 128@2x2 (valid padding, ReLU), each
    # followed by 2x2 max pooling, then two dense layers of 500.
    for stage, (filters, kernel) in enumerate(((32, 3), (64, 2), (128, 2)), start=1):
        x = keras.layers.Conv2D(
            filters, kernel, activation="relu", kernel_regularizer=_regularizer(options), name=f"conv{stage}"
        )(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        if options.dropout:
            x = keras.layers.Dropout(options.dropout * stage / 5, name=f"dropout{stage}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i in (4, 5):
        x = _dense(500, options, f"hidden{i}")(x)
        if options.dropout and i == 4:
            x = keras.layers.Dropout(options.dropout, name="dropout4")(x)
    return x


def make_optimizer(options: NetworkOptions, network: str) -> keras.optimizers.Optimizer:
    """The optimizer the options describe for ``network`` (one of NETWORK_NAMES,
    for its default learning rate), with its learning-rate schedule."""
    if options.learning_rate is None and network not in NETWORK_NAMES:
        raise ValueError(f"no default learning rate for a network called {network!r}: set learning_rate")
    start = options.learning_rate or DEFAULT_LEARNING_RATES[(options.optimizer, network)]
    rate = start
    if options.final_learning_rate is not None and options.decay_steps > 0:
        rate = keras.optimizers.schedules.PolynomialDecay(
            start, options.decay_steps, end_learning_rate=options.final_learning_rate, power=1.0
        )
    if options.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate)
    return keras.optimizers.SGD(learning_rate=rate, momentum=options.momentum, nesterov=True)


def compile_network(model: keras.Model, options: NetworkOptions) -> keras.Model:
    """Compiles with the masked-RMSE loss and the exact pixel RMSE metric, with
    Keras's default ``jit_compile="auto"``: XLA where a GPU is visible (the ops
    then run as their pure-TF twins inside the compiled step), none on a CPU."""
    model.compile(
        optimizer=make_optimizer(options, model.name),
        loss=MaskedRmseLoss(),
        metrics=[MaskedRmseMetric(name="rmse_px")],
    )
    return model


def build_network(
    name: str, options: NetworkOptions | None = None, *, seed: int | None = None, mean_target=None
) -> keras.Model:
    """Builds and compiles one of :data:`NETWORK_NAMES`.

    Args:
      name: ``linear`` (9216 -> 30), ``hidden`` (9216 -> units -> 30) or ``cnn``.
      options: optimizer and regularization choices.
      seed: seeds weight initialization (keras.utils.set_random_seed) when given.
      mean_target: [30] mean normalized training target; the output bias starts
        there. With the output kernel starting at zero, every network starts
        exactly at the predict-the-mean baseline instead of at random outputs
        tens of pixels off (a random 9216-input projection) that the first
        epochs would spend undoing.
    """
    if name not in NETWORK_NAMES:
        raise ValueError(f"network must be one of {NETWORK_NAMES}, got {name!r}")
    options = options or NetworkOptions()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="images")
    bias = "zeros" if mean_target is None else keras.initializers.Constant(np.asarray(mean_target, np.float32))
    head = keras.layers.Dense(
        NUM_COORDINATES,
        kernel_initializer="zeros",
        kernel_regularizer=_regularizer(options),
        bias_initializer=bias,
        name="keypoints",
    )
    outputs = head(_body(name, inputs, options))
    return compile_network(keras.Model(inputs, outputs, name=name), options)


def build_predictor(network: keras.Model, *, normalization: str = "scale") -> keras.Model:
    """Wraps a trained network for deployment: raw pixels [B, 96, 96] (uint8 or
    0..255 floats) in, keypoints in pixels [B, 30] out. The normalization runs
    through the fkd_ops op inside the model, so a saved predictor needs only
    ``import fkd_ops`` to reload. The predictor holds a copy of the network's
    weights (``predictor.get_layer(network.name)``), without optimizer state."""
    # An uncompiled copy: a compiled network brings its optimizer's state (two
    # more copies of the weights with Adam) into the saved predictor, and so does
    # keras.models.clone_model, which compiles its clone.
    body = type(network).from_config(network.get_config())
    body.set_weights(network.get_weights())
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="uint8", name="pixels")
    x = ImageNormalization(mode=normalization, name="normalize")(images)
    x = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="channel")(x)
    x = body(x)
    outputs = TargetsToPixels(name="to_pixels")(x)
    return keras.Model(images, outputs, name=f"{network.name}_predictor")
