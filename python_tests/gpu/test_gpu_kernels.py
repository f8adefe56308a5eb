"""Every GPU kernel (forward and gradient) equals the CPU kernel on random inputs.

Each test runs on the `face` fixture's backend: the CUDA kernels where a GPU is
present, else the emulation (the same kernel bodies on the CPU). The reference is
the CPU kernel through the numpy face of `_native`. Outputs start poisoned, so a
comparison of whole arrays also proves that every element was written. Inputs
come from a fresh seed each run (see the header).

Cases are sample lists, one per kernel, in the manner of pytorch/extension-cpp's
`sample_inputs`: each sample is one behaviour the kernel must get right (a dtype
pair, a memory layout its indexing tells apart, an edge such as an empty batch
or a missing target everywhere, a second launch, a misaligned pointer), and the
dtype/mode/layout combinations are spread over the samples so that every dtype,
mode and layout appears, rather than multiplied out.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fkd_ops.ops.gpu_arrays import POISON

# Kaggle's left/right point pairs (fkd_ops.keypoints.FLIP_PAIRS; copied so these
# tests need no TensorFlow).
KAGGLE_PAIRS = ((0, 1), (2, 4), (3, 5), (6, 8), (7, 9), (11, 12))
MODES = ("scale", "standardize", "affine")
F32, F64, U8 = np.float32, np.float64, np.uint8
# Orders of summation differ between the kernels (threads, blocks): the
# tolerances of the CPU tests, relative to float precision.
TOL = {np.dtype(F32): dict(rtol=1e-5, atol=1e-5), np.dtype(F64): dict(rtol=1e-12, atol=1e-12)}
# One shape per layout the image kernels tell apart: quads of one channel (96
# and 8 wide), quads of several channels, widths that take the scalar path, an
# empty batch and an image of one value per row.
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


def spread(**axes):
    """Samples that together cover every value of every axis, cycling the shorter
    axes alongside the longest (not their product)."""
    n = max(len(v) for v in axes.values())
    cycles = {k: itertools.cycle(v) for k, v in axes.items()}
    return [{k: next(c) for k, c in cycles.items()} for _ in range(n)]


def name(v):
    if isinstance(v, type):
        return np.dtype(v).name
    if isinstance(v, tuple):
        return "x".join(str(d) for d in v)
    return str(v)


def params(samples):
    return [pytest.param(s, id="-".join(name(v) for v in s.values())) for s in samples]


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


def big(face, on_gpu, emulated):
    """A size that spans many blocks on the GPU, smaller where the CPU emulates it."""
    return on_gpu if face.name == "cuda" else emulated


# ---------------------------------------------------------------- masked RMSE


def masked_rmse_on(face, predictions, targets, squared=False):
    return host(face, face.masked_rmse(face.to_device(predictions), face.to_device(targets), squared))


def check_masked_rmse(face, native, predictions, targets, squared):
    got = masked_rmse_on(face, predictions, targets, squared)
    expected = native.masked_rmse(predictions, targets, squared)
    close(got, expected, predictions.dtype)
    assert got[2] == expected[2]  # counts are exact


# (dtype, shape, missing rate, squared). 30 columns are Kaggle rows; 136 rows
# are one block of 4096 values and 137 need the second (finishing) launch.
RMSE_SAMPLES = [
    dict(dtype=F32, shape=(0, 30), missing=0.35, squared=False),  # empty: loss 0
    dict(dtype=F64, shape=(1, 30), missing=0.0, squared=True),  # one row, none missing
    dict(dtype=F32, shape=(7, 30), missing=1.0, squared=False),  # all missing: loss 0
    dict(dtype=F64, shape=(136, 30), missing=0.35, squared=False),  # one full block
    dict(dtype=F32, shape=(137, 30), missing=0.35, squared=True),  # two blocks + finish
    dict(dtype=F64, shape=(4096, 30), missing=0.7, squared=False),  # 31 blocks
    dict(dtype=F32, shape=(4097,), missing=0.5, squared=False),  # rank 1
    dict(dtype=F64, shape=(3, 7, 11), missing=0.5, squared=True),  # rank 3
]


@pytest.mark.parametrize("s", params(RMSE_SAMPLES))
def test_masked_rmse(face, native, rng, s):
    cols = s["shape"][-1] if len(s["shape"]) == 2 and s["shape"][-1] == 30 else None
    if cols:
        predictions, targets = keypoints(rng, s["shape"][0], cols, s["dtype"], s["missing"])
    else:
        targets = rng.normal(0, 3, s["shape"])
        targets[rng.random(s["shape"]) < s["missing"]] = np.nan
        predictions = rng.normal(0, 3, s["shape"])
        predictions, targets = predictions.astype(s["dtype"]), targets.astype(s["dtype"])
    check_masked_rmse(face, native, predictions, targets, s["squared"])


def test_masked_rmse_same_bits_every_run(face, native, rng):
    predictions, targets = keypoints(rng, big(face, 65536, 3000), 30, F32, 0.7)
    first = masked_rmse_on(face, predictions, targets)
    for _ in range(3):
        np.testing.assert_array_equal(masked_rmse_on(face, predictions, targets), first)
    close(first, native.masked_rmse(predictions, targets, False), F32)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_masked_rmse_propagates_bad_predictions(face, native, rng, bad):
    predictions, targets = keypoints(rng, 300, 30, F64, 0.0)
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


RMSE_GRAD_SAMPLES = [
    dict(dtype=F32, batch=0, missing=0.35, squared=False),
    dict(dtype=F64, batch=1, missing=0.0, squared=True),
    dict(dtype=F32, batch=9, missing=1.0, squared=False),  # count 0: zero gradients
    dict(dtype=F64, batch=137, missing=0.35, squared=False),  # partial last block
    dict(dtype=F32, batch=4096, missing=0.35, squared=True),
]


@pytest.mark.parametrize("s", params(RMSE_GRAD_SAMPLES))
def test_masked_rmse_gradient(face, native, rng, s):
    predictions, targets = keypoints(rng, s["batch"], 30, s["dtype"], s["missing"])
    scalars = grad_scalars(native, predictions, targets, s["squared"], rng.normal(), rng.normal())
    check_masked_rmse_grad(face, native, predictions, targets, scalars, s["squared"])


def test_masked_rmse_gradient_zero_loss_and_odd_sizes(face, native, rng):
    for n in (1, 1023, 1025, 5000):
        targets = rng.normal(size=n)
        targets[rng.random(n) < 0.3] = np.nan
        predictions = np.where(np.isnan(targets), 1.0, targets)  # loss exactly 0
        scalars = grad_scalars(native, predictions, targets, False, 1.0, 0.5)
        assert scalars[0] == 0.0
        check_masked_rmse_grad(face, native, predictions, targets, scalars, False)


def test_masked_rmse_gradient_reads_the_forward_outputs_on_the_device(face, native, rng):
    predictions, targets = keypoints(rng, big(face, 65536, 500), 30, F32, 0.5)
    p, t = face.to_device(predictions), face.to_device(targets)
    totals = face.masked_rmse(p, t)  # [loss, sum_sq, count], never copied to the host
    upstream = face.to_device(np.array([1.0, 0.25], dtype=F32))
    scalars = face.xp.concatenate([totals[1:], upstream])
    gp, gt = face.masked_rmse_grad(p, t, scalars)
    _, sum_sq, count = native.masked_rmse(predictions, targets, False)
    egp, egt = native.masked_rmse_grad(predictions, targets, float(sum_sq), float(count), 1.0, 0.25, False)
    close(host(face, gp), egp)
    close(host(face, gt), egt)


def test_masked_rmse_gradient_writes_only_the_wanted_outputs(face, native, rng):
    predictions, targets = keypoints(rng, 50, 30, F64, 0.3)
    scalars = grad_scalars(native, predictions, targets, False, 1.0, 0.0)
    args = (face.to_device(predictions), face.to_device(targets), face.to_device(scalars))
    egp, egt = native.masked_rmse_grad(predictions, targets, *(float(s) for s in scalars), False)
    gp, gt = face.masked_rmse_grad(*args, want_targets=False)
    close(host(face, gp), egp)
    assert (host(face, gt) == POISON[np.dtype(F64)]).all()
    gp, gt = face.masked_rmse_grad(*args, want_predictions=False)
    assert (host(face, gp) == POISON[np.dtype(F64)]).all()
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


# Every (input dtype, output dtype, mode) once (18 samples), over the layouts,
# mirrored or not.
NORMALIZE_SAMPLES = [
    dict(in_dtype=i, out_dtype=o, mode=m, shape=IMAGE_SHAPES[k % len(IMAGE_SHAPES)], flipped=k % 2 == 1)
    for k, (i, o, m) in enumerate(itertools.product((U8, F32, F64), (F32, F64), MODES))
]


@pytest.mark.parametrize("s", params(NORMALIZE_SAMPLES))
def test_normalize(face, native, rng, s):
    images = random_images(rng, s["shape"], s["in_dtype"])
    flip = rng.random(s["shape"][0]) < 0.5 if s["flipped"] else None
    expected = cpu_normalize(native, images, s["out_dtype"], s["mode"], flip)
    kwargs = dict(out_dtype=s["out_dtype"], normalize=NORMALIZE_ARGS[s["mode"]])
    if s["flipped"]:
        kwargs["flip"] = face.to_device(flip)
    for out, _, _ in both_paths(face, images, **kwargs):
        close(host(face, out), expected, s["out_dtype"])


def test_standardize_constant_and_non_finite_images(face, native):
    # std 0: the 1/sqrt(N) floor divides, as tf.image.per_image_standardization
    # does; an inf or NaN pixel makes the whole image NaN, as it does there.
    for dtype in (U8, F32, F64):
        for value in (0, 255):
            images = np.full((3, 96, 96), value, dtype=dtype)
            expected = cpu_normalize(native, images, F32, "standardize")
            for out, _, _ in both_paths(face, images, out_dtype=F32, normalize=NORMALIZE_ARGS["standardize"]):
                close(host(face, out), expected, F32)
    images = np.full((3, 8, 8), 3.0, dtype=F32)
    images[0, 1, 2], images[1, 0, 0] = np.inf, np.nan
    for out, _, _ in both_paths(face, images, out_dtype=F32, normalize=NORMALIZE_ARGS["standardize"]):
        got = host(face, out)
        assert np.isnan(got[:2]).all() and np.isfinite(got[2]).all()
        close(got, cpu_normalize(native, images, F32, "standardize"), F32)


def test_normalize_large_batch_and_misaligned_pointers(face, native, rng):
    batch = big(face, 4096, 40)
    images = random_images(rng, (batch, 96, 96), U8)
    flip = rng.random(batch) < 0.5
    for mode in MODES:
        expected = cpu_normalize(native, images, F32, mode, flip)
        kwargs = dict(out_dtype=F32, normalize=NORMALIZE_ARGS[mode], flip=face.to_device(flip))
        out, _, _ = face.images(face.to_device(images), **kwargs)
        close(host(face, out), expected, F32)
        out, _, _ = face.images(face.misaligned(face.to_device(images)), **kwargs)
        close(host(face, out), expected, F32)


GRAD_SHAPES = [(0, 96, 96), (1, 96, 96), (4, 96, 96), (3, 7, 5), (2, 8, 8, 3), (2, 3, 3, 1)]
# Every (input dtype, output dtype, mode) once (12 samples), over the layouts.
NORMALIZE_GRAD_SAMPLES = [
    dict(in_dtype=i, out_dtype=o, mode=m, shape=GRAD_SHAPES[k % len(GRAD_SHAPES)])
    for k, (i, o, m) in enumerate(itertools.product((F32, F64), (F32, F64), MODES))
]


@pytest.mark.parametrize("s", params(NORMALIZE_GRAD_SAMPLES))
def test_normalize_gradient(face, native, rng, s):
    images = random_images(rng, s["shape"], s["in_dtype"])
    grad = rng.normal(size=s["shape"]).astype(s["out_dtype"])
    a = NORMALIZE_ARGS[s["mode"]]
    expected = native.normalize_images_grad(grad, images, a["mode"], a["scale"], a["mean"], a["stddev"])
    g, x = face.to_device(grad), face.to_device(images)
    for force_scalar in (False, True):
        out = face.normalize_images_grad(g, x, force_scalar=force_scalar, **a)
        close(host(face, out), expected, s["in_dtype"])


def test_normalize_gradient_constant_images_and_large_batch(face, native, rng):
    images = random_images(rng, (big(face, 2048, 20), 96, 96), F32)
    images[::3] = 7.0  # std below the floor
    grad = rng.normal(size=images.shape).astype(F32)
    a = NORMALIZE_ARGS["standardize"]
    expected = native.normalize_images_grad(grad, images, a["mode"], a["scale"], a["mean"], a["stddev"])
    out = face.normalize_images_grad(face.to_device(grad), face.to_device(images), **a)
    close(host(face, out), expected, F32)


# ---------------------------------------------------------------- flip


def flip_case(rng, shape, image_dtype, keypoint_dtype, points=15):
    images = random_images(rng, shape, image_dtype)
    pts, _ = keypoints(rng, shape[0], 2 * points, keypoint_dtype, 0.3)
    pts[rng.random(pts.shape) < 0.2] = np.nan
    pairs = KAGGLE_PAIRS if points == 15 else random_pairs(rng, points)
    flip = rng.random(shape[0]) < 0.5
    return images, pts, pairs, flip


# Every layout, the six (image, keypoint) dtype pairs and both coordinate conventions spread over them.
FLIP_SAMPLES = spread(
    shape=IMAGE_SHAPES, image_dtype=(U8, F32, F64), keypoint_dtype=(F32, F64), pixel_centers=(False, True)
)


@pytest.mark.parametrize("s", params(FLIP_SAMPLES))
def test_flip(face, native, rng, s):
    shape = s["shape"]
    images, pts, pairs, flip = flip_case(rng, shape, s["image_dtype"], s["keypoint_dtype"])
    x_offset = shape[2] - (1 if s["pixel_centers"] else 0)
    expected_images, expected_points = native.flip_horizontal(images, pts, flip, flat(pairs), x_offset)
    for out, out_points, _ in both_paths(
        face, images, keypoints=face.to_device(pts), pairs=pairs, x_offset=x_offset, flip=face.to_device(flip)
    ):
        np.testing.assert_array_equal(host(face, out), expected_images)
        np.testing.assert_array_equal(host(face, out_points), expected_points)


def test_flip_any_number_of_points(face, native, rng):
    for points in (1, 2, 40, 1024):  # 1024: the most a launch's parameters carry
        images, pts, pairs, flip = flip_case(rng, (9, 8, 8), F32, F64, points)
        expected_images, expected_points = native.flip_horizontal(images, pts, flip, flat(pairs), 8.0)
        out, out_points, _ = face.images(
            face.to_device(images), keypoints=face.to_device(pts), pairs=pairs, x_offset=8.0, flip=face.to_device(flip)
        )
        np.testing.assert_array_equal(host(face, out), expected_images)
        np.testing.assert_array_equal(host(face, out_points), expected_points)


# [B, 0, 0] images carry the keypoints' gradient alone (the uint8 case of the gradient).
FLIP_GRAD_SAMPLES = spread(
    shape=[(6, 96, 96), (3, 7, 5), (2, 8, 8, 3), (5, 0, 0)], image_dtype=(F32, F64), keypoint_dtype=(F64, F32, F32, F64)
)


@pytest.mark.parametrize("s", params(FLIP_GRAD_SAMPLES))
def test_flip_gradient(face, native, rng, s):
    # The gradient is the same remap with x_offset 0 (x -> -x).
    grad_images, grad_points, pairs, flip = flip_case(rng, s["shape"], s["image_dtype"], s["keypoint_dtype"])
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


# The fused path adds the keypoints to a mirrored normalization: every input
# dtype and mode, both output dtypes.
FUSED_SAMPLES = spread(
    in_dtype=(U8, F32, F64, U8, F32, F64),
    out_dtype=(F32, F64),
    mode=MODES,
    shape=[(0, 96, 96), (1, 96, 96), (7, 96, 96), (3, 7, 5), (2, 8, 8, 3), (4, 9, 6)],
)


@pytest.mark.parametrize("s", params(FUSED_SAMPLES))
def test_fused_flip_normalize(face, native, rng, s):
    shape = s["shape"]
    images, pts, pairs, flip = flip_case(rng, shape, s["in_dtype"], F32)
    expected = cpu_normalize(native, images, s["out_dtype"], s["mode"], flip)
    _, expected_points = native.flip_horizontal(images, pts, flip, flat(pairs), float(shape[2]))
    for out, out_points, _ in both_paths(
        face,
        images,
        out_dtype=s["out_dtype"],
        normalize=NORMALIZE_ARGS[s["mode"]],
        keypoints=face.to_device(pts),
        pairs=pairs,
        x_offset=float(shape[2]),
        flip=face.to_device(flip),
    ):
        close(host(face, out), expected, s["out_dtype"])
        np.testing.assert_array_equal(host(face, out_points), expected_points)


RANDOM_FLIP_SAMPLES = [
    dict(normalize=None, probability=0.5),
    dict(normalize=None, probability=1.0),
    dict(normalize="scale", probability=0.0),
    dict(normalize="scale", probability=0.5),
    dict(normalize="standardize", probability=0.5),
]


@pytest.mark.parametrize("s", params(RANDOM_FLIP_SAMPLES))
def test_random_flip_draws_the_cpu_decisions(face, native, rng, s):
    batch = big(face, 2048, 37)
    images, pts, pairs, _ = flip_case(rng, (batch, 96, 96), U8, F32)
    seed = (int(rng.integers(-(2**40), 2**40)), int(rng.integers(0, 2**62)))
    decisions = native.flip_decisions(seed[0], seed[1], batch, s["probability"])
    kwargs = dict(keypoints=face.to_device(pts), pairs=pairs, x_offset=96.0, seed=seed, probability=s["probability"])
    if s["normalize"] is not None:
        kwargs.update(out_dtype=F32, normalize=NORMALIZE_ARGS[s["normalize"]])
    out, out_points, flipped = face.images(face.to_device(images), **kwargs)
    np.testing.assert_array_equal(decisions_written(face, flipped), decisions)
    expected_images, expected_points = native.flip_horizontal(images, pts, decisions, flat(pairs), 96.0)
    if s["normalize"] is None:
        np.testing.assert_array_equal(host(face, out), expected_images)
    else:
        close(host(face, out), cpu_normalize(native, images, F32, s["normalize"], decisions), F32)
    np.testing.assert_array_equal(host(face, out_points), expected_points)


# Around the 256-thread block: empty, one, a block less one, a block, a block and one, many blocks.
DECISION_SAMPLES = spread(batch=[0, 1, 255, 256, 257, 100003], probability=(0.3, 0.0, 0.5, 1.0, 0.5, 0.3))


@pytest.mark.parametrize("s", params(DECISION_SAMPLES))
def test_flip_decisions(face, native, rng, s):
    seed0, seed1 = (int(v) for v in rng.integers(-(2**62), 2**62, 2))
    got = decisions_written(face, face.flip_decisions(seed0, seed1, s["batch"], s["probability"]))
    np.testing.assert_array_equal(got, native.flip_decisions(seed0, seed1, s["batch"], s["probability"]))


# ---------------------------------------------------------------- refusals


def test_invalid_arguments_raise_before_any_launch(face, rng):
    images = face.to_device(random_images(rng, (2, 8, 8), U8))
    pts = face.to_device(np.zeros((2, 30), F32))
    flip = face.to_device(np.array([True, False]))
    with pytest.raises(ValueError, match="pairs"):
        face.images(images, keypoints=pts, pairs=((0, 1), (1, 2)), flip=flip)
    with pytest.raises(ValueError, match="out of range"):
        face.images(images, keypoints=pts, pairs=((0, 15),), flip=flip)
    too_many = face.to_device(np.zeros((2, 2 * (face.api.max_flip_points + 1)), F32))
    with pytest.raises(ValueError, match="at most 1024 keypoints"):
        face.images(images, keypoints=too_many, flip=flip)
    with pytest.raises(ValueError, match="mode"):
        face.images(images, out_dtype=F32, normalize={"mode": "bogus"})
    with pytest.raises(ValueError, match="affine"):
        face.images(images, out_dtype=F32, normalize={"mode": "affine", "stddev": 0.0})
    with pytest.raises(ValueError, match="keeps the dtype"):
        face.images(images, out_dtype=F32)
    with pytest.raises(ValueError, match="probability"):
        face.flip_decisions(1, 2, 10, 1.5)
    with pytest.raises(ValueError, match="dtype"):
        face.api.masked_rmse("int32", 0, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="workspace"):
        face.api.masked_rmse("float32", 1, 1, 10**6, 1, 1, 1, workspace=0, workspace_bytes=0)
