"""The vectorized CPU loops against independent numpy computations.

The kernels split work into SIMD lanes, blocks and row tails; these cases pick
sizes that land on every boundary (below one vector, lane and block remainders,
several blocks, odd widths, channels) so a lane or tail handled wrongly shows.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import fkd_ops
from fkd_ops import reference
from fkd_ops.keypoints import FLIP_PAIRS

BLOCK = 4096  # kernels/masked_rmse.h: kMaskedRmseBlock


def _rmse_inputs(rng, n, dtype, missing=0.6):
    p = rng.normal(size=n).astype(dtype)
    t = rng.normal(size=n).astype(dtype)
    t[rng.random(n) < missing] = np.nan
    return p, t


@pytest.mark.parametrize("n", [1, 7, 15, 16, 17, 33, 3840, BLOCK - 1, BLOCK, BLOCK + 5, 3 * BLOCK + 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_rmse_matches_numpy_on_every_lane_and_block_boundary(n, dtype):
    rng = np.random.default_rng(n)
    p, t = _rmse_inputs(rng, n, dtype)
    present = ~np.isnan(t)
    d = np.where(present, p.astype(np.float64) - np.where(present, t, 0), 0.0)
    sum_sq, count = float(np.sum(d * d)), int(present.sum())
    out = fkd_ops.masked_rmse(p, t)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(float(out.sum_sq), sum_sq, rtol=rtol)
    assert float(out.count) == count
    expected = np.sqrt(sum_sq / count) if count else 0.0
    np.testing.assert_allclose(float(out.loss), expected, rtol=rtol)


def test_masked_rmse_has_the_same_bits_whatever_the_sharding():
    # 600 blocks (19 MB of input) are split over the thread pool by the op
    # (tf/op_helpers.h: kParallelPassBytes) and run on one thread by the numpy
    # face: blocks are summed in a fixed order, so the bits agree.
    from fkd_ops import _native

    rng = np.random.default_rng(1)
    p, t = _rmse_inputs(rng, 600 * BLOCK + 3, np.float32)
    eager = fkd_ops.masked_rmse(p, t).sum_sq.numpy()
    graph = tf.function(lambda a, b: fkd_ops.masked_rmse(a, b).sum_sq)(p, t).numpy()
    native = _native.masked_rmse(p, t)[1]
    assert eager.tobytes() == graph.tobytes()
    assert np.float32(native).tobytes() == eager.tobytes()

    # The gradient pass over as many elements, sharded the same way.
    pt, tt = tf.constant(p), tf.constant(t)
    with tf.GradientTape() as tape:
        tape.watch(pt)
        loss = fkd_ops.masked_rmse(pt, tt).loss
    grad = tape.gradient(loss, pt).numpy()
    present = ~np.isnan(t)
    d = np.where(present, p.astype(np.float64) - np.where(present, t, 0), 0.0)
    want = d / np.sqrt(np.sum(d * d) * present.sum())
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-12)


LANES = 16  # kernels/masked_rmse.cc: kLanes


def _lane_order_block_sums(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """masked_rmse's per-block sums of squares in the exact order the kernel
    documents: element i of a block into lane i % 16 (the tail after the last
    whole group of 16 into lanes 0, 1, ...), each lane summed in order, the lanes
    combined by the fixed pairwise tree; float64 without fused multiply-adds.
    Equal bits are then a proof, not a coincidence."""
    sums = []
    for begin in range(0, len(p), BLOCK):
        bp = p[begin : begin + BLOCK].astype(np.float64)
        bt = t[begin : begin + BLOCK].astype(np.float64)
        present = ~np.isnan(bt)
        d = np.where(present, bp - np.where(present, bt, 0.0), 0.0)
        squares = d * d
        whole = len(d) - len(d) % LANES
        lanes = np.zeros(LANES)
        for row in squares[:whole].reshape(-1, LANES):
            lanes = lanes + row
        tail = squares[whole:]
        lanes[: len(tail)] = lanes[: len(tail)] + tail
        width = LANES // 2
        while width:
            lanes[:width] = lanes[:width] + lanes[width : 2 * width]
            width //= 2
        sums.append(lanes[0])
    return np.array(sums)


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


def test_masked_rmse_avx2_and_portable_paths_each_sum_in_the_documented_order(tmp_path):
    # Each path is compared with an exact model of the summation order, so a path
    # that drops, reorders or fuses a term fails on its own. FKD_OPS_NO_AVX2
    # forces the portable loop; the module says which loop ran, so the test knows
    # it saw two different paths (on a CPU without AVX2 it checks the portable
    # one twice, and says so by its assertion on the reported paths).
    rng = np.random.default_rng(5)
    p, t = _rmse_inputs(rng, 3 * BLOCK + 21, np.float32)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    script = (
        "import numpy as np\n"
        "from fkd_ops import _native\n"
        f"p = np.load(r'{tmp_path / 'p.npy'}'); t = np.load(r'{tmp_path / 't.npy'}')\n"
        "sums, _ = _native.masked_rmse_block_sums(p, t)\n"
        "print(_native.masked_rmse_float_path(), *[float(s).hex() for s in sums])\n"
    )
    want = _lane_order_block_sums(p, t)
    paths = []
    for extra in ({}, {"FKD_OPS_NO_AVX2": "1"}):
        env = {k: v for k, v in os.environ.items() if k != "FKD_OPS_NO_AVX2"}
        env.update(TF_CPP_MIN_LOG_LEVEL="2", **extra)
        # cwd away from the source tree, so the installed package is imported.
        path, *sums = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
        ).stdout.split()
        got = np.array([float.fromhex(s) for s in sums])
        assert got.tobytes() == want.tobytes(), f"{path}: {got.tolist()} != {want.tolist()}"
        paths.append(path)
    assert paths == ["avx2" if _has_avx2() else "portable", "portable"]


@pytest.mark.parametrize("n", [1, 7, 16, 33, 3840, BLOCK + 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wanted", ["predictions", "targets", "both"])
def test_masked_rmse_gradient_of_each_wanted_output_matches_the_twin(n, dtype, wanted):
    rng = np.random.default_rng(n + 1)
    p, t = _rmse_inputs(rng, n, dtype)
    p, t = tf.constant(p), tf.constant(t)

    def grads(fn):
        @tf.function
        def g(p, t):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch([p, t])
                loss = fn(p, t).loss
            out = []
            if wanted in ("predictions", "both"):
                out.append(tape.gradient(loss, p))
            if wanted in ("targets", "both"):
                out.append(tape.gradient(loss, t))
            return out

        return [x.numpy() for x in g(p, t)]

    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in zip(grads(fkd_ops.masked_rmse), grads(reference.masked_rmse)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12)
        # Missing targets give exactly +0, never -0 or NaN.
        missing = np.isnan(t.numpy())
        assert not np.signbit(got[missing]).any()


def _numpy_flip_normalize(x, flip, offset, factor):
    out = (x.astype(np.float32) - np.float32(offset)) * np.float32(factor)
    out[flip] = out[flip][:, :, ::-1]
    return out


@pytest.mark.parametrize("width", [1, 3, 15, 16, 17, 31, 32, 33, 96, 101])
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_fused_flip_normalize_mirrors_every_row_width(width, channels):
    rng = np.random.default_rng(width)
    shape = (5, 4, width) + (() if channels is None else (channels,))
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    flip = np.array([True, False, True, True, False])
    kp = rng.uniform(0, width, size=(5, 30)).astype(np.float32)
    got, _ = fkd_ops.flip_normalize(x, kp, flip)
    want = _numpy_flip_normalize(x, flip, 0.0, np.float32(1 / 255))
    np.testing.assert_array_equal(got.numpy(), want)
    twin, _ = reference.flip_normalize(x, kp, flip)
    np.testing.assert_array_equal(got.numpy(), twin.numpy())


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("mode", ["scale", "standardize", "affine"])
def test_fused_flip_normalize_matches_the_twin_for_every_mode_and_input_type(dtype, mode):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, size=(6, 9, 37), dtype=np.uint8).astype(dtype)
    kp = rng.uniform(0, 37, size=(6, 30)).astype(np.float32)
    flip = rng.random(6) < 0.5
    kwargs = {"mode": mode, "mean": 100.0, "stddev": 50.0}
    got, got_kp = fkd_ops.flip_normalize(x, kp, flip, **kwargs)
    want, want_kp = reference.flip_normalize(x, kp, flip, **kwargs)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(got_kp.numpy(), want_kp.numpy())


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 17, 96])
def test_plain_flip_mirrors_every_row_width(dtype, width):
    rng = np.random.default_rng(width)
    x = rng.integers(0, 256, size=(4, 3, width, 2)).astype(dtype)
    kp = rng.uniform(0, width, size=(4, 30)).astype(np.float32)
    flip = np.array([True, False, True, False])
    got, _ = fkd_ops.flip_horizontal(x, kp, flip, pairs=FLIP_PAIRS)
    want = x.copy()
    want[flip] = x[flip][:, :, ::-1, :]
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("batch", [3, 400])
def test_random_flip_normalize_matches_the_twin_inline_and_sharded(batch):
    # 400 images move ~18 MB: past tf/op_helpers.h's kParallelPassBytes, so the
    # pass is split over the thread pool; 3 images run on the calling thread.
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(batch, 96, 96), dtype=np.uint8)
    kp = rng.uniform(0, 96, size=(batch, 30)).astype(np.float32)
    seed = tf.constant([11, 12], tf.int64)
    got = fkd_ops.random_flip_normalize(x, kp, seed)
    want = reference.random_flip_normalize(x, kp, seed)
    np.testing.assert_array_equal(got[2].numpy(), want[2].numpy())
    np.testing.assert_array_equal(got[0].numpy(), want[0].numpy())
    np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
