"""Pure-TensorFlow twins of every fkd_ops op: the specification and the test oracle.

Each function has the signature and the results of its namesake in
:mod:`fkd_ops.ops.wrappers`, built only from core TensorFlow ops, so its gradient comes
from TensorFlow's autodiff and it compiles under XLA. The benchmarks use these
twins as the "what a user would write instead" baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from fkd_ops.keypoints import FLIP_PAIRS
from fkd_ops.ops.normalization import DEFAULT_SCALE


class MaskedRmse(NamedTuple):
    """The outputs of :func:`masked_rmse`."""

    loss: tf.Tensor
    """sqrt(sum_sq / count), or sum_sq / count when squared; 0 when count is 0."""
    sum_sq: tf.Tensor
    """Sum of squared errors over the present elements."""
    count: tf.Tensor
    """Number of present elements (targets that are not NaN), in the input dtype."""


def masked_rmse(predictions, targets, *, squared: bool = False) -> MaskedRmse:
    """Twin of :func:`fkd_ops.masked_rmse`."""
    predictions = tf.convert_to_tensor(predictions)
    targets = tf.convert_to_tensor(targets, dtype=predictions.dtype)
    present = tf.logical_not(tf.math.is_nan(targets))
    # Fill missing targets before subtracting so no NaN reaches the gradient.
    diff = tf.where(present, predictions - tf.where(present, targets, tf.zeros_like(targets)), 0.0)
    sum_sq = tf.reduce_sum(tf.square(diff))
    count = tf.reduce_sum(tf.cast(present, predictions.dtype))
    mse = sum_sq / tf.maximum(count, 1.0)
    if squared:
        loss = mse
    else:
        # sqrt has an infinite slope at 0: take it only where mse != 0, so a
        # perfect fit or an empty mask gives zero gradients (NaN still propagates).
        is_zero = tf.equal(mse, 0.0)
        loss = tf.where(is_zero, tf.zeros_like(mse), tf.sqrt(tf.where(is_zero, tf.ones_like(mse), mse)))
    return MaskedRmse(loss, sum_sq, count)


def _with_channels(images: tf.Tensor) -> tuple[tf.Tensor, bool]:
    if images.shape.rank == 3:
        return images[..., tf.newaxis], True
    return images, False


def normalize_images(
    images,
    *,
    mode: str = "scale",
    scale: float = DEFAULT_SCALE,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype=tf.float32,
) -> tf.Tensor:
    """Twin of :func:`fkd_ops.normalize_images`."""
    dtype = tf.as_dtype(dtype)
    images = tf.convert_to_tensor(images)

    def attr(v: float) -> tf.Tensor:  # the op's scalars are float32 attributes
        return tf.constant(np.float32(v), dtype=dtype)

    if mode == "scale":
        return tf.cast(images, dtype) * attr(scale)
    if mode == "affine":
        return (tf.cast(images, dtype) - attr(mean)) / attr(stddev)
    if mode != "standardize":
        raise ValueError(f"unknown mode {mode!r}")
    x, squeeze = _with_channels(images)
    if dtype == tf.float32 and images.dtype != tf.float64:
        y = tf.image.per_image_standardization(x)
    else:
        # per_image_standardization computes in float32 whatever the input: do
        # the same math in float64 so the twin is float64-accurate.
        x = tf.cast(x, tf.float64)
        n = tf.cast(tf.reduce_prod(tf.shape(x)[-3:]), tf.float64)
        m = tf.reduce_mean(x, axis=[-1, -2, -3], keepdims=True)
        std = tf.math.reduce_std(x, axis=[-1, -2, -3], keepdims=True)
        y = tf.cast((x - m) / tf.maximum(std, tf.math.rsqrt(n)), dtype)
    return y[..., 0] if squeeze else y


def _remap_keypoints(keypoints: tf.Tensor, pairs: Sequence[Sequence[int]], x_offset) -> tf.Tensor:
    k = keypoints.shape[-1] // 2
    partner = list(range(k))
    for left, right in pairs:
        partner[left], partner[right] = right, left
    points = tf.reshape(keypoints, [-1, k, 2])
    # An explicit int32 constant: an empty list (no points) would convert to float.
    swapped = tf.gather(points, tf.constant(partner, dtype=tf.int32), axis=1)
    x = tf.cast(x_offset, keypoints.dtype) - swapped[..., 0]
    return tf.reshape(tf.stack([x, swapped[..., 1]], axis=-1), tf.shape(keypoints))


def flip_horizontal(
    images,
    keypoints,
    flip,
    *,
    pairs: Sequence[Sequence[int]] = FLIP_PAIRS,
    pixel_centers: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Twin of :func:`fkd_ops.flip_horizontal`."""
    images = tf.convert_to_tensor(images)
    keypoints = tf.convert_to_tensor(keypoints)
    flip = tf.convert_to_tensor(flip, dtype=tf.bool)
    x, squeeze = _with_channels(images)
    mirrored = tf.image.flip_left_right(x)
    out = tf.where(flip[:, tf.newaxis, tf.newaxis, tf.newaxis], mirrored, x)
    width = tf.shape(x)[2] - (1 if pixel_centers else 0)
    remapped = _remap_keypoints(keypoints, pairs, width)
    out_kp = tf.where(flip[:, tf.newaxis], remapped, keypoints)
    return (out[..., 0] if squeeze else out), out_kp


_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(z: tf.Tensor) -> tf.Tensor:
    """SplitMix64's finalizer on uint64 tensors (kernels/flip.h: flip_mix64)."""

    def shift(v, n):
        return tf.bitwise.right_shift(v, tf.constant(n, tf.uint64))

    z = tf.bitwise.bitwise_xor(z, shift(z, 30)) * tf.constant(0xBF58476D1CE4E5B9, tf.uint64)
    z = tf.bitwise.bitwise_xor(z, shift(z, 27)) * tf.constant(0x94D049BB133111EB, tf.uint64)
    return tf.bitwise.bitwise_xor(z, shift(z, 31))


def flip_decisions(seed, batch_size, probability: float = 0.5) -> tf.Tensor:
    """The decisions of the random flip ops: bool [batch_size] from a seed [2]."""
    s = tf.bitcast(tf.cast(tf.convert_to_tensor(seed), tf.int64), tf.uint64)
    golden = tf.constant(_GOLDEN, tf.uint64)
    key = _mix64(tf.bitwise.bitwise_xor(s[0], _mix64(s[1] + golden)))
    i = tf.cast(tf.range(1, tf.cast(batch_size, tf.int64) + 1, dtype=tf.int64), tf.uint64)
    bits = _mix64(key + i * golden)
    u = tf.cast(tf.bitwise.right_shift(bits, tf.constant(11, tf.uint64)), tf.float64) * (2.0**-53)
    return u < float(np.float32(probability))


def random_flip(
    images,
    keypoints,
    seed,
    *,
    probability: float = 0.5,
    pairs: Sequence[Sequence[int]] = FLIP_PAIRS,
    pixel_centers: bool = False,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Twin of :func:`fkd_ops.random_flip`."""
    images = tf.convert_to_tensor(images)
    flip = flip_decisions(seed, tf.shape(images)[0], probability)
    out, kp = flip_horizontal(images, keypoints, flip, pairs=pairs, pixel_centers=pixel_centers)
    return out, kp, flip


def flip_normalize(
    images,
    keypoints,
    flip,
    *,
    mode: str = "scale",
    scale: float = DEFAULT_SCALE,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype=tf.float32,
    pairs: Sequence[Sequence[int]] = FLIP_PAIRS,
    pixel_centers: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Twin of :func:`fkd_ops.flip_normalize`."""
    out, kp = flip_horizontal(images, keypoints, flip, pairs=pairs, pixel_centers=pixel_centers)
    return normalize_images(out, mode=mode, scale=scale, mean=mean, stddev=stddev, dtype=dtype), kp


def random_flip_normalize(
    images,
    keypoints,
    seed,
    *,
    probability: float = 0.5,
    mode: str = "scale",
    scale: float = DEFAULT_SCALE,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype=tf.float32,
    pairs: Sequence[Sequence[int]] = FLIP_PAIRS,
    pixel_centers: bool = False,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Twin of :func:`fkd_ops.random_flip_normalize`."""
    out, kp, flip = random_flip(
        images, keypoints, seed, probability=probability, pairs=pairs, pixel_centers=pixel_centers
    )
    return normalize_images(out, mode=mode, scale=scale, mean=mean, stddev=stddev, dtype=dtype), kp, flip
