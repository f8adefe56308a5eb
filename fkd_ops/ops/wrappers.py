"""The custom TensorFlow ops of fkd_ops, with their gradients.

Each function here wraps one C++ op (CPU, and CUDA where built) and is checked
against its pure-TF twin of the same name in :mod:`fkd_ops.ops.reference`. The op
library is loaded when the first op runs; the gradients are registered when this
module is imported (once: TensorFlow refuses a second registration).

XLA: the ops have no XLA kernels, so while a function is traced for XLA
(``tf.function(jit_compile=True)``, and Keras's train/predict steps, which
Keras compiles with XLA by default when a GPU is visible) each wrapper returns
its pure-TF twin instead, which XLA compiles and differentiates. Everywhere else
the C++ op runs.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import tensorflow as tf

# Private, but the one way to see that a graph is being built for XLA: True while
# a jit_compile function is traced (TF 2.21, pinned; python_tests/ops/test_xla.py
# checks it still behaves so).
from tensorflow.python.ops import control_flow_util

from fkd_ops.keypoints import FLIP_PAIRS
from fkd_ops.ops import reference
from fkd_ops.ops.libraries import op_library
from fkd_ops.ops.normalization import DEFAULT_SCALE, check_normalization
from fkd_ops.ops.reference import MaskedRmse

_FLOATS = (tf.float32, tf.float64)
_IMAGE_TYPES = (tf.uint8, tf.float32, tf.float64)


def traced_for_xla() -> bool:
    """True while the current function is being traced to be compiled by XLA."""
    if tf.executing_eagerly():
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def _float_tensor(value, name: str, dtype: tf.DType | None = None) -> tf.Tensor:
    t = tf.convert_to_tensor(value, dtype=dtype, name=name)
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {t.dtype.name}")
    return t


def _image_tensor(images) -> tf.Tensor:
    t = tf.convert_to_tensor(images, name="images")
    if t.dtype not in _IMAGE_TYPES:
        raise TypeError(f"images must be uint8, float32 or float64, got {t.dtype.name}")
    return t


def _flat_pairs(pairs: Sequence[Sequence[int]]) -> list[int]:
    flat: list[int] = []
    for i, pair in enumerate(pairs):
        pair = tuple(pair)
        if len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be a (left, right) pair of point indices, got {pair!r}")
        for k in pair:
            try:
                # operator.index, not int: int(0.5) would silently pair point 0.
                flat.append(operator.index(k))
            except TypeError:
                raise TypeError(f"pairs[{i}] must hold point indices (integers), got {pair!r}") from None
            if not -(2**63) <= flat[-1] < 2**63:  # the op's attribute is int64
                raise ValueError(f"pairs[{len(flat) - 1}] = {flat[-1]} is out of range")
    return flat


def _out_dtype(dtype) -> tf.DType:
    dtype = tf.as_dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"dtype must be float32 or float64, got {dtype.name}")
    return dtype


def _seed_tensor(seed) -> tf.Tensor:
    t = tf.convert_to_tensor(seed, name="seed")
    if t.dtype not in (tf.int32, tf.int64):
        raise TypeError(f"seed must be int32 or int64 (shape [2]), got {t.dtype.name}")
    return t


def masked_rmse(predictions, targets, *, squared: bool = False, name: str | None = None) -> MaskedRmse:
    """Root mean squared error over the elements whose target is not NaN.

    Args:
      predictions: float32 or float64 tensor of rank >= 1.
      targets: the same shape; NaN marks a missing keypoint, which is ignored.
      squared: return the mean squared error instead of its root.

    Returns:
      ``MaskedRmse(loss, sum_sq, count)``, all scalars. Summing ``sum_sq`` and
      ``count`` over batches or replicas gives the exact RMSE of the whole set.
      No present target gives loss 0 with zero gradients; NaN or inf in a
      prediction whose target is present propagates to the loss.
    """
    predictions = _float_tensor(predictions, "predictions")
    targets = _float_tensor(targets, "targets", dtype=predictions.dtype)
    if traced_for_xla():
        return reference.masked_rmse(predictions, targets, squared=bool(squared))
    return MaskedRmse(*op_library().fkd_masked_rmse(predictions, targets, squared=bool(squared), name=name))


def normalize_images(
    images,
    *,
    mode: str = "scale",
    scale: float = DEFAULT_SCALE,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype=tf.float32,
    name: str | None = None,
) -> tf.Tensor:
    """Normalizes images [B, H, W] or [B, H, W, C] (uint8, float32 or float64).

    Modes: ``"scale"`` gives ``x * scale`` (default 1/255, to [0, 1]);
    ``"standardize"`` gives, per image, ``(x - mean) / max(std, 1/sqrt(N))``,
    as :func:`tf.image.per_image_standardization` (NaN and inf included; where a
    float32 image's sum of squares overflows float32, TF's variance does and this
    kernel stays exact); ``"affine"`` gives
    ``(x - mean) / stddev`` with the given scalars. The scalars travel as float32
    attributes. Differentiable for float input.
    """
    attrs = check_normalization(mode, scale, mean, stddev)
    images, dtype = _image_tensor(images), _out_dtype(dtype)
    if traced_for_xla():
        return reference.normalize_images(images, dtype=dtype, **attrs)
    return op_library().fkd_normalize_images(images, Tout=dtype, name=name, **attrs)


def flip_horizontal(
    images,
    keypoints,
    flip,
    *,
    pairs: Sequence[Sequence[int]] = FLIP_PAIRS,
    pixel_centers: bool = False,
    name: str | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors the samples whose ``flip`` is true and remaps their keypoints.

    Args:
      images: [B, H, W] or [B, H, W, C], uint8, float32 or float64.
      keypoints: [B, 2K] float32 or float64, x and y interleaved, NaN = missing.
      flip: bool [B], one decision per sample.
      pairs: (left, right) point indices swapped by the flip (Kaggle's by default).
      pixel_centers: map x to W - 1 - x (pixel-centre coordinates) instead of W - x.

    Returns:
      (images, keypoints) with the flipped samples mirrored and remapped; the
      other samples unchanged. Differentiable in float images and keypoints.
    """
    keypoints = _float_tensor(keypoints, "keypoints")
    flip = tf.convert_to_tensor(flip, dtype=tf.bool, name="flip")
    flat = _flat_pairs(pairs)
    if traced_for_xla():
        return reference.flip_horizontal(
            _image_tensor(images), keypoints, flip, pairs=pairs, pixel_centers=bool(pixel_centers)
        )
    return tuple(
        op_library().fkd_flip_horizontal(
            _image_tensor(images),
            keypoints,
            flip,
            pairs=flat,
            pixel_centers=bool(pixel_centers),
            name=name,
        )
    )


def random_flip(
    images,
    keypoints,
    seed,
    *,
    probability: float = 0.5,
    pairs: Sequence[Sequence[int]] = FLIP_PAIRS,
    pixel_centers: bool = False,
    name: str | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """:func:`flip_horizontal` with decisions drawn from a stateless seed.

    ``seed`` is an int32/int64 tensor of shape [2], as for TensorFlow's stateless
    random ops: the same seed gives the same decisions, on every device.

    Returns:
      (images, keypoints, flipped): flipped is the bool [B] of decisions made.
    """
    keypoints = _float_tensor(keypoints, "keypoints")
    flat, probability = _flat_pairs(pairs), _probability(probability)
    if traced_for_xla():
        return reference.random_flip(
            _image_tensor(images),
            keypoints,
            _seed_tensor(seed),
            probability=probability,
            pairs=pairs,
            pixel_centers=bool(pixel_centers),
        )
    return tuple(
        op_library().fkd_random_flip_horizontal(
            _image_tensor(images),
            keypoints,
            _seed_tensor(seed),
            pairs=flat,
            pixel_centers=bool(pixel_centers),
            probability=probability,
            name=name,
        )
    )


def _probability(p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return p


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
    name: str | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`flip_horizontal` then :func:`normalize_images`, fused in one pass.

    The input pipeline's path from uint8 pixels to normalized float images.
    """
    keypoints = _float_tensor(keypoints, "keypoints")
    flip = tf.convert_to_tensor(flip, dtype=tf.bool, name="flip")
    attrs, dtype, flat = check_normalization(mode, scale, mean, stddev), _out_dtype(dtype), _flat_pairs(pairs)
    if traced_for_xla():
        return reference.flip_normalize(
            _image_tensor(images), keypoints, flip, dtype=dtype, pairs=pairs, pixel_centers=bool(pixel_centers), **attrs
        )
    return tuple(
        op_library().fkd_flip_normalize(
            _image_tensor(images),
            keypoints,
            flip,
            Tout=dtype,
            pairs=flat,
            pixel_centers=bool(pixel_centers),
            name=name,
            **attrs,
        )
    )


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
    name: str | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """:func:`random_flip` then :func:`normalize_images`, fused in one pass.

    Returns (images, keypoints, flipped).
    """
    keypoints = _float_tensor(keypoints, "keypoints")
    attrs, dtype, flat = check_normalization(mode, scale, mean, stddev), _out_dtype(dtype), _flat_pairs(pairs)
    probability = _probability(probability)
    if traced_for_xla():
        return reference.random_flip_normalize(
            _image_tensor(images),
            keypoints,
            _seed_tensor(seed),
            probability=probability,
            dtype=dtype,
            pairs=pairs,
            pixel_centers=bool(pixel_centers),
            **attrs,
        )
    return tuple(
        op_library().fkd_random_flip_normalize(
            _image_tensor(images),
            keypoints,
            _seed_tensor(seed),
            Tout=dtype,
            pairs=flat,
            pixel_centers=bool(pixel_centers),
            probability=probability,
            name=name,
            **attrs,
        )
    )


# ---------------------------------------------------------------- gradients
# Registered once, at import: TensorFlow refuses a second registration.


def _zeros_if_none(grad, like: tf.Tensor) -> tf.Tensor:
    return tf.zeros_like(like) if grad is None else grad


@tf.RegisterGradient("Fkd>MaskedRmse")
def _masked_rmse_grad(op, grad_loss, grad_sum_sq, _grad_count):
    predictions, targets = op.inputs
    _, sum_sq, count = op.outputs
    return op_library().fkd_masked_rmse_grad(
        predictions,
        targets,
        sum_sq,
        count,
        _zeros_if_none(grad_loss, sum_sq),
        _zeros_if_none(grad_sum_sq, sum_sq),
        squared=op.get_attr("squared"),
    )


def _normalize_attrs_of(op) -> dict:
    return {k: op.get_attr(k) for k in ("mode", "scale", "mean", "stddev")}


@tf.RegisterGradient("Fkd>NormalizeImages")
def _normalize_images_grad(op, grad):
    images = op.inputs[0]
    if images.dtype == tf.uint8:
        return [None]
    return [op_library().fkd_normalize_images_grad(grad, images, **_normalize_attrs_of(op))]


def _flip_grads(op, grad_images, grad_keypoints, flip):
    """Input gradients of a flip given its decisions; pixels pass through
    FlipHorizontalGrad (mirrored back) when the images are floating."""
    images, keypoints = op.inputs[0], op.inputs[1]
    attrs = {"pairs": op.get_attr("pairs"), "pixel_centers": op.get_attr("pixel_centers")}
    grad_keypoints = _zeros_if_none(grad_keypoints, keypoints)
    if images.dtype == tf.uint8:
        # No gradient for integer pixels; an empty image batch carries the keypoints.
        batch = tf.shape(keypoints)[0]
        empty = tf.zeros(tf.stack([batch, 0, 0]), dtype=keypoints.dtype)
        _, gk = op_library().fkd_flip_horizontal_grad(empty, grad_keypoints, flip, **attrs)
        return None, gk
    grad_images = _zeros_if_none(grad_images, op.outputs[0])
    gi, gk = op_library().fkd_flip_horizontal_grad(grad_images, grad_keypoints, flip, **attrs)
    return gi, gk


@tf.RegisterGradient("Fkd>FlipHorizontal")
def _flip_horizontal_grad(op, grad_images, grad_keypoints):
    gi, gk = _flip_grads(op, grad_images, grad_keypoints, op.inputs[2])
    return [gi, gk, None]


@tf.RegisterGradient("Fkd>RandomFlipHorizontal")
def _random_flip_horizontal_grad(op, grad_images, grad_keypoints, _grad_flipped):
    gi, gk = _flip_grads(op, grad_images, grad_keypoints, op.outputs[2])
    return [gi, gk, None]


def _flip_normalize_grads(op, grad_images, grad_keypoints, flip):
    # Normalization statistics do not change under a mirror, so the fused map is
    # N(F(x)) = F(N(x)); its adjoint mirrors the gradient back, then applies N's.
    gi, gk = _flip_grads(op, grad_images, grad_keypoints, flip)
    if gi is not None:
        gi = op_library().fkd_normalize_images_grad(gi, op.inputs[0], **_normalize_attrs_of(op))
    return gi, gk


@tf.RegisterGradient("Fkd>FlipNormalize")
def _flip_normalize_grad(op, grad_images, grad_keypoints):
    gi, gk = _flip_normalize_grads(op, grad_images, grad_keypoints, op.inputs[2])
    return [gi, gk, None]


@tf.RegisterGradient("Fkd>RandomFlipNormalize")
def _random_flip_normalize_grad(op, grad_images, grad_keypoints, _grad_flipped):
    gi, gk = _flip_normalize_grads(op, grad_images, grad_keypoints, op.outputs[2])
    return [gi, gk, None]


tf.no_gradient("Fkd>MaskedRmseGrad")
tf.no_gradient("Fkd>NormalizeImagesGrad")
tf.no_gradient("Fkd>FlipHorizontalGrad")
