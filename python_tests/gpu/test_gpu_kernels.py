"""Every GPU kernel (forward and gradient) equals the CPU kernel on random inputs.

Each test runs on each backend of the `face` fixture: the CUDA kernels where a
GPU is present, and everywhere the emulation (the same kernel bodies on the
CPU). The reference is the CPU kernel through the numpy face of `_native`.
Outputs start poisoned, so a comparison of whole arrays also proves that every
element was written. Inputs come from a fresh seed each run (see the header).
"""

from __future__ import annotations

import numpy as np
import pytest
from gpu_face import POISON

# Kaggle's left/right point pairs (fkd_ops.keypoints.FLIP_PAIRS; copied so these
# tests need no TensorFlow).
KAGGLE_PAIRS = ((0, 1), (2, 4), (3, 5), (6, 8), (7, 9), (11, 12))
MODES = ("scale", "standardize", "affine")
FLOATS = (np.float32, np.float64)
IMAGE_TYPES = (np.uint8, np.float32, np.float64)
# Orders of summation differ between the kernels (threads, blocks): the
# tolerances of the CPU tests, relative to float precision.
TOL = {np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5), np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12)}
# A shape per layout the image kernels tell apart: quads of one channel (96 and
# 8 wide), quads of several channels, and widths that take the scalar path.
IMAGE_SHAPES = [
    (0, 96, 96),
    (1, 96, 96),
    (5, 96, 96),
    (3, 8, 8),
    (3, 7, 5),
    (2, 5, 12),
    (2, 8, 8, 3),
    (3, 6, 6, 4),
    (2, 4, 7, 2),
    (2, 3, 3, 1),
]


def close(actual, expected, dtype=None, **overrides):
    dtype = np.dtype(dtype or np.asarray(expected).dtype)
    kw = dict(TOL.get(dtype, dict(rtol=0, atol=0)), **overrides)
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), equal_nan=True, **kw)


def keypoints(rng, batch, cols, dtype, missing):
    """(predictions, targets): targets in [0, 96) with whole points missing at rate `missing`."""
    targets = rng.uniform(0, 96, (batch, cols))
    points = rng.random((batch, cols // 2)) < missing
    targets[np.repeat(points, 2, axis=1)] = np.nan
    predictions = targets + rng.normal(0, 5, (batch, cols))
    predictions[np.isnan(predictions)] = rng.uniform(0, 96, np.isnan(predictions).sum())
    return predictions.astype(dtype), targets.astype(dtype)


def random_images(rng, shape, dtype):
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return (rng.random(shape) * 255).astype(dtype)


def random_pairs(rng, points):
    order = rng.permutation(points)
    count = int(rng.integers(0, points // 2 + 1))
    return tuple((int(order[2 * i]), int(order[2 * i + 1])) for i in range(count))


def flat(pairs):
    return [k for pair in pairs for k in pair]


def host(face, a):
    face.synchronize()
    return face.to_host(a)


def decisions_written(face, flipped):
    values = host(face, flipped)
    assert set(np.unique(values)) <= {0, 1}, "some decisions were never written"
    return values.astype(bool)


# ---------------------------------------------------------------- masked RMSE


def masked_rmse_on(face, predictions, targets, squared=False):
    return host(face, face.masked_rmse(face.to_device(predictions), face.to_device(targets), squared))


def check_masked_rmse(face, native, predictions, targets, squared):
    got = masked_rmse_on(face, predictions, targets, squared)
    expected = native.masked_rmse(predictions, targets, squared)
    close(got, expected, predictions.dtype)
    assert got[2] == expected[2]  # counts are exact


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("batch", [0, 1, 7, 136, 137, 4096])
@pytest.mark.parametrize("missing", [0.0, 0.35, 1.0])
@pytest.mark.parametrize("squared", [False, True])
def test_masked_rmse_forward(face, native, rng, dtype, batch, missing, squared):
    # 136 rows are one block of 4096 elements; 137 need a second launch to finish.
    predictions, targets = keypoints(rng, batch, 30, dtype, missing)
    check_masked_rmse(face, native, predictions, targets, squared)


@pytest.mark.parametrize("shape", [(5,), (4097,), (3, 7, 11), (2, 4096 * 3 + 1), (1, 30)])
def test_masked_rmse_forward_any_shape(face, native, rng, shape):
    targets = rng.normal(0, 3, shape)
    targets[rng.random(shape) < 0.5] = np.nan
    predictions = rng.normal(0, 3, shape)
    check_masked_rmse(face, native, predictions, targets, False)


def test_masked_rmse_forward_large_batch_same_bits_every_run(face, native, rng):
    batch = 65536 if face.name == "cuda" else 3000
    predictions, targets = keypoints(rng, batch, 30, np.float32, 0.7)
    first = masked_rmse_on(face, predictions, targets)
    for _ in range(3):
        np.testing.assert_array_equal(masked_rmse_on(face, predictions, targets), first)
    close(first, native.masked_rmse(predictions, targets, False), np.float32)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_masked_rmse_propagates_bad_predictions(face, native, rng, bad):
    predictions, targets = keypoints(rng, 300, 30, np.float64, 0.0)
    predictions[123, 7] = bad
    got = masked_rmse_on(face, predictions, targets)
    expected = native.masked_rmse(predictions, targets, False)
    assert np.isnan(got[0]) == np.isnan(expected[0]) and np.isinf(got[0]) == np.isinf(expected[0])
    assert not np.isfinite(got[0])


def grad_scalars(native, predictions, targets, squared, grad_loss, grad_sum_sq):
    _, sum_sq, count = native.masked_rmse(predictions, targets, squared)
    return np.array([sum_sq, count, grad_loss, grad_sum_sq], dtype=predictions.dtype)


def check_masked_rmse_grad(face, native, predictions, targets, scalars, squared):
    gp, gt = face.masked_rmse_grad(
        face.to_device(predictions), face.to_device(targets), face.to_device(scalars), squared
    )
    egp, egt = native.masked_rmse_grad(predictions, targets, *(float(s) for s in scalars), squared)
    close(host(face, gp), egp, predictions.dtype)
    close(host(face, gt), egt, predictions.dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("batch", [0, 1, 9, 137, 4096])
@pytest.mark.parametrize("missing", [0.0, 0.35, 1.0])
@pytest.mark.parametrize("squared", [False, True])
def test_masked_rmse_gradient(face, native, rng, dtype, batch, missing, squared):
    predictions, targets = keypoints(rng, batch, 30, dtype, missing)
    scalars = grad_scalars(native, predictions, targets, squared, rng.normal(), rng.normal())
    check_masked_rmse_grad(face, native, predictions, targets, scalars, squared)


def test_masked_rmse_gradient_zero_loss_and_odd_sizes(face, native, rng):
    for n in (1, 1023, 1025, 5000):
        targets = rng.normal(size=n)
        targets[rng.random(n) < 0.3] = np.nan
        predictions = np.where(np.isnan(targets), 1.0, targets)  # loss exactly 0
        scalars = grad_scalars(native, predictions, targets, False, 1.0, 0.5)
        assert scalars[0] == 0.0
        check_masked_rmse_grad(face, native, predictions, targets, scalars, False)


def test_masked_rmse_gradient_large_batch(face, native, rng):
    batch = 65536 if face.name == "cuda" else 3000
    predictions, targets = keypoints(rng, batch, 30, np.float32, 0.7)
    scalars = grad_scalars(native, predictions, targets, False, 1.0, 0.0)
    check_masked_rmse_grad(face, native, predictions, targets, scalars, False)


def test_masked_rmse_gradient_reads_the_forward_outputs_on_the_device(face, native, rng):
    predictions, targets = keypoints(rng, 500, 30, np.float32, 0.5)
    p, t = face.to_device(predictions), face.to_device(targets)
    totals = face.masked_rmse(p, t)  # [loss, sum_sq, count], never copied to the host
    upstream = face.to_device(np.array([1.0, 0.25], dtype=np.float32))
    scalars = face.xp.concatenate([totals[1:], upstream])
    gp, gt = face.masked_rmse_grad(p, t, scalars)
    _, sum_sq, count = native.masked_rmse(predictions, targets, False)
    egp, egt = native.masked_rmse_grad(predictions, targets, float(sum_sq), float(count), 1.0, 0.25, False)
    close(host(face, gp), egp)
    close(host(face, gt), egt)


def test_masked_rmse_gradient_writes_only_the_wanted_outputs(face, native, rng):
    predictions, targets = keypoints(rng, 50, 30, np.float64, 0.3)
    scalars = grad_scalars(native, predictions, targets, False, 1.0, 0.0)
    args = (face.to_device(predictions), face.to_device(targets), face.to_device(scalars))
    egp, egt = native.masked_rmse_grad(predictions, targets, *(float(s) for s in scalars), False)
    gp, gt = face.masked_rmse_grad(*args, want_targets=False)
    close(host(face, gp), egp)
    assert (host(face, gt) == POISON[np.dtype(np.float64)]).all()
    gp, gt = face.masked_rmse_grad(*args, want_predictions=False)
    assert (host(face, gp) == POISON[np.dtype(np.float64)]).all()
    close(host(face, gt), egt)


# ---------------------------------------------------------------- normalization

NORMALIZE_ARGS = {
    "scale": dict(mode="scale", scale=1.0 / 255.0, mean=0.0, stddev=1.0),
    "standardize": dict(mode="standardize", scale=1.0 / 255.0, mean=0.0, stddev=1.0),
    "affine": dict(mode="affine", scale=1.0 / 255.0, mean=127.5, stddev=64.0),
}


def cpu_normalize(native, images, out_dtype, mode, flip=None):
    a = NORMALIZE_ARGS[mode]
    return native.normalize_images(images, np.dtype(out_dtype), a["mode"], a["scale"], a["mean"], a["stddev"], flip)


def both_paths(face, images, **kwargs):
    """The kernel's output with vector access where allowed, and forced scalar."""
    x = face.to_device(images)
    vector = face.images(x, **kwargs)
    scalar = face.images(x, force_scalar=True, **kwargs)
    return vector, scalar


@pytest.mark.parametrize("in_dtype", IMAGE_TYPES)
@pytest.mark.parametrize("out_dtype", FLOATS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", IMAGE_SHAPES)
@pytest.mark.parametrize("flipped", [False, True])
def test_normalize(face, native, rng, in_dtype, out_dtype, mode, shape, flipped):
    images = random_images(rng, shape, in_dtype)
    flip = rng.random(shape[0]) < 0.5 if flipped else None
    expected = cpu_normalize(native, images, out_dtype, mode, flip)
    kwargs = dict(out_dtype=out_dtype, normalize=NORMALIZE_ARGS[mode])
    if flipped:
        kwargs["flip"] = face.to_device(flip)
    for out, _, _ in both_paths(face, images, **kwargs):
        close(host(face, out), expected, out_dtype)


@pytest.mark.parametrize("in_dtype", IMAGE_TYPES)
@pytest.mark.parametrize("value", [0, 255])
def test_standardize_constant_images(face, native, in_dtype, value):
    # std 0: the 1/sqrt(N) floor divides, as tf.image.per_image_standardization does.
    images = np.full((3, 96, 96), value, dtype=in_dtype)
    expected = cpu_normalize(native, images, np.float32, "standardize")
    for out, _, _ in both_paths(face, images, out_dtype=np.float32, normalize=NORMALIZE_ARGS["standardize"]):
        close(host(face, out), expected, np.float32)


@pytest.mark.parametrize("mode", MODES)
def test_normalize_large_batch_and_misaligned_pointers(face, native, rng, mode):
    batch = 4096 if face.name == "cuda" else 40
    images = random_images(rng, (batch, 96, 96), np.uint8)
    flip = rng.random(batch) < 0.5
    expected = cpu_normalize(native, images, np.float32, mode, flip)
    kwargs = dict(out_dtype=np.float32, normalize=NORMALIZE_ARGS[mode], flip=face.to_device(flip))
    out, _, _ = face.images(face.to_device(images), **kwargs)
    close(host(face, out), expected, np.float32)
    out, _, _ = face.images(face.misaligned(face.to_device(images)), **kwargs)
    close(host(face, out), expected, np.float32)


@pytest.mark.parametrize("in_dtype", FLOATS)
@pytest.mark.parametrize("out_dtype", FLOATS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(0, 96, 96), (1, 96, 96), (4, 96, 96), (3, 7, 5), (2, 8, 8, 3), (2, 3, 3, 1)])
def test_normalize_gradient(face, native, rng, in_dtype, out_dtype, mode, shape):
    images = random_images(rng, shape, in_dtype)
    grad = rng.normal(size=shape).astype(out_dtype)
    a = NORMALIZE_ARGS[mode]
    expected = native.normalize_images_grad(grad, images, a["mode"], a["scale"], a["mean"], a["stddev"])
    g, x = face.to_device(grad), face.to_device(images)
    for force_scalar in (False, True):
        out = face.normalize_images_grad(g, x, force_scalar=force_scalar, **a)
        close(host(face, out), expected, in_dtype)


def test_normalize_gradient_constant_images_and_large_batch(face, native, rng):
    batch = 2048 if face.name == "cuda" else 20
    images = random_images(rng, (batch, 96, 96), np.float32)
    images[::3] = 7.0  # std below the floor
    grad = rng.normal(size=images.shape).astype(np.float32)
    a = NORMALIZE_ARGS["standardize"]
    expected = native.normalize_images_grad(grad, images, a["mode"], a["scale"], a["mean"], a["stddev"])
    out = face.normalize_images_grad(face.to_device(grad), face.to_device(images), **a)
    close(host(face, out), expected, np.float32)


# ---------------------------------------------------------------- flip


def flip_case(rng, shape, image_dtype, keypoint_dtype, points=15):
    images = random_images(rng, shape, image_dtype)
    pts, _ = keypoints(rng, shape[0], 2 * points, keypoint_dtype, 0.3)
    pts[rng.random(pts.shape) < 0.2] = np.nan
    pairs = KAGGLE_PAIRS if points == 15 else random_pairs(rng, points)
    flip = rng.random(shape[0]) < 0.5
    return images, pts, pairs, flip


@pytest.mark.parametrize("image_dtype", IMAGE_TYPES)
@pytest.mark.parametrize("keypoint_dtype", FLOATS)
@pytest.mark.parametrize("shape", IMAGE_SHAPES)
@pytest.mark.parametrize("pixel_centers", [False, True])
def test_flip(face, native, rng, image_dtype, keypoint_dtype, shape, pixel_centers):
    images, pts, pairs, flip = flip_case(rng, shape, image_dtype, keypoint_dtype)
    x_offset = shape[2] - (1 if pixel_centers else 0)
    expected_images, expected_points = native.flip_horizontal(images, pts, flip, flat(pairs), x_offset)
    for out, out_points, _ in both_paths(
        face, images, keypoints=face.to_device(pts), pairs=pairs, x_offset=x_offset, flip=face.to_device(flip)
    ):
        np.testing.assert_array_equal(host(face, out), expected_images)
        np.testing.assert_array_equal(host(face, out_points), expected_points)


@pytest.mark.parametrize("points", [1, 2, 15, 40, 1024])
def test_flip_any_number_of_points(face, native, rng, points):
    images, pts, pairs, flip = flip_case(rng, (9, 8, 8), np.float32, np.float64, points)
    expected_images, expected_points = native.flip_horizontal(images, pts, flip, flat(pairs), 8.0)
    out, out_points, _ = face.images(
        face.to_device(images), keypoints=face.to_device(pts), pairs=pairs, x_offset=8.0, flip=face.to_device(flip)
    )
    np.testing.assert_array_equal(host(face, out), expected_images)
    np.testing.assert_array_equal(host(face, out_points), expected_points)


@pytest.mark.parametrize("image_dtype", FLOATS)
@pytest.mark.parametrize("keypoint_dtype", FLOATS)
@pytest.mark.parametrize("shape", [(6, 96, 96), (3, 7, 5), (2, 8, 8, 3), (5, 0, 0)])
def test_flip_gradient(face, native, rng, image_dtype, keypoint_dtype, shape):
    # The gradient is the same remap with x_offset 0 (x -> -x); [B, 0, 0] images
    # carry the keypoints' gradient alone (the uint8 case of the gradient).
    grad_images, grad_points, pairs, flip = flip_case(rng, shape, image_dtype, keypoint_dtype)
    grad_images = grad_images - grad_images.mean() if grad_images.size else grad_images
    expected_images, expected_points = native.flip_horizontal(grad_images, grad_points, flip, flat(pairs), 0.0)
    out, out_points, _ = face.images(
        face.to_device(grad_images),
        keypoints=face.to_device(grad_points),
        pairs=pairs,
        x_offset=0.0,
        flip=face.to_device(flip),
    )
    np.testing.assert_array_equal(host(face, out), expected_images)
    np.testing.assert_array_equal(host(face, out_points), expected_points)


@pytest.mark.parametrize("in_dtype", IMAGE_TYPES)
@pytest.mark.parametrize("out_dtype", FLOATS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(0, 96, 96), (1, 96, 96), (7, 96, 96), (3, 7, 5), (2, 8, 8, 3)])
def test_fused_flip_normalize(face, native, rng, in_dtype, out_dtype, mode, shape):
    images, pts, pairs, flip = flip_case(rng, shape, in_dtype, np.float32)
    expected = cpu_normalize(native, images, out_dtype, mode, flip)
    _, expected_points = native.flip_horizontal(images, pts, flip, flat(pairs), float(shape[2]))
    for out, out_points, _ in both_paths(
        face,
        images,
        out_dtype=out_dtype,
        normalize=NORMALIZE_ARGS[mode],
        keypoints=face.to_device(pts),
        pairs=pairs,
        x_offset=float(shape[2]),
        flip=face.to_device(flip),
    ):
        close(host(face, out), expected, out_dtype)
        np.testing.assert_array_equal(host(face, out_points), expected_points)


@pytest.mark.parametrize("normalize", [None, "scale", "standardize"])
@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_random_flip_draws_the_cpu_decisions(face, native, rng, normalize, probability):
    batch = 2048 if face.name == "cuda" else 37
    images, pts, pairs, _ = flip_case(rng, (batch, 96, 96), np.uint8, np.float32)
    seed = (int(rng.integers(-(2**40), 2**40)), int(rng.integers(0, 2**62)))
    decisions = native.flip_decisions(seed[0], seed[1], batch, probability)
    kwargs = dict(keypoints=face.to_device(pts), pairs=pairs, x_offset=96.0, seed=seed, probability=probability)
    if normalize is not None:
        kwargs.update(out_dtype=np.float32, normalize=NORMALIZE_ARGS[normalize])
    out, out_points, flipped = face.images(face.to_device(images), **kwargs)
    np.testing.assert_array_equal(decisions_written(face, flipped), decisions)
    if normalize is None:
        expected_images, expected_points = native.flip_horizontal(images, pts, decisions, flat(pairs), 96.0)
        np.testing.assert_array_equal(host(face, out), expected_images)
    else:
        _, expected_points = native.flip_horizontal(images, pts, decisions, flat(pairs), 96.0)
        close(host(face, out), cpu_normalize(native, images, np.float32, normalize, decisions), np.float32)
    np.testing.assert_array_equal(host(face, out_points), expected_points)


@pytest.mark.parametrize("batch", [0, 1, 255, 256, 257, 100003])
@pytest.mark.parametrize("probability", [0.0, 0.3, 0.5, 1.0])
def test_flip_decisions(face, native, rng, batch, probability):
    seed0, seed1 = (int(v) for v in rng.integers(-(2**62), 2**62, 2))
    got = decisions_written(face, face.flip_decisions(seed0, seed1, batch, probability))
    np.testing.assert_array_equal(got, native.flip_decisions(seed0, seed1, batch, probability))


# ---------------------------------------------------------------- refusals


def test_invalid_arguments_raise_before_any_launch(face, native, rng):
    images = face.to_device(random_images(rng, (2, 8, 8), np.uint8))
    pts = face.to_device(np.zeros((2, 30), np.float32))
    flip = face.to_device(np.array([True, False]))
    with pytest.raises(ValueError, match="pairs"):
        face.images(images, keypoints=pts, pairs=((0, 1), (1, 2)), flip=flip)
    with pytest.raises(ValueError, match="out of range"):
        face.images(images, keypoints=pts, pairs=((0, 15),), flip=flip)
    too_many = face.to_device(np.zeros((2, 2 * (face.api.max_flip_points + 1)), np.float32))
    with pytest.raises(ValueError, match="at most 1024 keypoints"):
        face.images(images, keypoints=too_many, flip=flip)
    with pytest.raises(ValueError, match="mode"):
        face.images(images, out_dtype=np.float32, normalize={"mode": "bogus"})
    with pytest.raises(ValueError, match="affine"):
        face.images(images, out_dtype=np.float32, normalize={"mode": "affine", "stddev": 0.0})
    with pytest.raises(ValueError, match="keeps the dtype"):
        face.images(images, out_dtype=np.float32)
    with pytest.raises(ValueError, match="probability"):
        face.flip_decisions(1, 2, 10, 1.5)
    with pytest.raises(ValueError, match="dtype"):
        face.api.masked_rmse("int32", 0, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="workspace"):
        face.api.masked_rmse("float32", 1, 1, 10**6, 1, 1, 1, workspace=0, workspace_bytes=0)


def test_cuda_entry_points_raise_without_a_device(native):
    # Where CUDA is built but no GPU or driver exists (CI), a launch reports the
    # CUDA error as RuntimeError; nothing crashes.
    if not getattr(native, "built_with_cuda", False):
        pytest.skip("built without CUDA: no CUDA entry points")
    if native.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present (the other tests run on it)")
    out = np.zeros(8, dtype=np.uint8)
    with pytest.raises(RuntimeError, match="CUDA error"):
        native.cuda.flip_decisions(1, 2, 8, 0.5, out.ctypes.data)
    assert out.sum() == 0
