"""fkd_ops.normalize_images: every mode, uint8/float32/float64 in, float32/float64
out, rank 3 and 4 (C = 1 and 3); forward == twin == numpy, gradients."""

from __future__ import annotations

import gradcheck
import numpy as np
import oracles
import pytest
import tensorflow as tf
from hypothesis import given
from strategies import FLOAT_DTYPES, IMAGE_DTYPES, NORMALIZE_MODES, normalize_cases, random_images

import fkd_ops
from fkd_ops.ops import libraries, reference


def kwargs(case) -> dict:
    return {"mode": case.mode, "scale": case.scale, "mean": case.mean, "stddev": case.stddev}


def assert_close(got, expected, out_dtype, loose: bool = False, err_msg: str = ""):
    expected = np.asarray(expected, dtype=np.float64)
    peak = float(np.max(np.abs(expected))) if expected.size else 0.0
    if np.dtype(out_dtype) == np.float32:
        atol = (1e-4 if loose else 2e-6) * max(1.0, peak)
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=atol, err_msg=err_msg)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * max(1.0, peak), err_msg=err_msg)


@given(normalize_cases())
def test_forward_matches_twin_and_numpy(case):
    expected = oracles.normalize(case.images, **kwargs(case))
    got = fkd_ops.normalize_images(case.images, dtype=case.out_dtype, **kwargs(case))
    twin = reference.normalize_images(case.images, dtype=case.out_dtype, **kwargs(case))
    assert got.dtype == tf.as_dtype(case.out_dtype) and twin.dtype == got.dtype
    assert got.shape == case.images.shape
    assert_close(got.numpy(), expected, case.out_dtype, err_msg="op")
    # The float32 twin uses tf.image.per_image_standardization, which sums in float32.
    assert_close(twin.numpy(), expected, case.out_dtype, loose=True, err_msg="twin")


@pytest.mark.parametrize("in_dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(3, 96, 96), (2, 7, 5, 3), (2, 7, 5, 1)])
def test_standardize_is_per_image_standardization(shape, in_dtype):
    rng = np.random.default_rng(11)
    images = random_images(rng, shape, in_dtype)
    # A constant image (std 0 takes the 1/sqrt(N) floor) of an integer value, whose
    # float32 mean TF computes exactly too (a non-integer one leaves TF a rounding
    # residue times sqrt(N) that the op's exact double mean does not have).
    images[0] = 77
    x = images if len(shape) == 4 else images[..., np.newaxis]
    expected = tf.image.per_image_standardization(x).numpy()
    if len(shape) == 3:
        expected = expected[..., 0]
    got = fkd_ops.normalize_images(images, mode="standardize").numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)
    assert np.all(got[0] == 0)


@pytest.mark.parametrize("out_dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("mode", NORMALIZE_MODES)
def test_uint8_and_float_input_agree(mode, out_dtype):
    images = random_images(np.random.default_rng(5), (3, 6, 4, 3), np.uint8)
    from_uint8 = fkd_ops.normalize_images(images, mode=mode, mean=100.0, stddev=50.0, dtype=out_dtype)
    for dtype in (np.float32, np.float64):
        from_float = fkd_ops.normalize_images(images.astype(dtype), mode=mode, mean=100.0, stddev=50.0, dtype=out_dtype)
        assert_close(from_float.numpy(), from_uint8.numpy(), out_dtype)


@pytest.mark.parametrize("mode", NORMALIZE_MODES)
def test_rank3_equals_rank4_with_one_channel(mode):
    images = random_images(np.random.default_rng(2), (4, 9, 8), np.uint8)
    rank3 = fkd_ops.normalize_images(images, mode=mode)
    rank4 = fkd_ops.normalize_images(images[..., np.newaxis], mode=mode)
    assert rank3.shape == (4, 9, 8) and rank4.shape == (4, 9, 8, 1)
    np.testing.assert_array_equal(rank3.numpy(), rank4.numpy()[..., 0])


def test_default_scale_maps_uint8_to_unit_interval():
    images = np.array([[[0, 255], [51, 128]]], dtype=np.uint8)
    got = fkd_ops.normalize_images(images).numpy()
    np.testing.assert_allclose(got, images / 255.0, rtol=1e-6)
    assert got.min() == 0.0 and got.max() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("in_dtype", IMAGE_DTYPES)
@pytest.mark.parametrize("mode", NORMALIZE_MODES)
@pytest.mark.parametrize("shape", [(0, 96, 96), (0, 4, 4, 3), (1, 96, 96), (1, 3, 3, 3)], ids=str)
def test_empty_batch_and_batch_of_one(shape, mode, in_dtype):
    images = random_images(np.random.default_rng(1), shape, in_dtype)
    for out_dtype in FLOAT_DTYPES:
        got = fkd_ops.normalize_images(images, mode=mode, mean=3.0, stddev=2.0, dtype=out_dtype)
        twin = reference.normalize_images(images, mode=mode, mean=3.0, stddev=2.0, dtype=out_dtype)
        assert got.shape == shape and got.dtype == tf.as_dtype(out_dtype)
        expected = oracles.normalize(images, mode=mode, mean=3.0, stddev=2.0)
        assert_close(got.numpy(), expected, out_dtype)
        assert_close(twin.numpy(), expected, out_dtype, loose=True)


@given(normalize_cases())
def test_native_face_matches_op(case):
    native = libraries.native()
    got = native.normalize_images(
        case.images,
        np.dtype(case.out_dtype),
        case.mode,
        float(np.float32(case.scale)),
        float(np.float32(case.mean)),
        float(np.float32(case.stddev)),
    )
    op = fkd_ops.normalize_images(case.images, dtype=case.out_dtype, **kwargs(case))
    assert got.dtype == np.dtype(case.out_dtype)
    np.testing.assert_array_equal(got, op.numpy())


# ------------------------------------------------------------------ gradients

GRAD_SHAPES = [(2, 3, 4), (2, 3, 2, 3)]


def grad_images(shape, near_constant: bool = False) -> np.ndarray:
    rng = np.random.default_rng(17)
    x = rng.normal(0.0, 2.0, shape)
    if near_constant:  # std below 1/sqrt(N): the floor branch of standardize
        x[0] = 1.5 + rng.normal(0.0, 1e-3, shape[1:])
    return x


@pytest.mark.parametrize("shape", GRAD_SHAPES, ids=["rank3", "rank4 C=3"])
@pytest.mark.parametrize("mode", NORMALIZE_MODES + ("standardize near-constant",))
def test_compute_gradient_float64(mode, shape):
    near_constant = mode.endswith("near-constant")
    mode = mode.split()[0]
    x = grad_images(shape, near_constant)

    def f(images):
        return fkd_ops.normalize_images(images, mode=mode, mean=0.5, stddev=1.7, scale=0.25, dtype=tf.float64)

    error = gradcheck.gradient_error(
        "normalize_images", f"{mode}{' near-constant' if near_constant else ''} {shape}", f, [x]
    )
    assert error < gradcheck.TOLERANCE


@pytest.mark.parametrize(
    "in_dtype,out_dtype",
    [(np.float64, np.float64), (np.float32, np.float32), (np.float32, np.float64), (np.float64, np.float32)],
)
@pytest.mark.parametrize("mode", NORMALIZE_MODES)
@pytest.mark.parametrize("near_constant", [False, True])
def test_custom_gradient_matches_twin_autodiff(mode, in_dtype, out_dtype, near_constant):
    x = tf.constant(grad_images((3, 5, 4, 3), near_constant).astype(in_dtype))
    upstream = tf.constant(np.random.default_rng(4).normal(size=(3, 5, 4, 3)).astype(out_dtype))
    grads = []
    for fn in (fkd_ops.normalize_images, reference.normalize_images):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, mode=mode, mean=0.5, stddev=1.7, scale=0.25, dtype=out_dtype)
            loss = tf.reduce_sum(y * upstream)
        g = tape.gradient(loss, x)
        assert g.dtype == x.dtype
        grads.append(g.numpy())
    if mode == "standardize":
        expected = oracles.standardize_grad(x.numpy(), upstream.numpy())
    else:
        factor = float(np.float32(0.25)) if mode == "scale" else 1.0 / float(np.float32(1.7))
        expected = factor * upstream.numpy().astype(np.float64)
    low = np.float32 in (in_dtype, out_dtype)
    tol = {"rtol": 1e-4, "atol": 1e-4} if low else {"rtol": 1e-10, "atol": 1e-10}
    np.testing.assert_allclose(grads[0], grads[1], **tol, err_msg="op vs twin")
    np.testing.assert_allclose(grads[0], expected, **tol, err_msg="op vs numpy")


def test_uint8_images_have_no_gradient():
    images = tf.constant(random_images(np.random.default_rng(0), (2, 4, 4), np.uint8))
    scale = tf.Variable(2.0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(images)
        y = fkd_ops.normalize_images(images) * scale
    assert tape.gradient(y, images) is None
    np.testing.assert_allclose(tape.gradient(y, scale).numpy(), np.sum(images.numpy() / 255.0), rtol=1e-5)


@pytest.mark.parametrize("mode", NORMALIZE_MODES)
def test_large_batch_sharded_over_the_pool(mode):
    """Kaggle-sized images, enough rows for TF to split the work over threads."""
    images = random_images(np.random.default_rng(3), (128, 96, 96), np.uint8)
    got = fkd_ops.normalize_images(images, mode=mode, mean=120.0, stddev=60.0)
    assert_close(got.numpy(), oracles.normalize(images, mode=mode, mean=120.0, stddev=60.0), np.float32)
    native = libraries.native().normalize_images(
        images, np.dtype(np.float32), mode, float(np.float32(1 / 255)), 120.0, 60.0
    )
    np.testing.assert_array_equal(got.numpy(), native)
    x = tf.constant(images.astype(np.float64))
    upstream = tf.constant(np.random.default_rng(4).normal(size=images.shape))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fkd_ops.normalize_images(x, mode=mode, mean=120.0, stddev=60.0, dtype=tf.float64) * upstream)
    g = tape.gradient(y, x).numpy()
    if mode == "standardize":
        expected = oracles.standardize_grad(x.numpy(), upstream.numpy())
    else:
        expected = upstream.numpy() * (float(np.float32(1 / 255)) if mode == "scale" else 1 / 60.0)
    np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-12)
