"""The TensorFlow face of the GPU kernels: registered for every op, and right on a GPU.

Registration is checked wherever the package was built with GPU kernels (also on
machines without a GPU). The rest needs TensorFlow with a visible GPU (a user's
machine; CI and the lent GPU machine have none, python_tests/gpu proves the
kernels themselves there): with soft placement off, so an op that could not run
on the GPU fails instead of moving to the CPU, every output's device is checked,
every op and gradient equals the CPU kernel, a second run gives the same bits,
and tf.function, a Keras `fit` step and `predictor.predict` run with Keras's
defaults (which turn XLA on when a GPU is visible).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorflow.python.framework import kernels  # noqa: E402

from fkd_ops.ops.gpu_arrays import installed_file  # noqa: E402

# The installed build, loaded by path: independent of whether `import fkd_ops`
# finds the installed package or the (unbuilt) source folder.
_LIBRARY = installed_file("_fkd_ops_tf")
_RECORD = installed_file("fkd_ops_build.json")
if _LIBRARY is None or _RECORD is None:
    pytest.skip("fkd_ops is not installed with its TensorFlow op library", allow_module_level=True)
tf.load_op_library(str(_LIBRARY))
BUILD = json.loads(_RECORD.read_text())
BUILT_WITH_GPU = bool(BUILD.get("cuda"))

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

needs_gpu_build = pytest.mark.skipif(not BUILT_WITH_GPU, reason="fkd_ops was built without GPU kernels")


def registered(op: str, device: str) -> set[tuple]:
    """Each kernel of `op` on `device` as (type constraints, host-memory arguments)."""
    out = set()
    for k in kernels.get_registered_kernels_for_op(op).kernel:
        if k.device_type == device:
            types = tuple(sorted((c.name, tuple(c.allowed_values.list.type)) for c in k.constraint))
            out.add((types, tuple(sorted(k.host_memory_arg))))
    return out


@needs_gpu_build
@pytest.mark.parametrize("op", OPS)
def test_every_cpu_kernel_has_a_gpu_twin(op):
    cpu, gpu = registered(op, "CPU"), registered(op, "GPU")
    assert cpu, f"{op} has no CPU kernel"
    assert {types for types, _ in gpu} == {types for types, _ in cpu}
    expected_host = ("seed",) if op in SEEDED else ()
    assert {host for _, host in gpu} == {expected_host}


@needs_gpu_build
def test_the_build_record_names_the_toolchain_and_every_tensorflow_architecture():
    gpu = BUILD["gpu"]
    assert gpu["toolchain"] == "NVRTC" and gpu["cuda_version"].startswith("12.")
    for arch in tf.sysconfig.get_build_info().get("cuda_compute_capabilities") or []:
        assert arch in gpu["architectures"], (arch, gpu["architectures"])


# ---------------------------------------------------------------- on a GPU

GPUS = tf.config.list_physical_devices("GPU")
needs_gpu = pytest.mark.skipif(
    not BUILT_WITH_GPU or not GPUS, reason="needs fkd_ops built with GPU kernels and TensorFlow with a visible GPU"
)


@pytest.fixture
def strict_placement():
    """Soft placement off: an op without a GPU kernel fails on /GPU:0 instead of moving."""
    before = tf.config.get_soft_device_placement()
    tf.config.set_soft_device_placement(False)
    yield
    tf.config.set_soft_device_placement(before)


def inputs():
    rng = np.random.default_rng(7)
    targets = rng.uniform(0, 96, (300, 30))
    targets[rng.random(targets.shape) < 0.6] = np.nan
    images = rng.integers(0, 256, (33, 96, 96), dtype=np.uint8)
    return {
        "predictions": rng.uniform(0, 96, targets.shape),
        "targets": targets,
        "images": images,
        "float_images": images.astype(np.float32) + rng.random(images.shape, dtype=np.float32),
        "flip": rng.random(33) < 0.5,
        "points": rng.uniform(0, 96, (33, 30)).astype(np.float32),
    }


def case_forward(fkd_ops, d):
    return {
        "rmse32": fkd_ops.masked_rmse(d["predictions"].astype(np.float32), d["targets"].astype(np.float32)),
        "rmse64_squared": fkd_ops.masked_rmse(d["predictions"], d["targets"], squared=True),
        "scale": fkd_ops.normalize_images(d["images"]),
        "standardize": fkd_ops.normalize_images(d["float_images"], mode="standardize"),
        "affine64": fkd_ops.normalize_images(
            d["float_images"].astype(np.float64), mode="affine", mean=100.0, stddev=50.0, dtype=tf.float64
        ),
        "flip_u8": fkd_ops.flip_horizontal(d["images"], d["points"], d["flip"]),
        "flip_f32": fkd_ops.flip_horizontal(d["float_images"], d["points"], d["flip"], pixel_centers=True),
        "random_flip": fkd_ops.random_flip(d["images"], d["points"], [3, 4]),
        "flip_normalize": fkd_ops.flip_normalize(d["images"], d["points"], d["flip"], mode="standardize"),
        "random_flip_normalize": fkd_ops.random_flip_normalize(d["images"], d["points"], [5, 6]),
    }


def case_gradients(fkd_ops, d):
    p = tf.constant(d["predictions"].astype(np.float32))
    t = tf.constant(d["targets"].astype(np.float32))
    x = tf.constant(d["float_images"])
    k = tf.constant(d["points"])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([p, t, x, k])
        loss = fkd_ops.masked_rmse(p, t).loss
        y, kk = fkd_ops.flip_normalize(x, k, d["flip"], mode="standardize")
        fy, fk = fkd_ops.flip_horizontal(x, k, d["flip"])
        ry, rk, _ = fkd_ops.random_flip_normalize(x, k, [1, 2], mode="affine", mean=9.0, stddev=3.0)
        z = (
            tf.reduce_sum(y * tf.sin(y))
            + tf.reduce_sum(tf.where(tf.math.is_nan(kk), 0.0, kk) ** 2)
            + tf.reduce_sum(fy * fy)
            + tf.reduce_sum(tf.where(tf.math.is_nan(fk), 0.0, fk))
            + tf.reduce_sum(tf.cos(ry))
            + tf.reduce_sum(tf.where(tf.math.is_nan(rk), 0.0, rk))
        )
    return {
        "d_predictions": tape.gradient(loss, p),
        "d_targets": tape.gradient(loss, t),
        "d_images": tape.gradient(z, x),
        "d_keypoints": tape.gradient(z, k),
    }


def run_on(device: str, fn):
    """fn() under `device`; every output must be there. Returns numpy arrays."""
    with tf.device(device):
        out = fn()
    flat = tf.nest.flatten(out)
    for tensor in flat:
        assert tensor.device.endswith(device.lstrip("/")), f"an output is on {tensor.device}, not {device}"
    return tf.nest.map_structure(lambda v: v.numpy(), out)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("case", [case_forward, case_gradients], ids=["forward", "gradients"])
def test_each_op_on_the_gpu_equals_the_cpu_and_repeats_its_bits(strict_placement, case):
    import fkd_ops

    d = inputs()
    on_gpu = run_on("/GPU:0", lambda: case(fkd_ops, d))
    again = run_on("/GPU:0", lambda: case(fkd_ops, d))
    on_cpu = run_on("/CPU:0", lambda: case(fkd_ops, d))
    for g, a, c in zip(tf.nest.flatten(on_gpu), tf.nest.flatten(again), tf.nest.flatten(on_cpu)):
        np.testing.assert_array_equal(g, a)  # deterministic: fixed-order reductions, no atomics
        if g.dtype in (np.uint8, np.bool_):
            np.testing.assert_array_equal(g, c)
        else:
            np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-5, equal_nan=True)


@needs_gpu
@pytest.mark.gpu
def test_a_tf_function_step_runs_on_the_gpu(strict_placement):
    import fkd_ops

    d = inputs()
    w = tf.Variable(tf.zeros([30]))

    @tf.function
    def step(images, keypoints, seed):
        x, k, _ = fkd_ops.random_flip_normalize(images, keypoints, seed)
        with tf.GradientTape() as tape:
            loss = fkd_ops.masked_rmse(tf.reduce_mean(x, axis=[1, 2])[:, None] + w, k).loss
        w.assign_sub(0.1 * tape.gradient(loss, w))
        return loss

    with tf.device("/GPU:0"):
        losses = [step(d["images"], d["points"], tf.constant([i, 0], tf.int64)) for i in range(3)]
    assert all(loss.device.endswith("GPU:0") for loss in losses)
    assert np.isfinite([float(loss) for loss in losses]).all()


@needs_gpu
@pytest.mark.gpu
def test_keras_fit_and_the_predictor_with_keras_defaults():
    import keras

    import fkd_ops

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (64, 96, 96), dtype=np.uint8)
    targets = rng.uniform(-0.5, 0.5, (64, 30)).astype(np.float32)
    targets[rng.random(targets.shape) < 0.5] = np.nan
    model = fkd_ops.build_network("cnn", seed=0)
    x = fkd_ops.normalize_images(images)[..., None]
    model.compile(optimizer="adam", loss=fkd_ops.MaskedRmseLoss(), metrics=[fkd_ops.MaskedRmseMetric()])
    history = model.fit(x, targets, batch_size=32, epochs=1, verbose=0)  # Keras's jit_compile: "auto"
    assert np.isfinite(history.history["loss"]).all()
    flip = fkd_ops.KeypointRandomFlip(seed=1)
    assert flip.seed_generator.state.device.endswith("CPU:0")  # no host-device copy per step
    predictor = fkd_ops.build_predictor(model)
    pixels = predictor.predict(images[:8], verbose=0)
    assert pixels.shape == (8, 30) and np.isfinite(pixels).all()
    reloaded = keras.models.load_model(_save(predictor))
    np.testing.assert_allclose(reloaded.predict(images[:8], verbose=0), pixels, rtol=1e-4, atol=1e-3)


def _save(model) -> str:
    import tempfile

    path = str(Path(tempfile.mkdtemp()) / "predictor.keras")
    model.save(path)
    return path
