"""fkd_ops.flip_horizontal / random_flip / flip_normalize / random_flip_normalize:
forward == twin == numpy, the coordinate conventions, NaN keypoints, seeded
decisions, the fused path, and gradients."""

from __future__ import annotations

from pathlib import Path

import gradcheck
import numpy as np
import oracles
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from strategies import FLOAT_DTYPES, IMAGE_DTYPES, NORMALIZE_MODES, flip_cases, random_images

import fkd_ops
from fkd_ops.ops import libraries, reference

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def flip_kwargs(case) -> dict:
    return {"pairs": case.pairs, "pixel_centers": case.pixel_centers}


@given(flip_cases())
def test_forward_matches_twin_and_numpy(case):
    expected = oracles.flip(case.images, case.keypoints, case.flip, **flip_kwargs(case))
    got = fkd_ops.flip_horizontal(case.images, case.keypoints, case.flip, **flip_kwargs(case))
    twin = reference.flip_horizontal(case.images, case.keypoints, case.flip, **flip_kwargs(case))
    for name, g, t, e, x in zip(("images", "keypoints"), got, twin, expected, (case.images, case.keypoints)):
        assert g.dtype == tf.as_dtype(x.dtype) and g.shape == x.shape, name
        np.testing.assert_array_equal(g.numpy(), e, err_msg=f"op {name}")
        np.testing.assert_array_equal(t.numpy(), e, err_msg=f"twin {name}")


@given(flip_cases())
def test_native_face_matches_op(case):
    width = case.images.shape[2]
    native = libraries.native()
    flat_pairs = [k for pair in case.pairs for k in pair]
    images, keypoints = native.flip_horizontal(
        case.images, case.keypoints, case.flip, flat_pairs, float(width - (1 if case.pixel_centers else 0))
    )
    got = fkd_ops.flip_horizontal(case.images, case.keypoints, case.flip, **flip_kwargs(case))
    np.testing.assert_array_equal(images, got[0].numpy())
    np.testing.assert_array_equal(keypoints, got[1].numpy())


def test_kaggle_layout_constants():
    # Kaggle's own order of the 30 columns: the lookup table asks image 1 for all of them.
    lookup = (FIXTURES / "IdLookupTable_excerpt.csv").read_text().splitlines()[1:]
    image_1 = [row.split(",")[2] for row in lookup if row.split(",")[1] == "1"]
    assert fkd_ops.KEYPOINT_COLUMNS == tuple(image_1)
    assert fkd_ops.KEYPOINT_NAMES == tuple(c[:-2] for c in image_1[::2])
    assert fkd_ops.NUM_KEYPOINTS == 15 and fkd_ops.NUM_COORDINATES == 30
    # The pairs are exactly the points whose names say left or right, each with
    # the point named the other way; the nose tip and the lip centres stay put.
    names = fkd_ops.KEYPOINT_NAMES
    sided = {i for i, n in enumerate(names) if "left" in n.split("_") or "right" in n.split("_")}
    assert sorted(k for pair in fkd_ops.FLIP_PAIRS for k in pair) == sorted(sided)
    for left, right in fkd_ops.FLIP_PAIRS:
        assert "left" in names[left].split("_")
        assert names[left].replace("left", "right") == names[right]
    assert fkd_ops.IMAGE_SIZE == 96


def kaggle_row(**points) -> np.ndarray:
    row = np.full((1, 30), np.nan, dtype=np.float32)
    for name, (x, y) in points.items():
        k = fkd_ops.KEYPOINT_NAMES.index(name)
        row[0, 2 * k : 2 * k + 2] = (x, y)
    return row


@pytest.mark.parametrize("pixel_centers,x_offset", [(False, 96.0), (True, 95.0)])
def test_coordinate_convention(pixel_centers, x_offset):
    """x -> W - x (W - 1 - x with pixel_centers), y kept, left/right pairs swapped,
    and a missing point stays missing in its partner's slot."""
    row = kaggle_row(
        left_eye_center=(30.0, 40.0), nose_tip=(48.5, 60.0), mouth_left_corner=(60.0, 80.0)
    )  # mouth_right_corner missing
    images = np.zeros((1, 96, 96), np.uint8)
    images[0, 10, 2] = 255
    out_images, out = fkd_ops.flip_horizontal(images, row, [True], pixel_centers=pixel_centers)
    out = out.numpy()
    expected = kaggle_row(
        right_eye_center=(x_offset - 30.0, 40.0),
        nose_tip=(x_offset - 48.5, 60.0),
        mouth_right_corner=(x_offset - 60.0, 80.0),
    )
    np.testing.assert_array_equal(out, expected)
    k = fkd_ops.KEYPOINT_NAMES.index
    assert np.all(np.isnan(out[0, 2 * k("left_eye_center") : 2 * k("left_eye_center") + 2]))
    assert np.all(np.isnan(out[0, 2 * k("mouth_left_corner") : 2 * k("mouth_left_corner") + 2]))
    # Pixel column 2 (spanning [2, 3)) lands in column 93 (spanning [93, 94) = 96 - [2, 3)).
    assert out_images.numpy()[0, 10, 93] == 255 and out_images.numpy().sum() == 255


@given(flip_cases())
def test_flipping_twice_is_identity(case):
    once = fkd_ops.flip_horizontal(case.images, case.keypoints, case.flip, **flip_kwargs(case))
    twice = fkd_ops.flip_horizontal(once[0], once[1], case.flip, **flip_kwargs(case))
    np.testing.assert_array_equal(twice[0].numpy(), case.images)
    np.testing.assert_allclose(twice[1].numpy(), case.keypoints, rtol=0, atol=1e-5)
    untouched = ~case.flip
    np.testing.assert_array_equal(once[0].numpy()[untouched], case.images[untouched])
    np.testing.assert_array_equal(once[1].numpy()[untouched], case.keypoints[untouched])


@pytest.mark.parametrize("image_dtype", IMAGE_DTYPES)
@pytest.mark.parametrize("kp_dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(0, 96, 96), (0, 5, 4, 3), (1, 96, 96), (1, 5, 4, 3)], ids=str)
def test_empty_batch_and_batch_of_one(shape, kp_dtype, image_dtype):
    rng = np.random.default_rng(9)
    images = random_images(rng, shape, image_dtype)
    keypoints = rng.uniform(0, 96, (shape[0], 30)).astype(kp_dtype)
    flip = np.ones(shape[0], bool)
    got = fkd_ops.flip_horizontal(images, keypoints, flip)
    expected = oracles.flip(images, keypoints, flip)
    np.testing.assert_array_equal(got[0].numpy(), expected[0])
    np.testing.assert_array_equal(got[1].numpy(), expected[1])
    out_images, out_kp, flipped = fkd_ops.random_flip(images, keypoints, seed=[1, 2])
    assert out_images.shape == shape and out_kp.shape == keypoints.shape and flipped.shape == (shape[0],)
    fused = fkd_ops.flip_normalize(images, keypoints, flip, mode="standardize")
    np.testing.assert_allclose(
        fused[0].numpy(), oracles.normalize(expected[0], mode="standardize"), rtol=1e-5, atol=1e-5
    )


# ------------------------------------------------------------------ seeded decisions

SEEDS = [(0, 0), (1, 2), (-1, 7), (2**31 - 1, -(2**31)), (123456789, 987654321)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("probability", [0.0, 0.25, 0.5, 1.0])
def test_decisions_agree_everywhere(seed, probability):
    """Op (int32 and int64 seeds) == twin == _native.flip_decisions == the rule in
    exact integers, and the op returns the decisions it applied."""
    batch = 50
    expected = oracles.flip_decisions(seed, batch, probability)
    images = np.arange(batch * 2 * 3, dtype=np.float32).reshape(batch, 2, 3)
    keypoints = np.random.default_rng(0).uniform(0, 3, (batch, 30)).astype(np.float32)
    for dtype in (tf.int32, tf.int64):
        out_images, out_kp, flipped = fkd_ops.random_flip(
            images, keypoints, tf.constant(seed, dtype), probability=probability
        )
        np.testing.assert_array_equal(flipped.numpy(), expected, err_msg=str(dtype))
        applied = oracles.flip(images, keypoints, expected)
        np.testing.assert_array_equal(out_images.numpy(), applied[0])
        np.testing.assert_array_equal(out_kp.numpy(), applied[1])
    np.testing.assert_array_equal(reference.flip_decisions(seed, batch, probability).numpy(), expected)
    np.testing.assert_array_equal(libraries.native().flip_decisions(seed[0], seed[1], batch, probability), expected)
    if probability in (0.0, 1.0):
        assert np.all(expected == bool(probability))


def test_int64_seeds_beyond_int32():
    seed = (2**62 + 12345, -(2**63))
    expected = oracles.flip_decisions(seed, 40)
    _, _, flipped = fkd_ops.random_flip(np.zeros((40, 1, 1)), np.zeros((40, 30)), tf.constant(seed, tf.int64))
    np.testing.assert_array_equal(flipped.numpy(), expected)
    np.testing.assert_array_equal(reference.flip_decisions(seed, 40).numpy(), expected)


def test_same_seed_same_decisions_other_seed_other_decisions():
    images, keypoints = np.zeros((64, 2, 2), np.uint8), np.zeros((64, 30), np.float32)
    first = fkd_ops.random_flip(images, keypoints, [3, 4])[2].numpy()
    again = fkd_ops.random_flip(images, keypoints, [3, 4])[2].numpy()
    np.testing.assert_array_equal(first, again)
    others = [fkd_ops.random_flip(images, keypoints, s)[2].numpy() for s in ([3, 5], [4, 4], [0, 0])]
    assert all(np.any(o != first) for o in others)
    # A prefix of a batch gets the same decisions as the batch: decisions depend on (seed, index).
    np.testing.assert_array_equal(fkd_ops.random_flip(images[:10], keypoints[:10], [3, 4])[2].numpy(), first[:10])


@pytest.mark.parametrize("probability", [0.1, 0.5, 0.9])
def test_decision_frequency_follows_probability(probability):
    decisions = reference.flip_decisions([42, 7], 20000, probability).numpy()
    assert abs(decisions.mean() - probability) < 0.015


# ------------------------------------------------------------------ fused flip + normalize


@given(flip_cases(), st.sampled_from(NORMALIZE_MODES), st.sampled_from(FLOAT_DTYPES))
def test_flip_normalize_is_flip_then_normalize(case, mode, out_dtype):
    kw = dict(mode=mode, mean=100.0, stddev=40.0, dtype=out_dtype, **flip_kwargs(case))
    norm_kw = dict(mode=mode, mean=100.0, stddev=40.0, dtype=out_dtype)
    fused = fkd_ops.flip_normalize(case.images, case.keypoints, case.flip, **kw)
    flipped = fkd_ops.flip_horizontal(case.images, case.keypoints, case.flip, **flip_kwargs(case))
    composed = fkd_ops.normalize_images(flipped[0], **norm_kw)
    twin = reference.flip_normalize(case.images, case.keypoints, case.flip, **kw)
    expected = oracles.normalize(
        oracles.flip(case.images, case.keypoints, case.flip, **flip_kwargs(case))[0], mode=mode, mean=100.0, stddev=40.0
    )
    assert fused[0].dtype == tf.as_dtype(out_dtype) and fused[0].shape == case.images.shape
    # Mirroring reorders the statistics' sums: equal up to the output's rounding.
    tol = {"rtol": 2e-6, "atol": 2e-6} if out_dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(fused[0].numpy(), composed.numpy(), **tol)
    np.testing.assert_allclose(fused[0].numpy(), expected, **tol)
    np.testing.assert_allclose(
        twin[0].numpy(), expected, **({"rtol": 1e-4, "atol": 1e-4} if out_dtype == np.float32 else tol)
    )
    np.testing.assert_array_equal(fused[1].numpy(), flipped[1].numpy())
    np.testing.assert_array_equal(twin[1].numpy(), flipped[1].numpy())


@given(
    flip_cases(), st.sampled_from(NORMALIZE_MODES), st.integers(-(2**31), 2**31 - 1), st.sampled_from([0.0, 0.5, 1.0])
)
def test_random_flip_normalize_is_random_flip_then_normalize(case, mode, seed, probability):
    kw = dict(probability=probability, **flip_kwargs(case))
    images, keypoints, flipped = fkd_ops.random_flip_normalize(case.images, case.keypoints, [seed, 5], mode=mode, **kw)
    plain = fkd_ops.random_flip(case.images, case.keypoints, [seed, 5], **kw)
    twin = reference.random_flip_normalize(case.images, case.keypoints, [seed, 5], mode=mode, **kw)
    np.testing.assert_array_equal(flipped.numpy(), plain[2].numpy())
    np.testing.assert_array_equal(twin[2].numpy(), plain[2].numpy())
    np.testing.assert_array_equal(keypoints.numpy(), plain[1].numpy())
    np.testing.assert_allclose(
        images.numpy(), fkd_ops.normalize_images(plain[0], mode=mode).numpy(), rtol=2e-6, atol=2e-6
    )
    np.testing.assert_allclose(twin[0].numpy(), images.numpy(), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ gradients

PAIRS = [(0, 2)]  # 4 points: 0 and 2 swap, 1 and 3 stay
FLIP = np.array([True, False, True])
SHAPES = [(3, 2, 4), (3, 2, 3, 2)]


def grad_inputs(shape):
    rng = np.random.default_rng(23)
    return rng.normal(0, 2, shape), rng.uniform(0, shape[2], (shape[0], 8))


def mixed_seed(batch: int) -> list[int]:
    """A seed whose decisions flip some samples and keep others."""
    for s in range(100):
        d = oracles.flip_decisions([s, 0], batch)
        if d.any() and not d.all():
            return [s, 0]
    raise AssertionError("no seed with mixed decisions")


def flip_fns(op: str, mode: str = "scale"):
    """f(images, keypoints) -> (images, keypoints) of the op, with fixed decisions."""
    norm = dict(mode=mode, mean=0.5, stddev=1.7, scale=0.25, dtype=tf.float64)
    if op == "flip_horizontal":
        return lambda x, k: fkd_ops.flip_horizontal(x, k, FLIP, pairs=PAIRS)
    if op == "random_flip":
        return lambda x, k: fkd_ops.random_flip(x, k, mixed_seed(3), pairs=PAIRS)[:2]
    if op == "flip_normalize":
        return lambda x, k: fkd_ops.flip_normalize(x, k, FLIP, pairs=PAIRS, **norm)
    return lambda x, k: fkd_ops.random_flip_normalize(x, k, mixed_seed(3), pairs=PAIRS, **norm)[:2]


def twin_fns(op: str, mode: str = "scale"):
    norm = dict(mode=mode, mean=0.5, stddev=1.7, scale=0.25, dtype=tf.float64)
    if op == "flip_horizontal":
        return lambda x, k: reference.flip_horizontal(x, k, FLIP, pairs=PAIRS)
    if op == "random_flip":
        return lambda x, k: reference.random_flip(x, k, mixed_seed(3), pairs=PAIRS)[:2]
    if op == "flip_normalize":
        return lambda x, k: reference.flip_normalize(x, k, FLIP, pairs=PAIRS, **norm)
    return lambda x, k: reference.random_flip_normalize(x, k, mixed_seed(3), pairs=PAIRS, **norm)[:2]


OPS_AND_MODES = [("flip_horizontal", "-"), ("random_flip", "-")] + [
    (op, mode) for op in ("flip_normalize", "random_flip_normalize") for mode in NORMALIZE_MODES
]


@pytest.mark.parametrize("shape", SHAPES, ids=["rank3", "rank4 C=2"])
@pytest.mark.parametrize("op,mode", OPS_AND_MODES)
def test_compute_gradient_float64(op, mode, shape):
    f = flip_fns(op, mode if mode != "-" else "scale")
    x, k = grad_inputs(shape)
    # Each output against each input (an all-zero block, e.g. d keypoints / d images, is skipped).
    e_images = gradcheck.gradient_error(op, f"images {mode} {shape}", lambda a: f(a, k)[0], [x])
    e_keypoints = gradcheck.gradient_error(op, f"keypoints {mode} {shape}", lambda b: f(x, b)[1], [k])
    assert e_images < gradcheck.TOLERANCE and e_keypoints < gradcheck.TOLERANCE


@pytest.mark.parametrize("op", ["flip_horizontal", "flip_normalize", "random_flip", "random_flip_normalize"])
def test_keypoint_gradient_with_uint8_images(op):
    """Integer pixels have no gradient; the keypoints still do."""
    images = random_images(np.random.default_rng(0), (3, 2, 4), np.uint8)
    k = np.random.default_rng(1).uniform(0, 4, (3, 8))
    f = flip_fns(op)
    error = gradcheck.gradient_error(op, "keypoints, uint8 images", lambda b: f(images, b)[1], [k])
    assert error < gradcheck.TOLERANCE
    images_t = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images_t)
        out = f(images_t, tf.constant(k))
    assert tape.gradient(out[0], images_t) is None


@pytest.mark.parametrize(
    "image_dtype,kp_dtype", [(np.float64, np.float64), (np.float32, np.float32), (np.float32, np.float64)]
)
@pytest.mark.parametrize("op,mode", OPS_AND_MODES)
def test_custom_gradient_matches_twin_autodiff(op, mode, image_dtype, kp_dtype):
    mode = mode if mode != "-" else "scale"
    rng = np.random.default_rng(31)
    x = tf.constant(rng.normal(0, 2, (3, 5, 4, 3)).astype(image_dtype))
    k = rng.uniform(0, 4, (3, 8)).astype(kp_dtype)
    k[1, 0] = np.nan  # a missing point: its gradient is defined all the same
    k = tf.constant(k)
    results = []
    for make in (flip_fns, twin_fns):
        f = make(op, mode)
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            out_images, out_kp = f(x, k)
            w_images = tf.constant(np.random.default_rng(2).normal(size=out_images.shape), out_images.dtype)
            w_kp = tf.constant(np.random.default_rng(3).normal(size=out_kp.shape), out_kp.dtype)
            y = tf.reduce_sum(out_images * w_images) + tf.cast(tf.reduce_sum(out_kp * w_kp), out_images.dtype)
        gx, gk = tape.gradient(y, [x, k])
        assert gx.dtype == x.dtype and gk.dtype == k.dtype
        results.append((gx.numpy(), gk.numpy()))
    tol = {"rtol": 1e-5, "atol": 1e-5} if np.float32 in (image_dtype, kp_dtype) else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(results[0][0], results[1][0], **tol, err_msg="images")
    np.testing.assert_allclose(results[0][1], results[1][1], **tol, err_msg="keypoints")


def test_large_batch_sharded_over_the_pool():
    rng = np.random.default_rng(12)
    images = random_images(rng, (128, 96, 96, 1), np.uint8)
    keypoints = rng.uniform(0, 96, (128, 30)).astype(np.float32)
    keypoints[rng.random(keypoints.shape) < 0.5] = np.nan
    out_images, out_kp, flipped = fkd_ops.random_flip(images, keypoints, [5, 6])
    expected = oracles.flip(images, keypoints, oracles.flip_decisions([5, 6], 128))
    np.testing.assert_array_equal(out_images.numpy(), expected[0])
    np.testing.assert_array_equal(out_kp.numpy(), expected[1])
    fused, _, _ = fkd_ops.random_flip_normalize(images, keypoints, [5, 6], mode="standardize")
    np.testing.assert_allclose(fused.numpy(), oracles.normalize(expected[0], mode="standardize"), rtol=1e-5, atol=1e-5)
    x = tf.constant(images.astype(np.float64))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fkd_ops.flip_horizontal(x, keypoints, flipped)[0] * tf.range(96, dtype=tf.float64)[:, None])
    g = tape.gradient(y, x).numpy()
    column = np.arange(96.0)[None, None, :, None]
    # d/dx of sum(out[b, h, w] * w): a mirrored sample's pixel at w lands at column 95 - w.
    expected_g = np.where(flipped.numpy()[:, None, None, None], 95.0 - column, column) * np.ones_like(g)
    np.testing.assert_array_equal(g, expected_g)
