"""The tf.data input pipeline: shuffle, batch, random flip, normalization, prefetch.

Images go through the package's ops: in training, :func:`fkd_ops.random_flip_normalize`
mirrors each face with probability ``flip_probability`` (remapping its keypoints)
and normalizes it in one pass, with stateless seeds drawn from ``seed``, so a run
is reproducible: each epoch flips differently, and two runs with one seed flip
alike. Outside training, :func:`fkd_ops.normalize_images` only normalizes.
``ops=fkd_ops.ops.reference`` builds the same pipeline from the pure-TF twins instead
(the baseline the training benchmark compares against).

Targets are keypoints scaled to about [-1, 1]: (v - 48) / 48, NaN kept for the
missing ones (the masked loss ignores them).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import tensorflow as tf

from fkd_ops.keypoints import IMAGE_SIZE, NUM_COORDINATES, pixels_to_targets
from fkd_ops.ops import wrappers
from fkd_ops.ops.normalization import IMAGE_NORMALIZATIONS

_PIPELINE_OPS = ("random_flip_normalize", "normalize_images")
"""What make_dataset calls from its ``ops`` module."""
# Batches mapped at once and batches prefetched (see make_dataset on why fixed).
_PARALLEL_BATCHES = 2
_PREFETCH_BATCHES = 2


def make_dataset(
    images,
    keypoints,
    *,
    batch_size: int,
    training: bool,
    seed: int = 0,
    flip_probability: float = 0.5,
    normalization: str = "scale",
    shuffle: bool | None = None,
    ops: ModuleType = wrappers,
) -> tf.data.Dataset:
    """A dataset of batches ``(images, targets)``, or ``images`` alone when
    ``keypoints`` is None (for prediction).

    Args:
      images: uint8 [N, 96, 96] (or [N, 96, 96, 1]), e.g. ``TrainingSet.images``.
      keypoints: float [N, 30] in pixels, NaN = missing; or None.
      batch_size: faces per batch (the last batch may be smaller).
      training: shuffle and randomly flip (needs keypoints); otherwise neither,
        unless ``shuffle`` says so.
      seed: seeds the shuffle order and the flips.
      flip_probability: chance that a training face is mirrored.
      normalization: one of IMAGE_NORMALIZATIONS.
      shuffle: overrides the default (shuffle when training).
      ops: where ``random_flip_normalize`` and ``normalize_images`` come from:
        :mod:`fkd_ops.ops.wrappers` (the default, the custom ops) or a module with the
        same signatures and results, such as :mod:`fkd_ops.ops.reference` (the
        pure-TF twins: the baseline the training benchmark times).

    Yields:
      images float32 [B, 96, 96, 1]; targets float32 [B, 30] = (v - 48) / 48.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"images must have shape [N, {IMAGE_SIZE}, {IMAGE_SIZE}] (or [..., 1]), got {images.shape}")
    if images.dtype not in (np.uint8, np.float32, np.float64):
        raise TypeError(f"images must be uint8, float32 or float64, got {images.dtype}")
    if keypoints is not None:
        keypoints = np.asarray(keypoints, dtype=np.float32)
        if keypoints.shape != (len(images), NUM_COORDINATES):
            raise ValueError(
                f"keypoints must have shape [{len(images)}, {NUM_COORDINATES}] to match images, got {keypoints.shape}"
            )
    elif training:
        raise ValueError("training needs keypoints (the flips remap them); pass training=False to predict")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if normalization not in IMAGE_NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {IMAGE_NORMALIZATIONS}, got {normalization!r}")
    if not 0.0 <= float(flip_probability) <= 1.0:
        raise ValueError(f"flip_probability must be in [0, 1], got {flip_probability!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    missing = [name for name in _PIPELINE_OPS if not callable(getattr(ops, name, None))]
    if missing:
        raise TypeError(
            f"ops must provide {' and '.join(_PIPELINE_OPS)} (like fkd_ops.ops.wrappers), "
            f"{ops!r} lacks {', '.join(missing)}"
        )
    random_flip_normalize, normalize_images = ops.random_flip_normalize, ops.normalize_images
    shuffle = training if shuffle is None else bool(shuffle)

    ds = tf.data.Dataset.from_tensor_slices(images if keypoints is None else (images, keypoints))
    if shuffle and len(images) > 1:
        ds = ds.shuffle(len(images), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size))

    if training:
        # One stateless seed [2] per batch. The stream is re-drawn each time the
        # dataset is iterated (each epoch), the same way in every run with this seed.
        seeds = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True).batch(2)
        probability = float(flip_probability)

        def augment(batch, flip_seed):
            x, k = batch
            x, k, _ = random_flip_normalize(x, k, flip_seed, probability=probability, mode=normalization)
            return x[..., tf.newaxis], pixels_to_targets(k)

        ds = tf.data.Dataset.zip((ds, seeds)).map(augment, num_parallel_calls=_PARALLEL_BATCHES)
    elif keypoints is None:
        ds = ds.map(
            lambda x: normalize_images(x, mode=normalization)[..., tf.newaxis], num_parallel_calls=_PARALLEL_BATCHES
        )
    else:
        ds = ds.map(
            lambda x, k: (normalize_images(x, mode=normalization)[..., tf.newaxis], pixels_to_targets(k)),
            num_parallel_calls=_PARALLEL_BATCHES,
        )
    # Fixed settings, tf.data's autotuner off: the tuner's thread sleeps for a
    # period that doubles up to 60 s, and destroying an iterator (Keras does at
    # the end of every epoch) waits for its next wake-up. With it on, a 2.6 s
    # CNN epoch took 5.1 s in 6 fits of 9 here. A batch is one fused op call
    # that already uses every core when it is large, so two in flight suffice.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(_PREFETCH_BATCHES).with_options(options)
