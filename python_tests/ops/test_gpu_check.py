"""The check that runs when the op library loads where TensorFlow sees a GPU: if
fkd_ops' GPU kernels cannot run there, one warning line says why and the fix.

No GPU here: TensorFlow's device list and the driver's answer are stood in for.
"""

from __future__ import annotations

import warnings

import pytest
import tensorflow as tf

from fkd_ops.ops import libraries

FAKE_GPU = [tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")]


class FakeNative:
    def __init__(self, probe):
        self.probe = probe

    def gpu_probe(self):
        return self.probe


def _load_with(monkeypatch, record, probe, gpus=FAKE_GPU):
    monkeypatch.setattr(libraries, "build_record", lambda: record)
    monkeypatch.setattr(libraries, "native", lambda: FakeNative(probe))
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        libraries.op_library.__wrapped__()  # the uncached loader: the library itself loads once
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


RECORD = {"tensorflow_version": tf.__version__, "cuda": True, "gpu": {"architectures": ["sm_60", "compute_90"]}}
GOOD_DEVICE = {"index": 0, "name": "Tesla T4", "compute_capability": (7, 5), "image": "sm_70 cubin", "problem": ""}


def test_a_gpu_the_kernels_run_on_gives_no_warning(monkeypatch):
    probe = {"driver_loaded": True, "driver_version": 12020, "problem": "", "devices": [GOOD_DEVICE]}
    assert _load_with(monkeypatch, RECORD, probe) == []


def test_no_gpu_no_check(monkeypatch):
    probe = {"driver_loaded": False, "driver_version": 0, "problem": "no driver", "devices": []}
    assert _load_with(monkeypatch, RECORD, probe, gpus=[]) == []


@pytest.mark.parametrize(
    "record, probe, expected",
    [
        (
            dict(RECORD, cuda=False, gpu=None),
            None,
            "built without GPU kernels",
        ),
        (
            RECORD,
            {
                "driver_loaded": True,
                "driver_version": 12040,
                "problem": "",
                "devices": [
                    dict(
                        GOOD_DEVICE,
                        name="B200",
                        image="",
                        problem="fkd_ops: ... needs a driver for CUDA 12.5 or newer; update the driver",
                    )
                ],
            },
            "GPU 0 (B200): fkd_ops: ... needs a driver for CUDA 12.5",
        ),
        (
            RECORD,
            {
                "driver_loaded": False,
                "driver_version": 0,
                "devices": [],
                "problem": "fkd_ops: no CUDA driver: cannot load libcuda.so.1; install the NVIDIA driver",
            },
            "no CUDA driver",
        ),
    ],
    ids=["built-without-gpu-kernels", "driver-too-old", "no-driver"],
)
def test_a_gpu_the_kernels_cannot_run_on_gives_one_line_with_the_fix(monkeypatch, record, probe, expected):
    messages = _load_with(monkeypatch, record, probe)
    assert len(messages) == 1 and expected in messages[0] and "\n" not in messages[0]
    assert any(word in messages[0] for word in ("pip install", "update", "install the NVIDIA driver"))
