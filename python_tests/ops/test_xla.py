"""Every op and gradient inside `tf.function(jit_compile=True)`.

The ops have no XLA kernels; while a function is traced for XLA the wrappers
return the pure-TF twins, which XLA compiles (a Fkd op reaching XLA would fail
with "No registered 'Fkd>...' OpKernel for XLA_CPU_JIT"). XLA_CPU stands in for
XLA_GPU here: the same trace, the same lowering. The Keras side (Keras compiles
with XLA by default wherever a GPU is visible) is python_tests/keras/test_keras_xla.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import fkd_ops
from fkd_ops.ops import wrappers

F32, F64 = np.float32, np.float64


def test_the_private_xla_context_api_still_tells_an_xla_trace():
    """Pins tensorflow.python.ops.control_flow_util.GraphOrParentsInXlaContext (TF 2.21)."""
    seen = {}

    @tf.function(jit_compile=True)
    def compiled(x):
        seen["jit"] = wrappers.traced_for_xla()
        return x

    @tf.function
    def plain(x):
        seen["plain"] = wrappers.traced_for_xla()
        return x

    compiled(tf.constant(1.0))
    plain(tf.constant(1.0))
    assert seen == {"jit": True, "plain": False}
    assert wrappers.traced_for_xla() is False  # eager


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    targets = rng.uniform(0, 96, (40, 30))
    targets[rng.random(targets.shape) < 0.5] = np.nan
    images = rng.integers(0, 256, (6, 12, 10), dtype=np.uint8)
    points = rng.uniform(0, 10, (6, 30))
    points[rng.random(points.shape) < 0.2] = np.nan
    return {
        "p": rng.uniform(0, 96, targets.shape),
        "t": targets,
        "u8": images,
        "x": images.astype(F64) + rng.random(images.shape),
        "k": points,
        "flip": rng.random(6) < 0.5,
    }


def _finite(v):
    return tf.where(tf.math.is_nan(v), tf.zeros_like(v), v)


# Each case: (differentiable inputs, dtype, fn(inputs, fixed) -> outputs). Gradients
# are taken of sum(w * output) over the float outputs, with fixed weights w in
# [0.5, 1.5): each element's gradient differs, and none depends on rounding.
CASES = {
    "masked_rmse_f32": (("p", "t"), F32, lambda v, d: fkd_ops.masked_rmse(v["p"], v["t"])),
    "masked_rmse_f64_squared": (("p", "t"), F64, lambda v, d: fkd_ops.masked_rmse(v["p"], v["t"], squared=True)),
    "normalize_u8_scale": ((), F32, lambda v, d: fkd_ops.normalize_images(d["u8"])),
    "normalize_f32_standardize": (("x",), F32, lambda v, d: fkd_ops.normalize_images(v["x"], mode="standardize")),
    "normalize_f64_affine": (
        ("x",),
        F64,
        lambda v, d: fkd_ops.normalize_images(v["x"], mode="affine", mean=100.0, stddev=40.0, dtype=tf.float64),
    ),
    "flip_u8": (("k",), F32, lambda v, d: fkd_ops.flip_horizontal(d["u8"], v["k"], d["flip"])),
    "flip_f32_pixel_centers": (
        ("x", "k"),
        F32,
        lambda v, d: fkd_ops.flip_horizontal(v["x"], v["k"], d["flip"], pixel_centers=True),
    ),
    "random_flip_u8": (("k",), F64, lambda v, d: fkd_ops.random_flip(d["u8"], v["k"], [7, 3], probability=0.7)),
    "flip_normalize_u8_standardize": (
        ("k",),
        F32,
        lambda v, d: fkd_ops.flip_normalize(d["u8"], v["k"], d["flip"], mode="standardize"),
    ),
    "flip_normalize_f32": (("x", "k"), F32, lambda v, d: fkd_ops.flip_normalize(v["x"], v["k"], d["flip"])),
    "random_flip_normalize_f64": (
        ("x", "k"),
        F64,
        lambda v, d: fkd_ops.random_flip_normalize(v["x"], v["k"], [1, 2], mode="standardize", dtype=tf.float64),
    ),
}


def _run(case, data, jit):
    names, dtype, fn = CASES[case]

    def step(*args):
        v = dict(zip(names, args))
        with tf.GradientTape() as tape:
            tape.watch(list(v.values()))
            out = tf.nest.flatten(fn(v, data))
            floats = [tf.cast(o, tf.float64) for o in out if o.dtype.is_floating]
            weights = [np.random.default_rng(i).uniform(0.5, 1.5, o.shape) for i, o in enumerate(floats)]
            total = tf.add_n([tf.reduce_sum(w * _finite(o)) for w, o in zip(weights, floats)])
        grads = tape.gradient(total, list(v.values())) if v else []
        return out, grads

    args = [tf.constant(data[n], dtype=dtype) for n in names]
    if jit:
        step = tf.function(step, jit_compile=True)
    out, grads = step(*args)
    return [o.numpy() for o in out], [g.numpy() for g in grads]


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_op_and_its_gradients_under_jit_compile_equal_the_op(case):
    data = _inputs()
    out_op, grads_op = _run(case, data, jit=False)
    out_xla, grads_xla = _run(case, data, jit=True)
    dtype = CASES[case][1]
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == F32 else dict(rtol=1e-9, atol=1e-9)
    for a, b in zip(out_op, out_xla):
        if a.dtype in (np.uint8, np.bool_):
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, equal_nan=True, **tol)
    assert len(grads_op) == len(grads_xla) == len(CASES[case][0])
    for a, b in zip(grads_op, grads_xla):
        np.testing.assert_allclose(a, b, equal_nan=True, **tol)
