"""Keras layers on the image ops: normalization, training-time random flip, and
the pixel-space output map of the inference models."""

from __future__ import annotations

import keras
import tensorflow as tf

from fkd_ops.keypoints import FLIP_PAIRS, TARGET_CENTER, TARGET_SCALE
from fkd_ops.ops.normalization import DEFAULT_SCALE, check_normalization
from fkd_ops.ops.wrappers import normalize_images, random_flip, traced_for_xla

# Where KeypointRandomFlip keeps its seed state: the random flip op reads its seed
# from host memory, so a state held on the GPU would be copied back, and waited
# for, at every training step.
SEED_DEVICE = "/CPU:0"


@keras.saving.register_keras_serializable(package="fkd_ops")
class ImageNormalization(keras.layers.Layer):
    """Normalizes images through the :func:`fkd_ops.normalize_images` op.

    Accepts [B, H, W] or [B, H, W, C] pixels of any of the op's dtypes and returns
    float32 of the same shape.
    """

    def __init__(
        self, mode: str = "scale", scale: float = DEFAULT_SCALE, mean: float = 0.0, stddev: float = 1.0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.mode, self.scale, self.mean, self.stddev = mode, float(scale), float(mean), float(stddev)
        check_normalization(mode, scale, mean, stddev)  # fail at construction, not at first call

    def call(self, images):
        if images.dtype not in (tf.uint8, tf.float32, tf.float64):
            images = tf.cast(images, tf.float32)
        return normalize_images(images, mode=self.mode, scale=self.scale, mean=self.mean, stddev=self.stddev)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "mode": self.mode,
            "scale": self.scale,
            "mean": self.mean,
            "stddev": self.stddev,
        }


@keras.saving.register_keras_serializable(package="fkd_ops")
class KeypointRandomFlip(keras.layers.Layer):
    """Training-time augmentation: mirrors each sample with ``probability`` and
    remaps its keypoints (left/right pairs swapped, x -> width - x), through the
    :func:`fkd_ops.random_flip` op. Called on ``(images, keypoints)``; returns the
    pair. Outside training it passes both through.

    Keypoints are in the coordinates given by ``x_center``/``x_scale``: the raw
    pixel value is ``x_center + x_scale * t``; the flip happens in pixels. The
    defaults match the pipeline's normalized targets ((v - 48) / 48).

    The seed state lives on the host (:data:`SEED_DEVICE`), so a training step on
    a GPU never waits for a seed to come back from it. XLA compiles a step for one
    device and cannot read a variable kept on another, so the layer says it
    cannot be compiled (``supports_jit = False``): Keras then leaves XLA off for a
    model that holds it (with ``jit_compile="auto"``, its default, and even with
    True), and a hand-written ``tf.function(jit_compile=True)`` that trains
    through it raises a ValueError saying so. Inference passes through anywhere.
    """

    def __init__(
        self,
        probability: float = 0.5,
        seed: int | None = None,
        x_center: float = TARGET_CENTER,
        x_scale: float = TARGET_SCALE,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        self.probability, self.seed = float(probability), seed
        self.x_center, self.x_scale = float(x_center), float(x_scale)
        with tf.device(SEED_DEVICE):
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = False

    def call(self, inputs, training=None):
        images, keypoints = inputs
        if not training:
            return images, keypoints
        if traced_for_xla():
            raise ValueError(
                "KeypointRandomFlip cannot train inside an XLA-compiled step (jit_compile=True): its seed state "
                "lives on the host, so that no step waits for the GPU. Compile the model with "
                "jit_compile='auto' (Keras's default, which leaves XLA off for a model holding this layer) or False."
            )
        with tf.device(SEED_DEVICE):
            seed = tf.cast(self.seed_generator.next(), tf.int64)
        pixels = keypoints * self.x_scale + self.x_center
        flipped_images, flipped_pixels, _ = random_flip(
            images, pixels, seed, probability=self.probability, pairs=FLIP_PAIRS
        )
        return flipped_images, (flipped_pixels - self.x_center) / self.x_scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "probability": self.probability,
            "seed": self.seed,
            "x_center": self.x_center,
            "x_scale": self.x_scale,
        }


@keras.saving.register_keras_serializable(package="fkd_ops")
class TargetsToPixels(keras.layers.Layer):
    """Maps normalized network outputs t to pixels: center + scale * t (by default
    :func:`fkd_ops.targets_to_pixels`)."""

    def __init__(self, center: float = TARGET_CENTER, scale: float = TARGET_SCALE, **kwargs) -> None:
        super().__init__(**kwargs)
        self.center, self.scale = float(center), float(scale)

    def call(self, targets):
        return targets * self.scale + self.center

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "center": self.center, "scale": self.scale}
