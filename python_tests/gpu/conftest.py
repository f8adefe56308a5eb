"""Fixtures of the GPU kernel tests: the backend (face) the kernels run on.

`face` is the CUDA backend (CuPy arrays, `_native.cuda`, through the launcher the
TensorFlow op kernels use) where a GPU, its driver, CuPy and a build with GPU
kernels are present, else the emulation backend, which runs the same kernel
bodies on the CPU. One backend per run, never both: on a GPU machine the
emulation adds nothing, and elsewhere the CUDA cases would only be skipped.
``FKD_GPU_FACE=cuda`` insists on the GPU (the device script sets it, so a broken
GPU setup fails instead of quietly testing the emulation); ``emulation`` forces
the CPU. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import secrets
import zlib

import numpy as np
import pytest

from fkd_ops.ops.gpu_arrays import CudaFace, EmulationFace, cuda_unavailable_reason, load_native

# Fresh random inputs every run (FKD_TEST_SEED repeats one); the header says which.
BASE_SEED = int(os.environ.get("FKD_TEST_SEED", secrets.randbits(32)))


def _choice() -> str:
    choice = os.environ.get("FKD_GPU_FACE", "auto").lower()
    if choice not in ("auto", "cuda", "emulation"):
        raise pytest.UsageError(f"FKD_GPU_FACE must be auto, cuda or emulation, got {choice!r}")
    return choice


def pytest_report_header(config):
    return f"fkd_ops GPU kernel tests: FKD_TEST_SEED={BASE_SEED}, FKD_GPU_FACE={_choice()}"


@pytest.fixture(scope="session")
def native():
    return load_native()


@pytest.fixture(scope="session")
def face(native):
    choice = _choice()
    if choice == "emulation":
        return EmulationFace(native, poison=True)
    reason = cuda_unavailable_reason(native)
    if reason is None:
        return CudaFace(native, poison=True)
    if choice == "cuda":
        pytest.fail(f"FKD_GPU_FACE=cuda but the CUDA face cannot run: {reason}")
    return EmulationFace(native, poison=True)


@pytest.fixture
def rng(request):
    """A generator seeded from the run's seed and the test's name."""
    return np.random.default_rng([BASE_SEED, zlib.crc32(request.node.nodeid.encode())])
