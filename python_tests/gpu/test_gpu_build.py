"""What the build put in the binary, and how the launcher chooses and fails, on any machine.

The GPU kernels are compiled by NVRTC (CUDA 12) at build time and embedded in
`_native` and the TensorFlow op library (the same object). These tests read the
images back out of `_native` and check them as the driver will see them: a
CUDA ELF whose e_flags name the architecture, holding every kernel the
launcher looks up, for every architecture TensorFlow is built for, plus PTX
for newer GPUs. No GPU, no driver and no TensorFlow needed (TensorFlow's list
is used where it imports).
"""

from __future__ import annotations

import re
import struct

import pytest

# TF 2.21's tf.sysconfig.get_build_info()["cuda_compute_capabilities"].
TF_221_ARCHS = ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]
EM_CUDA = 190
ELFOSABI_CUDA = 0x33


@pytest.fixture(scope="module")
def images(native):
    if not native.built_with_cuda:
        pytest.skip("fkd_ops._native was built without GPU kernels")
    return native.gpu_kernel_images()


def tensorflow_archs() -> list[str]:
    try:
        import tensorflow as tf
    except ImportError:
        return TF_221_ARCHS
    return list(tf.sysconfig.get_build_info().get("cuda_compute_capabilities") or TF_221_ARCHS)


def elf_header(data: bytes) -> dict:
    assert data[:4] == b"\x7fELF" and data[4] == 2, "not a 64-bit ELF"
    machine = struct.unpack_from("<H", data, 18)[0]
    flags = struct.unpack_from("<I", data, 48)[0]
    return {
        "osabi": data[7],
        "abi_version": data[8],
        "machine": machine,
        "sm": flags & 0xFF,
        "virtual_sm": (flags >> 16) & 0xFF,
    }


def elf_functions(data: bytes) -> set[str]:
    """Names of the STT_FUNC symbols of an ELF's symbol table."""
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = set()
    for _, kind, _, _, offset, size, link, _, _, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strtab = sections[link]
        for k in range(size // entsize):
            st_name, st_info = struct.unpack_from("<IB", data, offset + k * entsize)
            if st_info & 0xF == 2:  # STT_FUNC
                start = strtab[4] + st_name
                names.add(data[start : data.index(b"\0", start)].decode())
    return names


def test_every_tensorflow_architecture_is_in_the_binary(images):
    built = {(i["kind"], i["arch"]) for i in images}
    for arch in tensorflow_archs():
        kind, number = arch.split("_")
        number = int(number)
        if kind == "sm":
            assert ("cubin", number) in built, f"no cubin for {arch}: {sorted(built)}"
        else:  # compute_XX: PTX for newer GPUs, and the cubin that spares sm_XX the JIT
            assert ("ptx", number) in built and ("cubin", number) in built, f"{arch}: {sorted(built)}"


def test_each_cubin_is_a_cuda_elf_for_its_architecture(images):
    cubins = [i for i in images if i["kind"] == "cubin"]
    assert cubins
    for image in cubins:
        header = elf_header(image["data"])
        assert header["machine"] == EM_CUDA and header["osabi"] == ELFOSABI_CUDA, image["target"]
        assert header["sm"] == image["arch"] and header["virtual_sm"] == image["arch"], (image["target"], header)


def test_the_ptx_is_cuda_12_for_its_architecture(images, native):
    ptx = [i for i in images if i["kind"] == "ptx"]
    assert ptx
    major, minor = (int(v) for v in native.gpu_nvrtc_version().split("."))
    assert major == 12
    for image in ptx:
        text = image["data"]
        assert text.endswith(b"\0"), "cuModuleLoadData needs NUL-terminated PTX"
        text = text.rstrip(b"\0").decode()
        assert re.search(rf"^\.target sm_{image['arch']}\b", text, re.M), image["target"]
        # PTX ISA 8.x is CUDA 12.x: NVRTC 12.5 writes 8.5, which a driver for CUDA 12.5 compiles.
        version = re.search(r"^\.version (\d+)\.(\d+)", text, re.M)
        assert version and (int(version[1]), int(version[2])) == (8, minor), version and version[0]


def test_every_kernel_the_launcher_uses_is_in_every_image(images, native):
    wanted = set(native.gpu_kernel_names())
    assert len(wanted) == 22  # 3 per float type, 7 image, 8 gradient, 1 decisions
    for image in images:
        if image["kind"] == "cubin":
            have = elf_functions(image["data"])
        else:
            have = set(re.findall(r"\.entry (\w+)\(", image["data"].decode(errors="replace")))
        assert wanted <= have, f"{image['target']} lacks {sorted(wanted - have)}"


@pytest.mark.parametrize(
    "major, minor, driver, image",
    [
        (6, 0, 12000, "sm_60 cubin"),  # P100 (Kaggle), the oldest CUDA 12 driver
        (6, 1, 12020, "sm_60 cubin"),  # P40 / GTX 10xx
        (7, 0, 12020, "sm_70 cubin"),  # V100
        (7, 5, 12020, "sm_70 cubin"),  # T4 (Colab, Kaggle)
        (8, 0, 12020, "sm_80 cubin"),  # A100
        (8, 6, 12020, "sm_80 cubin"),  # A10, RTX 30xx
        (8, 9, 12020, "sm_89 cubin"),  # L4, RTX 40xx
        (9, 0, 12000, "sm_90 cubin"),  # H100/H200 under any CUDA 12 driver: no JIT
        (10, 0, 12080, "compute_90 PTX"),  # Blackwell: the driver compiles the PTX
        (12, 0, 13000, "compute_90 PTX"),
    ],
)
def test_each_gpu_gets_the_image_that_fits(native, images, major, minor, driver, image):
    index, problem = native.gpu_choose_image(major, minor, driver)
    assert problem == "" and index >= 0
    chosen = images[index]
    assert f"{chosen['target']} {'PTX' if chosen['kind'] == 'ptx' else 'cubin'}" == image


@pytest.mark.parametrize(
    "major, minor, driver, why",
    [
        (10, 0, 12040, "needs a driver for CUDA 12.5"),  # PTX from CUDA 12.5 under a 12.4 driver
        (5, 2, 12020, "no GPU kernels for compute capability 5.2"),  # Maxwell: below TF's list
        (8, 0, 11080, "need a driver for CUDA 12"),  # a CUDA 11 driver
    ],
)
def test_a_gpu_that_cannot_run_them_gets_a_reason_and_the_fix(native, images, major, minor, driver, why):
    index, problem = native.gpu_choose_image(major, minor, driver)
    assert index == -1 and why in problem and ("update" in problem or "rebuild" in problem)


def test_without_a_driver_launches_fail_with_the_reason(native, images):
    probe = native.gpu_probe()
    if probe["driver_loaded"] and probe["devices"]:
        pytest.skip("a CUDA device is present (the kernel tests run on it)")
    assert native.cuda_device_count() == 0
    import numpy as np

    out = np.zeros(8, dtype=np.uint8)
    with pytest.raises(RuntimeError, match="flip_decisions: fkd_ops: "):
        native.cuda.flip_decisions(1, 2, 8, 0.5, out.ctypes.data)
    assert out.sum() == 0  # nothing ran
    assert probe["problem"]
