"""The tf.data pipeline: batches, normalization, and the training-time flip."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fkd_ops import reference
from fkd_ops.data.pipeline import make_dataset
from fkd_ops.keypoints import TARGET_CENTER, TARGET_SCALE, pixels_to_targets, targets_to_pixels


def _data(n: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 96, 96), dtype=np.uint8)
    keypoints = rng.uniform(1, 95, (n, 30)).astype(np.float32)
    keypoints[rng.random((n, 30)) < 0.3] = np.nan
    return images, keypoints


def _epoch(ds) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_targets_scaling_round_trip():
    assert TARGET_CENTER == TARGET_SCALE == 48.0
    kp = np.array([[0.0, 48.0, 96.0, np.nan]])
    np.testing.assert_array_equal(pixels_to_targets(kp), [[-1.0, 0.0, 1.0, np.nan]])
    np.testing.assert_allclose(targets_to_pixels(pixels_to_targets(kp)), kp)


def test_evaluation_batches_are_in_order_and_normalized():
    images, keypoints = _data(10)
    batches = _epoch(make_dataset(images, keypoints, batch_size=4, training=False))
    assert [x.shape for x, _ in batches] == [(4, 96, 96, 1), (4, 96, 96, 1), (2, 96, 96, 1)]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(keypoints))
    np.testing.assert_allclose(y, (keypoints - 48.0) / 48.0, rtol=1e-6)


def test_standardize_matches_tensorflow():
    images, keypoints = _data(3)
    x, _ = next(iter(make_dataset(images, keypoints, batch_size=3, training=False, normalization="standardize")))
    expected = tf.image.per_image_standardization(images[..., None]).numpy()
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)


def test_prediction_yields_images_only():
    images, _ = _data(5)
    out = [x.numpy() for x in make_dataset(images, None, batch_size=2, training=False)]
    assert [x.shape for x in out] == [(2, 96, 96, 1), (2, 96, 96, 1), (1, 96, 96, 1)]
    np.testing.assert_allclose(np.concatenate(out)[..., 0], images / 255.0, rtol=1e-6)


def test_every_face_flipped_equals_flipping_by_hand():
    images, keypoints = _data(6)
    ((x, y),) = _epoch(
        make_dataset(images, keypoints, batch_size=6, training=True, shuffle=False, flip_probability=1.0)
    )
    hand_images, hand_kp = reference.flip_horizontal(images, keypoints, np.ones(6, bool))
    np.testing.assert_allclose(x[..., 0], hand_images.numpy() / 255.0, rtol=1e-6)
    np.testing.assert_allclose(y, (hand_kp.numpy() - 48.0) / 48.0, rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(hand_kp.numpy()))


def test_random_flips_equal_the_reference_with_the_pipeline_seeds():
    images, keypoints = _data(12)
    seed = 5
    batches = _epoch(make_dataset(images, keypoints, batch_size=4, training=True, shuffle=False, seed=seed))
    # The pipeline draws one stateless seed [2] per batch from this stream.
    seeds = [s.numpy() for s in tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).take(3)]
    flipped_any = False
    for b, ((x, y), s) in enumerate(zip(batches, seeds)):
        rows = slice(4 * b, 4 * b + 4)
        hand_x, hand_kp, flipped = reference.random_flip_normalize(images[rows], keypoints[rows], s)
        np.testing.assert_allclose(x[..., 0], hand_x.numpy(), rtol=1e-6)
        np.testing.assert_allclose(y, pixels_to_targets(hand_kp.numpy()), rtol=1e-6)
        flipped_any |= bool(np.any(flipped.numpy()))
    assert flipped_any


def test_no_flip_outside_training():
    images, keypoints = _data(4)
    ((x, y),) = _epoch(make_dataset(images, keypoints, batch_size=4, training=False, flip_probability=1.0))
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)


def _same(a, b) -> bool:
    return all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1], equal_nan=True) for p, q in zip(a, b))


def test_training_is_reproducible_and_differs_per_epoch():
    images, keypoints = _data(16)
    runs = []
    for _ in range(2):
        ds = make_dataset(images, keypoints, batch_size=4, training=True, seed=9)
        runs.append([_epoch(ds), _epoch(ds)])
    assert _same(runs[0][0], runs[1][0]) and _same(runs[0][1], runs[1][1])  # run to run
    assert not _same(runs[0][0], runs[0][1])  # epoch to epoch
    # The flips alone also change per epoch (not only the shuffle order).
    ds = make_dataset(images, keypoints, batch_size=16, training=True, shuffle=False, seed=9)
    first, second = _epoch(ds), _epoch(ds)
    assert not np.array_equal(first[0][0], second[0][0])
    other = _epoch(make_dataset(images, keypoints, batch_size=16, training=True, shuffle=False, seed=10))
    assert not np.array_equal(first[0][0], other[0][0])


def test_shuffle_keeps_pairs_together():
    images, keypoints = _data(9)
    ds = make_dataset(images, keypoints, batch_size=9, training=True, flip_probability=0.0, seed=1)
    ((x, y),) = _epoch(ds)
    order = [int(np.flatnonzero((np.abs(images / 255.0 - xi[..., 0]) < 1e-6).all(axis=(1, 2)))[0]) for xi in x]
    assert sorted(order) == list(range(9)) and order != list(range(9))
    np.testing.assert_allclose(y, pixels_to_targets(keypoints[order]), rtol=1e-6)


@pytest.mark.parametrize(
    "training, with_keypoints, normalization",
    [
        (True, True, "scale"),
        (True, True, "standardize"),
        (False, True, "scale"),
        (False, False, "standardize"),
    ],
)
def test_pure_tf_twins_build_the_same_batches(training, with_keypoints, normalization):
    # ops=reference swaps the custom ops for the pure-TF twins and nothing else:
    # same shuffle, same flips, same values (the training benchmark relies on it).
    images, keypoints = _data(11)
    kp = keypoints if with_keypoints else None

    def epochs(ops):
        ds = make_dataset(
            images,
            kp,
            batch_size=4,
            training=training,
            seed=3,
            normalization=normalization,
            **({} if ops is None else {"ops": ops}),
        )
        return [
            [tuple(np.atleast_1d(t.numpy()) for t in (b if with_keypoints else (b,))) for b in ds] for _ in range(2)
        ]

    ours, twins = epochs(None), epochs(reference)
    assert len(ours[0]) == len(twins[0]) == 3
    for epoch_ours, epoch_twins in zip(ours, twins):
        for got, want in zip(epoch_twins, epoch_ours):
            for g, w in zip(got, want):
                assert g.shape == w.shape
                np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    if training:  # the two epochs differ, for both alike
        assert not np.allclose(ours[0][0][0], ours[1][0][0])


@pytest.mark.parametrize("training, with_keypoints", [(True, True), (False, True), (False, False)])
def test_autotuner_is_off(training, with_keypoints):
    """With tf.data's autotuner on, ending an epoch (Keras drops the iterator)
    waits for the tuner's next wake-up, which comes after ever longer sleeps:
    seconds lost per epoch. Every dataset make_dataset builds must have it off."""
    images, keypoints = _data(4)
    ds = make_dataset(images, keypoints if with_keypoints else None, batch_size=2, training=training)
    assert ds.options().autotune.enabled is False
    assert len(_epoch(ds) if with_keypoints else list(ds)) == 2


def test_ops_must_provide_the_pipeline_functions():
    images, keypoints = _data(2)
    with pytest.raises(TypeError, match="ops must provide random_flip_normalize and normalize_images"):
        make_dataset(images, keypoints, batch_size=2, training=True, ops=object())
    no_flip = type("NoFlip", (), {"normalize_images": staticmethod(reference.normalize_images)})
    with pytest.raises(TypeError, match="lacks random_flip_normalize"):
        make_dataset(images, keypoints, batch_size=2, training=False, ops=no_flip)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"keypoints": None, "training": True}, ValueError, "training needs keypoints"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"normalization": "minmax"}, ValueError, "normalization must be one of"),
        ({"flip_probability": 1.5}, ValueError, "flip_probability must be in"),
        ({"images": np.zeros((2, 64, 64), np.uint8)}, ValueError, "images must have shape"),
        ({"keypoints": np.zeros((3, 30))}, ValueError, "keypoints must have shape"),
        ({"images": np.zeros((2, 96, 96), np.int32)}, TypeError, "images must be uint8"),
    ],
)
def test_bad_arguments(kwargs, error, words):
    images, keypoints = _data(2)
    args = {"images": images, "keypoints": keypoints, "batch_size": 2, "training": False, **kwargs}
    with pytest.raises(error, match=words):
        make_dataset(args.pop("images"), args.pop("keypoints"), **args)
