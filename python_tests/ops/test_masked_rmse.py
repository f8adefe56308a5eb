"""fkd_ops.masked_rmse: forward == twin == numpy, gradients, and the edges the
contract names (no target present, perfect fit, diverging predictions)."""

from __future__ import annotations

import gradcheck
import numpy as np
import oracles
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from strategies import FLOAT_DTYPES, rmse_cases, with_missing

import fkd_ops
from fkd_ops.ops import libraries, reference


def tolerance(dtype) -> dict:
    return {"rtol": 2e-6, "atol": 1e-6} if np.dtype(dtype) == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def check_forward(predictions, targets, squared: bool) -> None:
    dtype = predictions.dtype
    expected = oracles.masked_rmse(predictions, targets, squared)
    op = fkd_ops.masked_rmse(predictions, targets, squared=squared)
    twin = reference.masked_rmse(predictions, targets, squared=squared)
    for name, o, t, e in zip(op._fields, op, twin, expected):
        assert o.dtype == tf.as_dtype(dtype), name
        assert o.shape == (), name
        np.testing.assert_allclose(o.numpy(), e, **tolerance(dtype), err_msg=f"op {name}")
        # The float32 twin sums in float32: a few ulps per term more.
        twin_tol = {"rtol": 2e-5, "atol": 1e-5} if dtype == np.float32 else tolerance(dtype)
        np.testing.assert_allclose(t.numpy(), e, **twin_tol, err_msg=f"twin {name}")
    assert op.count.numpy() == expected[2], "count must be exact"


@given(rmse_cases())
def test_forward_matches_twin_and_numpy(case):
    check_forward(case.predictions, case.targets, case.squared)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize(
    "edge",
    ["empty batch", "all missing", "none missing", "batch of one", "rank 1", "rank 3"],
)
def test_forward_edges(edge, squared, dtype):
    rng = np.random.default_rng(7)
    shape = {"empty batch": (0, 30), "batch of one": (1, 30), "rank 1": (30,), "rank 3": (4, 15, 2)}.get(edge, (6, 30))
    targets = rng.uniform(0, 96, shape).astype(dtype)
    predictions = (targets + rng.normal(0, 3, shape)).astype(dtype)
    if edge == "all missing":
        targets[:] = np.nan
    elif edge in ("batch of one", "rank 1", "rank 3"):
        targets = with_missing(rng, targets, 0.4)
    check_forward(predictions, targets, squared)
    result = fkd_ops.masked_rmse(predictions, targets, squared=squared)
    if edge in ("empty batch", "all missing"):
        assert result.count.numpy() == 0 and result.loss.numpy() == 0 and result.sum_sq.numpy() == 0
    if edge == "none missing":
        assert result.count.numpy() == predictions.size


def test_known_value():
    # Two present errors 3 and 4 (the rest missing): RMSE sqrt((9 + 16) / 2).
    p = np.array([[3.0, 10.0, 0.0, 5.0]])
    t = np.array([[0.0, np.nan, 4.0, np.nan]])
    result = fkd_ops.masked_rmse(p, t)
    assert result.count.numpy() == 2
    assert result.sum_sq.numpy() == 25.0
    np.testing.assert_allclose(result.loss.numpy(), np.sqrt(12.5), rtol=1e-15)
    np.testing.assert_allclose(fkd_ops.masked_rmse(p, t, squared=True).loss.numpy(), 12.5, rtol=1e-15)


@given(rmse_cases(), st.integers(0, 10))
def test_sum_sq_and_count_combine_batches_exactly(case, cut):
    """The dataset RMSE comes from summed sum_sq and count, not from batch RMSEs."""
    p, t = case.predictions.reshape(-1), case.targets.reshape(-1)
    cut = min(cut, p.size)
    parts = [fkd_ops.masked_rmse(p[:cut], t[:cut]), fkd_ops.masked_rmse(p[cut:], t[cut:])]
    whole = fkd_ops.masked_rmse(p, t)
    sum_sq = sum(float(r.sum_sq.numpy()) for r in parts)
    count = sum(float(r.count.numpy()) for r in parts)
    assert count == whole.count.numpy()
    np.testing.assert_allclose(sum_sq, whole.sum_sq.numpy(), **tolerance(p.dtype))
    if count:
        np.testing.assert_allclose(np.sqrt(sum_sq / count), whole.loss.numpy(), **tolerance(p.dtype))


@given(rmse_cases())
def test_native_face_matches_op(case):
    """The pybind11 module runs the same kernel on numpy arrays."""
    native = libraries.native()
    got = native.masked_rmse(case.predictions, case.targets, case.squared)
    op = fkd_ops.masked_rmse(case.predictions, case.targets, squared=case.squared)
    for g, o in zip(got, op):  # Python floats holding values of the input dtype
        np.testing.assert_array_equal(np.asarray(g, dtype=case.predictions.dtype), o.numpy())


# ------------------------------------------------------------------ gradients


def gradients(fn, p, t, w_loss, w_sum):
    p = tf.constant(p)
    t = tf.constant(t)
    with tf.GradientTape() as tape:
        tape.watch([p, t])
        out = fn(p, t)
        y = w_loss * out.loss + w_sum * out.sum_sq
    return [g.numpy() for g in tape.gradient(y, [p, t])]


@given(rmse_cases(), st.sampled_from([(1.0, 0.0), (0.0, 1.0), (0.7, -0.3)]))
def test_custom_gradient_matches_twin_autodiff_and_numpy(case, weights):
    p, t, squared = case.predictions, case.targets, case.squared
    w_loss, w_sum = weights
    got = gradients(lambda a, b: fkd_ops.masked_rmse(a, b, squared=squared), p, t, w_loss, w_sum)
    twin = gradients(lambda a, b: reference.masked_rmse(a, b, squared=squared), p, t, w_loss, w_sum)
    present = ~np.isnan(t)
    d_sum = np.where(present, 2.0 * (p.astype(np.float64) - np.nan_to_num(t.astype(np.float64))), 0.0)
    expected_p = w_loss * oracles.masked_rmse_grad(p, t, squared) + w_sum * d_sum
    tol = {"rtol": 1e-4, "atol": 1e-4} if p.dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}
    for g in got:
        assert g.dtype == p.dtype and g.shape == p.shape and np.all(np.isfinite(g))
    np.testing.assert_allclose(got[0], twin[0], **tol)
    np.testing.assert_allclose(got[1], twin[1], **tol)
    np.testing.assert_allclose(got[0], expected_p, **tol)
    np.testing.assert_allclose(got[1], -expected_p, **tol)
    assert np.all(got[0][~present] == 0) and np.all(got[1][~present] == 0)


@pytest.mark.parametrize("output", ["loss", "loss squared", "sum_sq"])
def test_compute_gradient_float64(output):
    rng = np.random.default_rng(3)
    t = with_missing(rng, rng.uniform(0, 96, (3, 6)), 0.3)
    t[0, :2] = 1.0  # at least two present
    p = np.where(np.isnan(t), rng.uniform(0, 96, t.shape), t + rng.normal(0, 4, t.shape))
    squared = output == "loss squared"
    field = "sum_sq" if output == "sum_sq" else "loss"

    def f(a, b):
        return getattr(fkd_ops.masked_rmse(a, b, squared=squared), field)

    # Missing targets stay NaN when perturbed: their numeric columns are 0, as they must be.
    error = gradcheck.gradient_error("masked_rmse", output, f, [p, t])
    assert error < gradcheck.TOLERANCE


# ------------------------------------------------------------------ edges of the contract


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("fn", [fkd_ops.masked_rmse, reference.masked_rmse], ids=["op", "twin"])
def test_no_target_present_gives_zero_loss_and_zero_gradients(fn, squared, dtype):
    p = np.array([[1.0, np.nan, np.inf], [2.0, 3.0, 4.0]], dtype=dtype)  # even NaN/inf predictions
    t = np.full_like(p, np.nan)
    out = fn(p, t, squared=squared)
    assert out.loss.numpy() == 0 and out.count.numpy() == 0 and out.sum_sq.numpy() == 0
    gp, gt = gradients(lambda a, b: fn(a, b, squared=squared), p, t, 1.0, 1.0)
    assert np.all(gp == 0) and np.all(gt == 0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("fn", [fkd_ops.masked_rmse, reference.masked_rmse], ids=["op", "twin"])
def test_perfect_fit_gives_zero_gradients(fn, squared, dtype):
    t = np.array([[10.0, np.nan, 30.0], [np.nan, 50.0, 60.0]], dtype=dtype)
    p = np.nan_to_num(t, nan=7.0)  # equal where present
    out = fn(p, t, squared=squared)
    assert out.loss.numpy() == 0 and out.count.numpy() == 4
    gp, gt = gradients(lambda a, b: fn(a, b, squared=squared), p, t, 1.0, 0.0)
    assert np.all(gp == 0) and np.all(gt == 0), (gp, gt)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("squared", [False, True])
def test_non_finite_prediction_propagates(bad, squared, dtype):
    t = np.array([[10.0, 20.0, np.nan], [40.0, 50.0, 60.0]], dtype=dtype)
    p = t + 1
    p[1, 1] = bad
    out = fkd_ops.masked_rmse(p, t, squared=squared)
    twin = reference.masked_rmse(p, t, squared=squared)
    expected = np.nan if np.isnan(bad) else np.inf
    np.testing.assert_array_equal(out.loss.numpy(), expected)
    np.testing.assert_array_equal(out.sum_sq.numpy(), expected)
    np.testing.assert_array_equal(twin.loss.numpy(), expected)
    assert out.count.numpy() == 5
    gp, gt = gradients(lambda a, b: fkd_ops.masked_rmse(a, b, squared=squared), p, t, 1.0, 0.0)
    # NaN, or inf (squared: the slope 2 (p - t) / count is itself infinite).
    assert not np.isfinite(gp[1, 1]) and not np.isfinite(gt[1, 1]), "a diverging prediction must show in its gradient"
    twin_gp, twin_gt = gradients(lambda a, b: reference.masked_rmse(a, b, squared=squared), p, t, 1.0, 0.0)
    np.testing.assert_array_equal(gp, twin_gp)
    np.testing.assert_array_equal(gt, twin_gt)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_non_finite_prediction_at_missing_target_is_ignored(dtype):
    t = np.array([[10.0, np.nan], [30.0, 40.0]], dtype=dtype)
    p = np.array([[11.0, np.nan], [33.0, 44.0]], dtype=dtype)
    out = fkd_ops.masked_rmse(p, t)
    np.testing.assert_allclose(out.loss.numpy(), np.sqrt((1 + 9 + 16) / 3), rtol=1e-6)
    gp, gt = gradients(fkd_ops.masked_rmse, p, t, 1.0, 1.0)
    assert np.all(np.isfinite(gp)) and gp[0, 1] == 0 and gt[0, 1] == 0


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_large_input_sharded_over_the_pool(dtype):
    """Many reduction blocks, split over TF's threads: the same result as numpy, and
    the same bits as the single-threaded pybind11 face (blocks combine in order)."""
    rng = np.random.default_rng(99)
    t = with_missing(rng, rng.uniform(0, 96, (6000, 30)), 0.6).astype(dtype)
    p = (np.nan_to_num(t, nan=1.0) + rng.normal(0, 3, t.shape)).astype(dtype)
    out = fkd_ops.masked_rmse(p, t)
    expected = oracles.masked_rmse(p, t)
    for o, e in zip(out, expected):
        np.testing.assert_allclose(o.numpy(), e, rtol=1e-6 if dtype == np.float32 else 1e-12)
    native = libraries.native().masked_rmse(p, t, False)
    for o, n in zip(out, native):
        assert o.numpy() == dtype(n)
    again = fkd_ops.masked_rmse(p, t)
    assert all(a.numpy() == o.numpy() for a, o in zip(again, out))
    gp, gt = gradients(fkd_ops.masked_rmse, p, t, 1.0, 0.0)
    np.testing.assert_allclose(
        gp, oracles.masked_rmse_grad(p, t), rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-12
    )
    np.testing.assert_array_equal(gt, -gp)
