"""Every op in eager mode, inside tf.function, and in a tf.compat.v1 Graph run by a
Session fed through placeholders; gradients in each; a Variable trained by a v1
optimizer on the masked RMSE."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import oracles
import pytest
import tensorflow as tf

import fkd_ops

RNG = np.random.default_rng(1234)
B = 5
TARGETS = RNG.uniform(0, 96, (B, 30))
TARGETS[RNG.random(TARGETS.shape) < 0.4] = np.nan
PREDICTIONS = RNG.uniform(0, 96, (B, 30))
IMAGES_U8 = RNG.integers(0, 256, (B, 6, 7), dtype=np.uint8)
IMAGES_F = RNG.normal(100, 30, (B, 6, 7, 3))
KEYPOINTS = np.where(np.isnan(TARGETS), np.nan, RNG.uniform(0, 7, (B, 30)))
FLIP = np.array([True, False, True, True, False])
SEED = np.array([17, -3], np.int64)


class Case:
    """One op call: fn over tensors, its numpy inputs, and which inputs are differentiable."""

    def __init__(self, fn: Callable, inputs: list[np.ndarray], differentiable: list[int]):
        self.fn = fn
        self.inputs = inputs
        self.differentiable = differentiable


def outputs(result) -> tuple:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


CASES = {
    "masked_rmse": Case(lambda p, t: fkd_ops.masked_rmse(p, t), [PREDICTIONS, TARGETS], [0, 1]),
    "masked_rmse squared": Case(lambda p, t: fkd_ops.masked_rmse(p, t, squared=True), [PREDICTIONS, TARGETS], [0, 1]),
    "masked_rmse float32": Case(
        lambda p, t: fkd_ops.masked_rmse(p, t), [PREDICTIONS.astype(np.float32), TARGETS.astype(np.float32)], [0, 1]
    ),
    **{
        f"normalize_images {mode}": Case(
            lambda x, mode=mode: fkd_ops.normalize_images(x, mode=mode, mean=90.0, stddev=20.0, dtype=tf.float64),
            [IMAGES_F],
            [0],
        )
        for mode in ("scale", "standardize", "affine")
    },
    "normalize_images uint8": Case(lambda x: fkd_ops.normalize_images(x, mode="standardize"), [IMAGES_U8], []),
    "flip_horizontal": Case(lambda x, k, f: fkd_ops.flip_horizontal(x, k, f), [IMAGES_F, KEYPOINTS, FLIP], [0, 1]),
    "flip_horizontal uint8": Case(
        lambda x, k, f: fkd_ops.flip_horizontal(x, k, f, pixel_centers=True), [IMAGES_U8, KEYPOINTS, FLIP], [1]
    ),
    "random_flip": Case(lambda x, k, s: fkd_ops.random_flip(x, k, s), [IMAGES_F, KEYPOINTS, SEED], [0, 1]),
    "flip_normalize": Case(
        lambda x, k, f: fkd_ops.flip_normalize(x, k, f, mode="standardize", dtype=tf.float64),
        [IMAGES_F, KEYPOINTS, FLIP],
        [0, 1],
    ),
    "random_flip_normalize": Case(
        lambda x, k, s: fkd_ops.random_flip_normalize(x, k, s, mode="affine", mean=9.0, stddev=3.0),
        [IMAGES_U8, KEYPOINTS, SEED],
        [1],
    ),
}


def eager(case: Case):
    return [o.numpy() for o in outputs(case.fn(*case.inputs))]


def eager_gradients(case: Case):
    xs = [tf.constant(v) for v in case.inputs]
    with tf.GradientTape() as tape:
        tape.watch([xs[i] for i in case.differentiable])
        y = loss_of(outputs(case.fn(*xs)))
    return [g.numpy() for g in tape.gradient(y, [xs[i] for i in case.differentiable])]


def loss_of(outs) -> tf.Tensor:
    """A scalar that depends on every float output (NaN keypoints masked out)."""
    total = tf.constant(0.0, tf.float64)
    for i, o in enumerate(outs):
        if o.dtype.is_floating:
            o = tf.cast(o, tf.float64)
            o = tf.where(tf.math.is_nan(o), tf.zeros_like(o), o)
            total += (i + 1.0) * tf.reduce_sum(tf.sin(o))
    return total


def assert_same(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("name", list(CASES))
def test_tf_function_equals_eager(name):
    case = CASES[name]
    expected = eager(case)
    traced = tf.function(case.fn)
    assert_same([o.numpy() for o in outputs(traced(*case.inputs))], expected)
    # An unknown batch size (and, for the images, unknown height/width): the shape
    # functions must accept them and the kernels must still get it right.
    signature = [tf.TensorSpec([None] * v.ndim, tf.as_dtype(v.dtype)) for v in case.inputs]
    relaxed = tf.function(case.fn, input_signature=signature)
    assert_same([o.numpy() for o in outputs(relaxed(*case.inputs))], expected)
    grads = tf.function(lambda *xs: _tape_grads(case, xs))
    for g, e in zip(grads(*case.inputs), eager_gradients(case)):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-12, atol=1e-12)


def _tape_grads(case, xs):
    with tf.GradientTape() as tape:
        tape.watch([xs[i] for i in case.differentiable])
        y = loss_of(outputs(case.fn(*xs)))
    return tape.gradient(y, [xs[i] for i in case.differentiable])


@pytest.mark.parametrize("unknown_rank", [False, True], ids=["batch None", "rank unknown"])
@pytest.mark.parametrize("name", list(CASES))
def test_v1_graph_session_with_placeholders(name, unknown_rank):
    case = CASES[name]
    expected = eager(case)
    expected_grads = eager_gradients(case)
    graph = tf.Graph()
    with graph.as_default():
        placeholders = [
            tf.compat.v1.placeholder(
                tf.as_dtype(v.dtype), None if unknown_rank else [None, *v.shape[1:]], name=f"in{i}"
            )
            for i, v in enumerate(case.inputs)
        ]
        fetches = list(outputs(case.fn(*placeholders)))
        grads = tf.compat.v1.gradients(loss_of(fetches), [placeholders[i] for i in case.differentiable])
        if not unknown_rank:
            for fetch, value in zip(fetches, expected):
                # Static shapes: scalars stay scalars, images and keypoints keep theirs.
                assert fetch.shape.rank == value.ndim
                assert fetch.shape.as_list()[1:] == list(value.shape[1:])
    with tf.compat.v1.Session(graph=graph) as sess:
        feed = dict(zip(placeholders, case.inputs))
        got = sess.run(fetches, feed_dict=feed)
        got_grads = sess.run(grads, feed_dict=feed)
    assert_same([np.asarray(g) for g in got], expected)
    for g, e in zip(got_grads, expected_grads):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_v1_optimizer_step_on_masked_rmse():
    """GradientDescentOptimizer on a Variable: each step equals w - lr * the
    hand-derived gradient, and the loss falls."""
    rng = np.random.default_rng(5)
    features = rng.normal(size=(16, 4))
    targets = features @ rng.normal(size=(4, 30)) * 0.3  # the pipeline's (v - 48) / 48 scale
    targets[rng.random(targets.shape) < 0.5] = np.nan
    lr = 0.5  # exact in float32, which the v1 optimizer holds its rate in
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float64, [None, 4])
        t = tf.compat.v1.placeholder(tf.float64, [None, 30])
        w = tf.compat.v1.Variable(np.zeros((4, 30)), dtype=tf.float64)
        b = tf.compat.v1.Variable(np.zeros(30), dtype=tf.float64)
        loss = fkd_ops.masked_rmse(tf.matmul(x, w) + b, t).loss
        step = tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss)
        init = tf.compat.v1.global_variables_initializer()
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(init)
        feed = {x: features, t: targets}
        losses = []
        for i in range(60):
            w0, b0 = sess.run([w, b])
            loss_value, _ = sess.run([loss, step], feed_dict=feed)
            losses.append(loss_value)
            if i < 3:
                g = oracles.masked_rmse_grad(features @ w0 + b0, targets)
                np.testing.assert_allclose(loss_value, oracles.masked_rmse(features @ w0 + b0, targets)[0], rtol=1e-12)
                np.testing.assert_allclose(sess.run(w), w0 - lr * features.T @ g, rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(sess.run(b), b0 - lr * g.sum(axis=0), rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


def test_v1_pipeline_of_all_ops_trains():
    """uint8 images -> random_flip_normalize -> linear model -> masked RMSE on the
    flipped keypoints, trained by a v1 optimizer in a Session."""
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (32, 8, 8), dtype=np.uint8)
    keypoints = rng.uniform(0, 8, (32, 30)).astype(np.float32)
    keypoints[rng.random(keypoints.shape) < 0.3] = np.nan
    graph = tf.Graph()
    with graph.as_default():
        x_in = tf.compat.v1.placeholder(tf.uint8, [None, 8, 8])
        k_in = tf.compat.v1.placeholder(tf.float32, [None, 30])
        seed = tf.compat.v1.placeholder(tf.int64, [2])
        x, k, flipped = fkd_ops.random_flip_normalize(x_in, k_in, seed, mode="standardize")
        assert flipped.shape.as_list() == [None]
        w = tf.compat.v1.Variable(tf.zeros([64, 30]))
        b = tf.compat.v1.Variable(tf.fill([30], 4.0))
        pred = tf.matmul(tf.reshape(x, [-1, 64]), w) + b
        loss = fkd_ops.masked_rmse(pred, (k - 4.0) * 2.0 + 4.0).loss
        step = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        init = tf.compat.v1.global_variables_initializer()
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(init)
        losses = [sess.run([loss, step], {x_in: images, k_in: keypoints, seed: [i, 1]})[0] for i in range(40)]
        decisions = [sess.run(flipped, {x_in: images, k_in: keypoints, seed: [i, 1]}) for i in (0, 0, 1)]
    np.testing.assert_array_equal(decisions[0], decisions[1])
    np.testing.assert_array_equal(decisions[0], oracles.flip_decisions([0, 1], 32))
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
