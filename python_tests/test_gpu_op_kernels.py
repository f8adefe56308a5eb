"""The TensorFlow face of the GPU kernels: registered for every op, and equal to the CPU.

Registration is checked wherever the package was built with CUDA (also on
machines without a GPU). The run-time comparison needs TensorFlow with a visible
GPU; python_tests/gpu proves the kernels themselves on any GPU machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorflow.python.framework import kernels  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "gpu"))
from gpu_face import installed_file  # noqa: E402

# The installed build, loaded by path: independent of whether `import fkd_ops`
# finds the installed package or the (unbuilt) source folder.
_LIBRARY = installed_file("_fkd_ops_tf")
_RECORD = installed_file("fkd_ops_build.json")
if _LIBRARY is None or _RECORD is None:
    pytest.skip("fkd_ops is not installed with its TensorFlow op library", allow_module_level=True)
tf.load_op_library(str(_LIBRARY))
BUILT_WITH_CUDA = bool(json.loads(_RECORD.read_text()).get("cuda"))

OPS = (
    "Fkd>MaskedRmse",
    "Fkd>MaskedRmseGrad",
    "Fkd>NormalizeImages",
    "Fkd>NormalizeImagesGrad",
    "Fkd>FlipHorizontal",
    "Fkd>RandomFlipHorizontal",
    "Fkd>FlipNormalize",
    "Fkd>RandomFlipNormalize",
    "Fkd>FlipHorizontalGrad",
)
SEEDED = ("Fkd>RandomFlipHorizontal", "Fkd>RandomFlipNormalize")

needs_cuda_build = pytest.mark.skipif(not BUILT_WITH_CUDA, reason="fkd_ops was built without CUDA")


def registered(op: str, device: str) -> set[tuple]:
    """Each kernel of `op` on `device` as (type constraints, host-memory arguments)."""
    out = set()
    for k in kernels.get_registered_kernels_for_op(op).kernel:
        if k.device_type == device:
            types = tuple(sorted((c.name, tuple(c.allowed_values.list.type)) for c in k.constraint))
            out.add((types, tuple(sorted(k.host_memory_arg))))
    return out


@needs_cuda_build
@pytest.mark.parametrize("op", OPS)
def test_every_cpu_kernel_has_a_gpu_twin(op):
    cpu, gpu = registered(op, "CPU"), registered(op, "GPU")
    assert cpu, f"{op} has no CPU kernel"
    assert {types for types, _ in gpu} == {types for types, _ in cpu}
    expected_host = ("seed",) if op in SEEDED else ()
    assert {host for _, host in gpu} == {expected_host}


def _gpus():
    return tf.config.list_physical_devices("GPU")


needs_gpu = pytest.mark.skipif(
    not BUILT_WITH_CUDA or not _gpus(), reason="needs a CUDA build of fkd_ops and TensorFlow with a visible GPU"
)


def _on(device: str, fn):
    with tf.device(device):
        out = fn()
    return tf.nest.map_structure(lambda t: t.numpy(), out)


@needs_gpu
@pytest.mark.gpu
def test_ops_and_gradients_on_the_gpu_equal_the_cpu():
    import fkd_ops

    rng = np.random.default_rng(7)
    targets = rng.uniform(0, 96, (300, 30)).astype(np.float32)
    targets[rng.random(targets.shape) < 0.6] = np.nan
    predictions = rng.uniform(0, 96, targets.shape).astype(np.float32)
    images = rng.integers(0, 256, (33, 96, 96), dtype=np.uint8)
    float_images = images.astype(np.float32)
    flip = rng.random(33) < 0.5
    points = rng.uniform(0, 96, (33, 30)).astype(np.float32)

    def forward():
        loss = fkd_ops.masked_rmse(predictions, targets)
        flipped = fkd_ops.random_flip_normalize(images, points, [3, 4], mode="standardize")
        fused = fkd_ops.flip_normalize(images, points, flip)
        plain = fkd_ops.flip_horizontal(images, points, flip)
        return loss, flipped, fused, plain

    def gradients():
        p = tf.constant(predictions)
        x = tf.constant(float_images)
        k = tf.constant(points)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([p, x, k])
            loss = fkd_ops.masked_rmse(p, targets).loss
            y, kk = fkd_ops.flip_normalize(x, k, flip, mode="standardize")
            z = tf.reduce_sum(y * tf.sin(y)) + tf.reduce_sum(tf.where(tf.math.is_nan(kk), 0.0, kk) ** 2)
        return tape.gradient(loss, p), tape.gradient(z, x), tape.gradient(z, k)

    for fn, tol in ((forward, 1e-5), (gradients, 1e-4)):
        on_gpu, on_cpu = _on("/GPU:0", fn), _on("/CPU:0", fn)
        for g, c in zip(tf.nest.flatten(on_gpu), tf.nest.flatten(on_cpu)):
            np.testing.assert_allclose(g, c, rtol=tol, atol=tol, equal_nan=True)
