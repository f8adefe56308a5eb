"""The GPU launcher (kernels/gpu_launch.cc) driven through a fake CUDA driver.

The TensorFlow op kernels and `_native.cuda` launch through the same code: open
libcuda, find the stream's context, load the image that fits the GPU into it
once, look every kernel up by name, launch with the job as the one parameter.
Here libcuda is `fake_libcuda.c` (FKD_OPS_LIBCUDA points the launcher at it):
it runs nothing, but checks what a driver checks and logs every module load and
launch, so the launch path is proven on a machine with no GPU. Each case runs
in a fresh process (the launcher opens the driver once per process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent

# Run in the child: launches on fake device pointers (the fake driver never
# touches them) and prints what came back.
CHILD = textwrap.dedent("""
    import json, sys, threading
    from fkd_ops.ops.gpu_arrays import load_native
    n = load_native()
    cuda = n.cuda
    out = {{"probe": n.gpu_probe(), "errors": []}}

    def attempt(fn):
        try:
            fn()
        except RuntimeError as e:
            out["errors"].append(str(e))

    P, Q, R, S = 0x10000, 0x20000, 0x30000, 0x40000
    attempt(lambda: cuda.masked_rmse("float32", P, Q, 5000, R, R + 4, R + 8,
                                     workspace=S, workspace_bytes=cuda.masked_rmse_workspace_bytes(5000)))
    attempt(lambda: cuda.masked_rmse_grad("float64", P, Q, 5000, R, R + 8, grad_predictions=S))
    attempt(lambda: cuda.images("uint8", "float32", P, Q, (7, 96, 96, 1), normalize=True, flip=R,
                                stream=0x7000))
    attempt(lambda: cuda.normalize_images_grad("float64", "float32", P, Q, R, (3, 8, 8, 1),
                                               mode="standardize"))
    threads = [threading.Thread(target=attempt, args=(lambda: cuda.flip_decisions(1, 2, 1000, 0.5, P),))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def fake_driver(native, tmp_path_factory):
    if not native.built_with_cuda:
        pytest.skip("fkd_ops._native was built without GPU kernels")
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the fake driver")
    path = tmp_path_factory.mktemp("fake_cuda") / "libcuda.so.1"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(path), str(HERE / "fake_libcuda.c")], check=True)
    return path


def run_child(fake_driver, tmp_path, cc, driver, **env_vars):
    log = tmp_path / "driver.log"
    env = dict(
        os.environ,
        FKD_OPS_LIBCUDA=str(fake_driver),
        FAKE_CUDA_CC=cc,
        FAKE_CUDA_DRIVER=str(driver),
        FAKE_CUDA_LOG=str(log),
        **env_vars,
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # away from the repository root, whose fkd_ops/ would shadow the installed one
    )
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines() if log.exists() else []
    return json.loads(done.stdout.splitlines()[-1]), lines


def launches(lines):
    return [line.split()[1:] for line in lines if line.startswith("launch ")]


def test_launches_go_through_the_driver_with_the_image_for_the_gpu(fake_driver, tmp_path):
    out, lines = run_child(fake_driver, tmp_path, "8.6", 12020)  # an RTX 30xx / A10 under R535
    assert out["errors"] == []
    device = out["probe"]["devices"][0]
    assert device["compute_capability"] == [8, 6] and device["image"] == "sm_80 cubin" and not device["problem"]
    # One context, one module: loaded once, with 4 threads launching at once.
    assert [line for line in lines if line.startswith("load")] == ["load sm_80"]
    got = launches(lines)
    # The job is the kernel's one parameter: its first field is the first pointer given.
    assert got[:5] == [
        ["fkd_masked_rmse_partials_f32", "2", "256", "10000"],  # 5000 values: two blocks of 4096
        ["fkd_masked_rmse_finish_f32", "1", "256", "10000"],  # ... then the one-block finish
        ["fkd_masked_rmse_grad_f64", "5", "256", "10000"],  # 1024 values a block
        ["fkd_image_u8_f32", "7", "288", "10000"],  # a block per image, 2304 quads / 8
        ["fkd_normalize_grad_standardize_f64_f32", "3", "64", "10000"],  # 64 values: 16 quads
    ]
    assert [g[:3] for g in got[5:]] == [["fkd_flip_decisions", "4", "256"]] * 4  # 1000 of 256 a block


@pytest.mark.parametrize("cc, driver, force", [("10.0", 12080, "0"), ("9.0", 12050, "1")])
def test_newer_gpus_load_the_ptx(fake_driver, tmp_path, cc, driver, force):
    # Blackwell under R570; and an H100 told to take the PTX (as the device script does).
    out, lines = run_child(fake_driver, tmp_path, cc, driver, FKD_OPS_GPU_FORCE_PTX=force)
    assert out["errors"] == []
    assert out["probe"]["devices"][0]["image"] == "compute_90 PTX"
    assert [line for line in lines if line.startswith("load")] == ["load compute_90"]
    assert len(launches(lines)) == 9


def test_a_driver_too_old_for_the_ptx_fails_each_launch_with_the_fix(fake_driver, tmp_path):
    out, lines = run_child(fake_driver, tmp_path, "10.0", 12040)
    assert launches(lines) == [] and not any(line.startswith("load") for line in lines)
    assert len(out["errors"]) == 8  # every launch, none crashed
    assert all("needs a driver for CUDA 12.5" in e and "update the driver" in e for e in out["errors"])
    assert "needs a driver for CUDA 12.5" in out["probe"]["devices"][0]["problem"]


def test_a_gpu_below_the_built_architectures_fails_with_the_fix(fake_driver, tmp_path):
    out, lines = run_child(fake_driver, tmp_path, "5.2", 12020)
    assert launches(lines) == []
    assert out["errors"] and all("no GPU kernels for compute capability 5.2" in e for e in out["errors"])
