"""Fixtures of the GPU kernel tests: the backends (faces) the kernels run on.

`face` is the CUDA backend (CuPy arrays, `_native.cuda`) where a GPU, its driver,
CuPy and a CUDA build are present, and always the emulation backend, which runs
the same kernel bodies on the CPU. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import secrets
import zlib

import numpy as np
import pytest
from gpu_face import CudaFace, EmulationFace, cuda_unavailable_reason, load_native

# Fresh random inputs every run (FKD_TEST_SEED repeats one); the header says which.
BASE_SEED = int(os.environ.get("FKD_TEST_SEED", secrets.randbits(32)))


def pytest_report_header(config):
    return f"fkd_ops GPU kernel tests: FKD_TEST_SEED={BASE_SEED}"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU (skipped where there is none)")


@pytest.fixture(scope="session")
def native():
    return load_native()


@pytest.fixture(scope="session", params=["emulation", pytest.param("cuda", marks=pytest.mark.gpu)])
def face(request, native):
    if request.param == "emulation":
        return EmulationFace(native)
    reason = cuda_unavailable_reason(native)
    if reason is not None:
        pytest.skip(reason)
    return CudaFace(native)


@pytest.fixture
def rng(request):
    """A generator seeded from the run's seed and the test's name."""
    return np.random.default_rng([BASE_SEED, zlib.crc32(request.node.nodeid.encode())])
