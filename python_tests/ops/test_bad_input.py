"""Bad input raises an error that names the argument and what was seen: an
InvalidArgumentError from the kernel (eager, or a Session run), a ValueError
from the shape function (graph construction), or a TypeError/ValueError from
the Python wrapper. Empty batches are valid. Nothing crashes the process."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import fkd_ops
from fkd_ops.ops import libraries

RAW = libraries.op_library()  # the generated op wrappers, to reach what fkd_ops' own checks stop first
IMAGES = np.zeros((2, 4, 5), np.uint8)
KP = np.zeros((2, 30), np.float32)
FLIP = np.array([True, False])
SEED = np.array([1, 2], np.int64)
InvalidArgument = tf.errors.InvalidArgumentError


def raises(exc, fn, *fragments: str):
    """Runs fn, expecting exc whose message holds every fragment (regex-escaped)."""
    with pytest.raises(exc) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert re.search(re.escape(fragment), message), f"{fragment!r} not in: {message}"
    return message


# ------------------------------------------------------------------ eager: the kernels

EAGER = {
    "rmse shapes differ": (
        lambda: fkd_ops.masked_rmse(np.zeros((2, 3)), np.zeros((3, 2))),
        ["predictions and targets must have the same shape", "[2,3]", "[3,2]"],
    ),
    "rmse rank 0": (
        lambda: fkd_ops.masked_rmse(np.float64(1), np.float64(2)),
        ["predictions must have rank >= 1", "shape []"],
    ),
    "normalize rank 2": (
        lambda: fkd_ops.normalize_images(np.zeros((3, 4), np.uint8)),
        ["images must have rank 3", "or 4", "got shape [3,4]"],
    ),
    "normalize rank 5": (
        lambda: fkd_ops.normalize_images(np.zeros((1, 3, 4, 1, 1), np.float32)),
        ["images must have rank 3", "[1,3,4,1,1]"],
    ),
    "normalize scale not finite (raw op)": (
        lambda: RAW.fkd_normalize_images(IMAGES, scale=float("inf")),
        ["scale must be finite", "inf"],
    ),
    "normalize stddev rounds to 0 in float32": (
        lambda: fkd_ops.normalize_images(IMAGES, mode="affine", stddev=1e-50),
        ["stddev > 0", "stddev 0"],
    ),
    "flip images rank 2": (
        lambda: fkd_ops.flip_horizontal(np.zeros((2, 4)), KP, FLIP),
        ["images must have rank 3", "[2,4]"],
    ),
    "flip keypoints rank 1": (
        lambda: fkd_ops.flip_horizontal(IMAGES, np.zeros(30), FLIP),
        ["keypoints must have rank 2", "[30]"],
    ),
    "flip odd keypoint columns": (
        lambda: fkd_ops.flip_horizontal(IMAGES, np.zeros((2, 29)), FLIP),
        ["keypoints must have an even number of columns", "[2,29]"],
    ),
    "flip batch sizes differ": (
        lambda: fkd_ops.flip_horizontal(IMAGES, np.zeros((3, 30)), FLIP),
        ["images and keypoints must have the same batch size", "[2,4,5]", "[3,30]"],
    ),
    "flip vector too long": (
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, [True, False, True]),
        ["flip must have shape [2]", "got shape [3]"],
    ),
    "flip vector too short": (
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, [True]),
        ["flip must have shape [2]", "got shape [1]"],
    ),
    "flip vector rank 2": (
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, [[True, False]]),
        ["flip must have shape [2]", "[1,2]"],
    ),
    "pairs out of range": (
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, FLIP, pairs=[(0, 15)]),
        ["pairs[1] = 15 is out of range", "15 keypoints"],
    ),
    "pairs negative": (
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, FLIP, pairs=[(-1, 3)]),
        ["pairs[0] = -1 is out of range"],
    ),
    "pairs repeated": (
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, FLIP, pairs=[(0, 1), (1, 2)]),
        ["pairs[2] = 1 repeats pairs[1]"],
    ),
    "pair of one point with itself": (
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, FLIP, pairs=[(3, 3)]),
        ["pairs[1] = 3 repeats pairs[0]"],
    ),
    "pairs odd count (raw op)": (
        lambda: RAW.fkd_flip_horizontal(IMAGES, KP, FLIP, pairs=[0, 1, 2]),
        ["pairs must hold an even number of indices", "got 3"],
    ),
    "random flip batch sizes differ": (
        lambda: fkd_ops.random_flip(IMAGES, np.zeros((1, 30)), SEED),
        ["same batch size", "[2,4,5]", "[1,30]"],
    ),
    "seed of 3": (lambda: fkd_ops.random_flip(IMAGES, KP, [1, 2, 3]), ["seed must have shape [2]", "got shape [3]"]),
    "seed scalar": (lambda: fkd_ops.random_flip(IMAGES, KP, 5), ["seed must have shape [2]", "got shape []"]),
    "seed [2, 1]": (lambda: fkd_ops.random_flip(IMAGES, KP, [[1], [2]]), ["seed must have shape [2]", "[2,1]"]),
    "probability > 1 (raw op)": (
        lambda: RAW.fkd_random_flip_horizontal(IMAGES, KP, SEED, pairs=[], probability=1.5),
        ["probability must be in [0, 1]", "1.5"],
    ),
    "probability NaN (raw op)": (
        lambda: RAW.fkd_random_flip_normalize(IMAGES, KP, SEED, pairs=[], probability=float("nan")),
        ["probability must be in [0, 1]", "nan"],
    ),
    "affine stddev 0 (raw op)": (
        lambda: RAW.fkd_normalize_images(IMAGES, mode="affine", stddev=0.0),
        ["affine normalization needs", "stddev > 0", "stddev 0"],
    ),
    "affine stddev < 0 (raw fused op)": (
        lambda: RAW.fkd_flip_normalize(IMAGES, KP, FLIP, pairs=[], mode="affine", stddev=-2.0),
        ["stddev > 0", "stddev -2"],
    ),
    "bad mode (raw op)": (lambda: RAW.fkd_normalize_images(IMAGES, mode="minmax"), ["mode", "minmax"]),
    "int32 predictions (raw op)": (
        lambda: RAW.fkd_masked_rmse(np.zeros(3, np.int32), np.zeros(3, np.int32)),
        ["'T'", "int32", "float, double"],
    ),
    "float seed (raw op)": (
        lambda: RAW.fkd_random_flip_horizontal(IMAGES, KP, [1.0, 2.0], pairs=[]),
        ["'Tseed'", "float", "int32, int64"],
    ),
    "fused flip vector wrong length": (
        lambda: fkd_ops.flip_normalize(IMAGES, KP, [True] * 3, mode="standardize"),
        ["flip must have shape [2]", "[3]"],
    ),
    # The gradient ops validate as well (they are reachable as raw ops).
    "rmse grad shapes": (
        lambda: RAW.fkd_masked_rmse_grad(np.zeros(3), np.zeros(4), 1.0, 1.0, 1.0, 1.0),
        ["predictions and targets must have the same shape", "[3]", "[4]"],
    ),
    "rmse grad non-scalar": (
        lambda: RAW.fkd_masked_rmse_grad(np.zeros(3), np.zeros(3), np.zeros(2), 1.0, 1.0, 1.0),
        ["sum_sq must be a scalar", "[2]"],
    ),
    "normalize grad shapes": (
        lambda: RAW.fkd_normalize_images_grad(np.zeros((1, 2, 3)), np.zeros((1, 3, 2))),
        ["grad and images must have the same shape", "[1,2,3]", "[1,3,2]"],
    ),
    "flip grad vector": (
        lambda: RAW.fkd_flip_horizontal_grad(np.zeros((2, 3, 3)), np.zeros((2, 4)), [True], pairs=[]),
        ["flip must have shape [2]", "[1]"],
    ),
}


@pytest.mark.parametrize("name", list(EAGER))
def test_eager_invalid_argument(name):
    fn, fragments = EAGER[name]
    raises(InvalidArgument, fn, *fragments)


# ------------------------------------------------------------------ the Python wrappers

WRAPPER = {
    "float16 predictions": (
        TypeError,
        lambda: fkd_ops.masked_rmse(np.zeros(3, np.float16), np.zeros(3, np.float16)),
        ["predictions must be float32 or float64", "float16"],
    ),
    "int predictions": (
        TypeError,
        lambda: fkd_ops.masked_rmse(np.zeros(3, np.int32), np.zeros(3)),
        ["predictions must be float32 or float64", "int32"],
    ),
    "targets tensor of another dtype": (
        ValueError,
        lambda: fkd_ops.masked_rmse(tf.zeros(3), tf.zeros(3, tf.float64)),
        ["targets", "float32", "float64"],
    ),
    "int32 images": (
        TypeError,
        lambda: fkd_ops.normalize_images(np.zeros((1, 3, 4), np.int32)),
        ["images must be uint8, float32 or float64", "int32"],
    ),
    "int output dtype": (
        TypeError,
        lambda: fkd_ops.normalize_images(IMAGES, dtype=tf.int32),
        ["dtype must be float32 or float64", "int32"],
    ),
    "float16 output dtype": (
        TypeError,
        lambda: fkd_ops.flip_normalize(IMAGES, KP, FLIP, dtype=np.float16),
        ["dtype must be float32 or float64", "float16"],
    ),
    "bad mode": (
        ValueError,
        lambda: fkd_ops.normalize_images(IMAGES, mode="minmax"),
        ["mode must be one of", "'minmax'"],
    ),
    "bad mode fused": (
        ValueError,
        lambda: fkd_ops.random_flip_normalize(IMAGES, KP, SEED, mode="Scale"),
        ["mode must be one of", "'Scale'"],
    ),
    "scale not finite": (
        ValueError,
        lambda: fkd_ops.normalize_images(IMAGES, scale=float("nan")),
        ["scale must be finite", "nan"],
    ),
    "affine stddev 0": (
        ValueError,
        lambda: fkd_ops.normalize_images(IMAGES, mode="affine", stddev=0.0),
        ["stddev > 0", "stddev 0.0"],
    ),
    "affine stddev < 0": (
        ValueError,
        lambda: fkd_ops.flip_normalize(IMAGES, KP, FLIP, mode="affine", stddev=-1.0),
        ["stddev > 0", "stddev -1.0"],
    ),
    "affine mean NaN": (
        ValueError,
        lambda: fkd_ops.normalize_images(IMAGES, mode="affine", mean=float("nan")),
        ["finite mean", "mean nan"],
    ),
    "int keypoints": (
        TypeError,
        lambda: fkd_ops.flip_horizontal(IMAGES, np.zeros((2, 30), np.int32), FLIP),
        ["keypoints must be float32 or float64", "int32"],
    ),
    "int32 flip images": (
        TypeError,
        lambda: fkd_ops.random_flip(np.zeros((2, 4, 5), np.int32), KP, SEED),
        ["images must be uint8, float32 or float64", "int32"],
    ),
    "int flip tensor": (
        ValueError,
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, tf.constant([1, 0])),
        ["flip", "bool", "int32"],
    ),
    "pair of three": (
        ValueError,
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, FLIP, pairs=[(0, 1, 2)]),
        ["pairs[0] must be a (left, right) pair", "(0, 1, 2)"],
    ),
    "pair of non-integers": (  # before: int(0.5) silently paired point 0
        TypeError,
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, FLIP, pairs=[(0.5, 1)]),
        ["pairs[0] must hold point indices (integers)", "(0.5, 1)"],
    ),
    "pair beyond int64": (  # before: OverflowError "int too big to convert"
        ValueError,
        lambda: fkd_ops.flip_horizontal(IMAGES, KP, FLIP, pairs=[(0, 2**63)]),
        ["pairs[1] = 9223372036854775808 is out of range"],
    ),
    "float seed": (
        TypeError,
        lambda: fkd_ops.random_flip(IMAGES, KP, [1.0, 2.0]),
        ["seed must be int32 or int64", "float32"],
    ),
    "uint8 seed": (
        TypeError,
        lambda: fkd_ops.random_flip_normalize(IMAGES, KP, np.array([1, 2], np.uint8)),
        ["seed must be int32 or int64", "uint8"],
    ),
    "probability > 1": (
        ValueError,
        lambda: fkd_ops.random_flip(IMAGES, KP, SEED, probability=1.5),
        ["probability must be in [0, 1]", "1.5"],
    ),
    "probability < 0": (
        ValueError,
        lambda: fkd_ops.random_flip_normalize(IMAGES, KP, SEED, probability=-0.1),
        ["probability must be in [0, 1]", "-0.1"],
    ),
    "probability NaN": (
        ValueError,
        lambda: fkd_ops.random_flip(IMAGES, KP, SEED, probability=float("nan")),
        ["probability must be in [0, 1]", "nan"],
    ),
}


@pytest.mark.parametrize("name", list(WRAPPER))
def test_wrapper_rejects(name):
    exc, fn, fragments = WRAPPER[name]
    raises(exc, fn, *fragments)


# ------------------------------------------------------------------ graph construction: shape functions

S = tf.TensorSpec
GRAPH = {
    "rmse shapes differ": (
        lambda p, t: fkd_ops.masked_rmse(p, t),
        [S([2, 3]), S([3, 2])],
        ["predictions and targets must have the same shape", "[2,3]", "[3,2]"],
    ),
    "rmse predictions rank 0": (
        lambda p, t: fkd_ops.masked_rmse(p, t),
        [S([]), S(None)],
        ["predictions must have rank >= 1", "got shape []"],
    ),
    "rmse targets rank 0": (
        lambda p, t: fkd_ops.masked_rmse(p, t),
        [S(None), S([])],
        ["targets must have rank >= 1", "got shape []"],
    ),
    "normalize rank 2": (lambda x: fkd_ops.normalize_images(x), [S([3, 4])], ["images must have rank 3", "[3,4]"]),
    "keypoints rank 1": (
        lambda x, k, f: fkd_ops.flip_horizontal(x, k, f),
        [S([2, 4, 5]), S([30]), S([2], tf.bool)],
        ["keypoints must have rank 2", "[30]"],
    ),
    "odd keypoint columns": (
        lambda x, k, f: fkd_ops.flip_horizontal(x, k, f),
        [S([None, 4, 5]), S([None, 29]), S([None], tf.bool)],
        ["keypoints must have an even number of columns", "[?,29]"],
    ),
    "batch sizes differ": (
        lambda x, k, f: fkd_ops.flip_normalize(x, k, f),
        [S([2, 4, 5], tf.uint8), S([3, 30]), S([None], tf.bool)],
        ["images and keypoints must have the same batch size", "[2,4,5]", "[3,30]"],
    ),
    "flip vector wrong length": (
        lambda x, k, f: fkd_ops.flip_horizontal(x, k, f),
        [S([2, 4, 5]), S([2, 30]), S([3], tf.bool)],
        ["flip needs one decision per sample", "[3]"],
    ),
    "flip vector vs keypoints, images batch unknown": (
        lambda x, k, f: fkd_ops.flip_horizontal(x, k, f),
        [S([None, 4, 5]), S([2, 30]), S([3], tf.bool)],
        ["flip needs one decision per sample", "keypoints has shape [2,30]", "flip has shape [3]"],
    ),
    "flip vector rank 2": (
        lambda x, k, f: fkd_ops.flip_horizontal(x, k, f),
        [S([2, 4, 5]), S([2, 30]), S([2, 1], tf.bool)],
        ["flip must be a vector", "[2,1]"],
    ),
    "pairs out of range": (
        lambda x, k, f: fkd_ops.flip_horizontal(x, k, f, pairs=[(0, 15)]),
        [S([2, 4, 5]), S([2, 30]), S([2], tf.bool)],
        ["pairs[1] = 15 is out of range"],
    ),
    "pairs repeated, columns unknown": (
        lambda x, k, f: fkd_ops.flip_horizontal(x, k, f, pairs=[(0, 1), (1, 2)]),
        [S([2, 4, 5]), S([2, None]), S([2], tf.bool)],
        ["pairs[2] = 1 repeats pairs[1]"],
    ),
    "pairs odd count, columns unknown (raw op)": (
        lambda x, k, f: RAW.fkd_flip_horizontal(x, k, f, pairs=[0, 1, 2]),
        [S([2, 4, 5]), S([2, None]), S([2], tf.bool)],
        ["pairs must hold an even number of indices", "got 3"],
    ),
    "seed of 3": (
        lambda x, k, s: fkd_ops.random_flip(x, k, s),
        [S([2, 4, 5]), S([2, 30]), S([3], tf.int64)],
        ["seed must have shape [2]", "[3]"],
    ),
    "seed rank 2": (
        lambda x, k, s: fkd_ops.random_flip_normalize(x, k, s),
        [S([2, 4, 5]), S([2, 30]), S([2, 1], tf.int32)],
        ["seed must have shape [2]", "[2,1]"],
    ),
}


@pytest.mark.parametrize("name", list(GRAPH))
def test_graph_construction_rejects(name):
    fn, signature, fragments = GRAPH[name]
    raises(ValueError, lambda: tf.function(fn, input_signature=signature).get_concrete_function(), *fragments)


def test_session_run_reports_what_only_the_feed_shows():
    """With unknown shapes at graph construction the kernel reports at run time."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.uint8, None)
        k = tf.compat.v1.placeholder(tf.float32, [None, None])
        f = tf.compat.v1.placeholder(tf.bool, [None])
        out = fkd_ops.flip_horizontal(x, k, f, pairs=[(0, 15)])
        p = tf.compat.v1.placeholder(tf.float64, None)
        t = tf.compat.v1.placeholder(tf.float64, None)
        loss = fkd_ops.masked_rmse(p, t).loss
    with tf.compat.v1.Session(graph=graph) as sess:
        raises(InvalidArgument, lambda: sess.run(out, {x: IMAGES, k: KP, f: FLIP}), "pairs[1] = 15 is out of range")
        raises(
            InvalidArgument, lambda: sess.run(out, {x: IMAGES[0], k: KP, f: FLIP}), "images must have rank 3", "[4,5]"
        )
        raises(InvalidArgument, lambda: sess.run(out, {x: IMAGES, k: KP[:1], f: FLIP}), "same batch size", "[1,30]")
        raises(
            InvalidArgument,
            lambda: sess.run(loss, {p: np.zeros(3), t: np.zeros(4)}),
            "predictions and targets must have the same shape",
            "[3]",
            "[4]",
        )
        # The error does not break the session: a good feed still runs.
        assert sess.run(loss, {p: np.ones(3), t: np.zeros(3)}) == 1.0


# ------------------------------------------------------------------ empty batches are valid


def test_empty_batches_are_valid_everywhere():
    images = np.zeros((0, 96, 96), np.uint8)
    kp = np.zeros((0, 30), np.float32)
    no = np.zeros(0, bool)
    result = fkd_ops.masked_rmse(kp, kp)
    assert [float(v) for v in result] == [0.0, 0.0, 0.0]
    assert fkd_ops.normalize_images(images, mode="standardize").shape == (0, 96, 96)
    assert [o.shape for o in fkd_ops.flip_horizontal(images, kp, no)] == [(0, 96, 96), (0, 30)]
    assert [o.shape for o in fkd_ops.random_flip(images, kp, SEED)] == [(0, 96, 96), (0, 30), (0,)]
    assert [o.shape for o in fkd_ops.flip_normalize(images, kp, no)] == [(0, 96, 96), (0, 30)]
    assert [o.shape for o in fkd_ops.random_flip_normalize(images, kp, SEED)] == [(0, 96, 96), (0, 30), (0,)]


# ------------------------------------------------------------------ nothing crashes the process

NASTY = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
import fkd_ops
from fkd_ops.ops import libraries
raw = libraries.op_library()
native = libraries.native()
kp = np.zeros((2, 30), np.float32)
calls = [
    lambda: fkd_ops.normalize_images(np.zeros((2, 0, 5), np.uint8), mode="standardize"),
    lambda: fkd_ops.normalize_images(np.zeros((2, 3, 0, 3), np.float32), mode="standardize"),
    lambda: fkd_ops.normalize_images(np.zeros((2, 3, 4, 0), np.float64), mode="standardize", dtype=tf.float64),
    lambda: fkd_ops.flip_normalize(np.zeros((2, 0, 5), np.uint8), kp, [True, False], mode="standardize"),
    lambda: fkd_ops.random_flip_normalize(np.zeros((2, 3, 4, 0), np.float32), kp, [1, 2]),
    lambda: fkd_ops.flip_horizontal(np.zeros((2, 3, 4)), np.zeros((2, 0)), [True, True], pairs=[]),
    lambda: fkd_ops.flip_horizontal(np.zeros((2, 3, 4)), np.zeros((2, 0)), [True, True]),
    lambda: fkd_ops.random_flip(np.zeros((3, 1, 1)), np.zeros((3, 30)), [-2**63, 2**63 - 1]),
    lambda: fkd_ops.masked_rmse(np.full((4, 4), np.inf), np.full((4, 4), -np.inf)),
    lambda: fkd_ops.masked_rmse(np.zeros((0,)), np.zeros((0,)), squared=True),
    lambda: fkd_ops.normalize_images(np.full((2, 3, 3), np.nan), mode="standardize"),
    lambda: fkd_ops.normalize_images(np.full((2, 3, 3), np.inf, np.float32), mode="standardize"),
    lambda: fkd_ops.normalize_images(np.full((1, 3, 3), 1e300), mode="standardize", dtype=tf.float32),
    lambda: raw.fkd_flip_horizontal(np.zeros((2, 3, 4)), kp, [True, False], pairs=[0, 2**40]),
    lambda: raw.fkd_flip_horizontal(np.zeros((2, 3, 4)), kp, [True, False], pairs=[-2**63, 1]),
    lambda: raw.fkd_flip_horizontal_grad(np.zeros((2, 0, 0)), kp, [True, False], pairs=[0, 1]),
    lambda: raw.fkd_flip_horizontal_grad(np.zeros((2, 3, 3)), np.zeros((2, 3)), [True, False], pairs=[]),
    lambda: raw.fkd_normalize_images_grad(np.zeros((0, 3, 3)), np.zeros((0, 3, 3)), mode="standardize"),
    lambda: raw.fkd_normalize_images_grad(np.zeros((2, 0, 3)), np.zeros((2, 0, 3)), mode="standardize"),
    lambda: raw.fkd_normalize_images(np.zeros((1, 2, 2), np.uint8), mode="affine", stddev=float("nan")),
    lambda: raw.fkd_normalize_images(np.zeros((1, 2, 2), np.uint8), scale=float("nan")),
    lambda: raw.fkd_masked_rmse_grad(np.zeros(3), np.zeros(3), 1.0, 0.0, 1.0, 1.0),
    lambda: raw.fkd_masked_rmse_grad(np.zeros(3), np.zeros(3), -1.0, -5.0, np.nan, np.inf),
    lambda: raw.fkd_masked_rmse_grad(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0,)), 0.0, 1.0, 1.0),
    lambda: native.masked_rmse(np.zeros(3), np.zeros(4), False),
    lambda: native.masked_rmse(np.zeros(3, np.float32), np.zeros(3, np.float64), False),
    lambda: native.normalize_images(np.zeros((2, 3)), np.float32, "scale", 1.0, 0.0, 1.0),
    lambda: native.normalize_images(np.zeros((2, 3, 3), np.int64), np.float32, "scale", 1.0, 0.0, 1.0),
    lambda: native.normalize_images(np.zeros((2, 3, 3)), np.int32, "scale", 1.0, 0.0, 1.0),
    lambda: native.normalize_images(np.zeros((2, 3, 3)), np.float32, "bad", 1.0, 0.0, 1.0),
    lambda: native.normalize_images(np.zeros((2, 3, 3)), np.float32, "affine", 1.0, 0.0, 0.0),
    lambda: native.normalize_images(np.zeros((2, 3, 3)), np.float32, "scale", 1.0, 0.0, 1.0, np.ones(3, bool)),
    lambda: native.normalize_images_grad(np.zeros((2, 3, 3)), np.zeros((2, 3, 4)), "standardize", 1.0, 0.0, 1.0),
    lambda: native.flip_horizontal(np.zeros((2, 3, 3)), np.zeros((2, 30)), [True], [0, 1], 3.0),
    lambda: native.flip_horizontal(np.zeros((2, 3, 3)), np.zeros((2, 29)), None, [], 3.0),
    lambda: native.flip_horizontal(np.zeros((2, 3, 3)), np.zeros((3, 30)), None, [], 3.0),
    lambda: native.flip_horizontal(np.zeros((2, 3, 3)), np.zeros((2, 30)), None, [0, 99], 3.0),
    lambda: native.flip_horizontal(np.zeros((2, 3, 3)), np.zeros((2, 30)), None, [0], 3.0),
    lambda: native.flip_horizontal(np.zeros((2, 3, 3), np.int16), np.zeros((2, 30)), None, [], 3.0),
    lambda: native.flip_decisions(1, 2, -1, 0.5),
    lambda: native.flip_decisions(1, 2, 4, 1.5),
]
for i, call in enumerate(calls):
    try:
        result = call()
        for r in (result if isinstance(result, (tuple, list)) else [result]):
            np.asarray(r)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
        if not str(e).strip():
            sys.exit(f"call {i} raised {type(e).__name__} with an empty message")
print("survived", len(calls))
"""


def test_nasty_inputs_do_not_crash_the_process(tmp_path):
    script = tmp_path / "nasty.py"
    script.write_text(textwrap.dedent(NASTY))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert "survived" in done.stdout
