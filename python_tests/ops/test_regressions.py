"""Regressions from the fuzzing of issue 14 that the GPU rework fixed at the root.

- A flip of an empty batch whose keypoints declare 2**38 columns built a
  partner table of 2**37 entries before noticing there was no sample: SIGSEGV
  eagerly, std::bad_alloc (SIGABRT) in a tf.function, 1 GB for [0, 2**29]. The
  table is now built only for samples that exist, and no C++ exception leaves a
  kernel (they become ResourceExhausted / Internal) or a binding.
- Standardizing a float image holding inf gave -inf for its finite pixels, where
  tf.image.per_image_standardization (which the op equals) and the twin give
  NaN: a NaN std now wins the max(std, 1/sqrt(N)) as tf.maximum lets it.

Each runs in a child process where a crash would kill it, so a regression shows
as a failure here rather than the end of the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import fkd_ops
from fkd_ops.ops import libraries, reference

_EMPTY_BATCH_HUGE_COLUMNS = textwrap.dedent("""
    import resource
    import numpy as np, tensorflow as tf, fkd_ops
    from fkd_ops.ops.libraries import native
    images = np.zeros((0, 96, 96), np.uint8)
    fkd_ops.flip_horizontal(images, tf.zeros([0, 30]), np.zeros(0, bool))  # load everything first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for cols in (2**38, 2**29):
        keypoints = tf.zeros([0, cols])
        eager = fkd_ops.flip_horizontal(images, keypoints, np.zeros(0, bool), pairs=[])
        graph = tf.function(lambda k: fkd_ops.flip_horizontal(images, k, np.zeros(0, bool), pairs=[]))(keypoints)
        seeded = fkd_ops.random_flip_normalize(images, keypoints, [1, 2], pairs=[(0, 1)])
        assert eager[1].shape == graph[1].shape == seeded[1].shape == (0, cols)
        out = native().flip_horizontal(images, np.zeros((0, cols), np.float32), None, [], 96.0)
        assert out[1].shape == (0, cols)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
    assert grown_mb < 256, f"an empty batch took {grown_mb} MB"  # 2**29 columns took 1 GB
    print("ok")
""")


def test_an_empty_batch_with_absurdly_many_keypoint_columns_is_an_empty_result(tmp_path):
    # Run away from the repository root, whose unbuilt fkd_ops/ would shadow the installed package.
    done = subprocess.run(
        [sys.executable, "-c", _EMPTY_BATCH_HUGE_COLUMNS], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split()[-1] == "ok"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_standardize_follows_per_image_standardization_on_non_finite_pixels(dtype, bad):
    images = np.random.default_rng(0).uniform(0, 255, (3, 8, 8)).astype(dtype)
    images[1, 2, 3] = bad
    op = fkd_ops.normalize_images(images, mode="standardize", dtype=dtype).numpy()
    twin = reference.normalize_images(images, mode="standardize", dtype=dtype).numpy()
    tf_ref = tf.image.per_image_standardization(images[..., None].astype(np.float32)).numpy()[..., 0]
    assert np.isnan(op[1]).all() and np.isnan(twin[1]).all() and np.isnan(tf_ref[1]).all()
    for b in (0, 2):  # the other images are untouched by the bad one
        np.testing.assert_allclose(op[b], tf_ref[b], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(op, twin, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_the_gpu_entry_points_refuse_a_huge_partner_table_before_building_it():
    # They take num_points as a number, not from an array that holds them.
    native = libraries.native()
    images = np.zeros((1, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="at most 1024 keypoints"):
        native.gpu_emulation.images(
            "uint8",
            "uint8",
            images.ctypes.data,
            images.ctypes.data,
            (1, 4, 4, 1),
            keypoint_dtype="float32",
            keypoints=8,
            out_keypoints=8,
            num_points=2**40,
            flip=8,
        )
