"""Compiles fkd_ops' CUDA kernels with NVRTC (CUDA 12) at build time.

CMake runs this script twice:

    compile_gpu_kernels.py probe [--archs LIST] [--nvrtc LIB]
        Finds NVRTC and prints three lines: its library path, its version
        ("12.5") and the architectures to build (","-separated, e.g.
        "sm_60,sm_70,sm_80,sm_89,sm_90,compute_90"). Exit status 2 (and the reason
        on stderr) when no usable NVRTC is found.

    compile_gpu_kernels.py compile --source gpu_kernels.cu --include DIR
                           --archs LIST --out-dir DIR [--nvrtc LIB] [--jobs N]
        Compiles the source once per architecture: a cubin for each sm_XX and PTX
        for each compute_XX (in parallel, NVRTC releases the GIL), and writes to
        --out-dir: the images (sm_XX.cubin, compute_XX.ptx), gpu_kernel_images.cc
        (the images embedded with .incbin, and their table), gpu_job_layout.h (the
        jobs' sizes as NVRTC laid them out, read back from the PTX) and
        gpu_kernels_build.json (what was built, ptxas' register report, times).

NVRTC comes from PyPI's nvidia-cuda-nvrtc-cu12 (what `tensorflow[and-cuda]`
installs; a build requirement of fkd_ops), loaded with ctypes: no nvcc, no CUDA
toolkit, no GPU. Only CUDA 12 is accepted: TensorFlow 2.21 runs CUDA 12.5, and a
CUDA 13 compiler can target neither Pascal nor Volta and emits PTX that only
R580+ drivers load.

Architectures: LIST holds sm_XX (a cubin), compute_XX (PTX, which the driver
compiles for newer GPUs, plus a cubin for sm_XX so that GPU needs no JIT), or
CMake's forms NN (both), NN-real, NN-virtual. Without --archs: TensorFlow's own
list, tf.sysconfig.get_build_info()["cuda_compute_capabilities"], when
TensorFlow imports and was built with CUDA; else TF 2.21's list.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import json
import os
import re
import sys
import time
from pathlib import Path

# TF 2.21's tf.sysconfig.get_build_info()["cuda_compute_capabilities"].
DEFAULT_ARCHS = ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
NVRTC_MAJOR = 12
# NVRTC options: C++17; no fused multiply-add, so the GPU rounds as the CPU
# kernels do (they are memory-bound: the extra instructions cost nothing);
# unannotated (host) inline functions of the shared headers become device
# functions; ptxas reports registers and spills into the log.
OPTIONS = ("-std=c++17", "--fmad=false", "-default-device", "--ptxas-options=-v", "-DFKD_NVRTC=1")


class NvrtcError(RuntimeError):
    pass


def find_nvrtc(explicit: str | None) -> Path:
    """The NVRTC library: --nvrtc, $FKD_NVRTC_LIBRARY, else PyPI's nvidia-cuda-nvrtc-cu12."""
    for candidate in (explicit, os.environ.get("FKD_NVRTC_LIBRARY")):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise NvrtcError(f"NVRTC library {path} does not exist")
            return path
    try:
        import nvidia.cuda_nvrtc as package  # nvidia-cuda-nvrtc-cu12
    except ImportError as error:
        raise NvrtcError(
            "no CUDA 12 NVRTC: `pip install nvidia-cuda-nvrtc-cu12` (a build requirement of fkd_ops) "
            f"or set FKD_NVRTC_LIBRARY ({error})"
        ) from error
    for folder in getattr(package, "__path__", []):
        for name in (f"lib/libnvrtc.so.{NVRTC_MAJOR}", "lib/libnvrtc.so"):
            path = Path(folder) / name
            if path.is_file():
                return path
    raise NvrtcError(f"nvidia.cuda_nvrtc is installed but holds no lib/libnvrtc.so.{NVRTC_MAJOR}")


class Nvrtc:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.lib = ctypes.CDLL(str(path))
        except OSError as error:
            raise NvrtcError(f"cannot load NVRTC from {path}: {error}") from error
        self.lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        self.version = (major.value, minor.value)
        if major.value != NVRTC_MAJOR:
            raise NvrtcError(
                f"{path} is NVRTC {major.value}.{minor.value}; fkd_ops needs CUDA {NVRTC_MAJOR} "
                f"(TensorFlow's), e.g. `pip install nvidia-cuda-nvrtc-cu12`"
            )
        count = ctypes.c_int()
        self._check(self.lib.nvrtcGetNumSupportedArchs(ctypes.byref(count)), "nvrtcGetNumSupportedArchs")
        archs = (ctypes.c_int * count.value)()
        self._check(self.lib.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
        self.supported = sorted(archs)

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            raise NvrtcError(f"{what} failed: {self.lib.nvrtcGetErrorString(rc).decode()}")

    def compile(self, source: bytes, name: str, arch: str, options: list[str]) -> dict:
        """One program for one architecture: its PTX, cubin (sm_XX) and log."""
        program = ctypes.c_void_p()
        self._check(
            self.lib.nvrtcCreateProgram(ctypes.byref(program), source, name.encode(), 0, None, None),
            "nvrtcCreateProgram",
        )
        try:
            args = [f"--gpu-architecture={arch}", *options]
            argv = (ctypes.c_char_p * len(args))(*(a.encode() for a in args))
            start = time.perf_counter()
            rc = self.lib.nvrtcCompileProgram(program, len(args), argv)
            seconds = time.perf_counter() - start
            log = self._read(program, "nvrtcGetProgramLogSize", "nvrtcGetProgramLog").rstrip(b"\0").decode()
            if rc != 0:
                raise NvrtcError(f"NVRTC failed for {arch}: {self.lib.nvrtcGetErrorString(rc).decode()}\n{log}")
            result = {"arch": arch, "seconds": seconds, "log": log}
            result["ptx"] = self._read(program, "nvrtcGetPTXSize", "nvrtcGetPTX")
            if arch.startswith("sm_"):
                result["cubin"] = self._read(program, "nvrtcGetCUBINSize", "nvrtcGetCUBIN")
            return result
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(program))

    def _read(self, program: ctypes.c_void_p, size_fn: str, get_fn: str) -> bytes:
        size = ctypes.c_size_t()
        self._check(getattr(self.lib, size_fn)(program, ctypes.byref(size)), size_fn)
        buffer = ctypes.create_string_buffer(size.value)
        self._check(getattr(self.lib, get_fn)(program, buffer), get_fn)
        return buffer.raw


def tensorflow_archs() -> list[str] | None:
    """TensorFlow's CUDA architectures, or None without a CUDA build of TensorFlow."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    archs = tf.sysconfig.get_build_info().get("cuda_compute_capabilities")
    return list(archs) if archs else None


def expand_archs(spec: list[str], supported: list[int]) -> list[str]:
    """The targets of an architecture list: sm_XX (cubins) and compute_XX (PTX), sorted."""
    targets: set[str] = set()
    for item in spec:
        item = item.strip()
        if not item:
            continue
        m = re.fullmatch(r"(sm|compute)_(\d+)|(\d+)(-real|-virtual)?", item)
        if not m:
            raise NvrtcError(f"bad architecture {item!r}: use sm_XX, compute_XX, XX, XX-real or XX-virtual")
        number = int(m.group(2) or m.group(3))
        if number not in supported:
            raise NvrtcError(f"this NVRTC cannot target {item}; it knows {supported}")
        real = m.group(1) == "sm" or (m.group(3) and m.group(4) != "-virtual")
        virtual = m.group(1) == "compute" or (m.group(3) and m.group(4) != "-real")
        if real or virtual:  # PTX comes with a cubin for its own architecture
            targets.add(f"sm_{number}")
        if virtual:
            targets.add(f"compute_{number}")
    if not targets:
        raise NvrtcError("no GPU architecture to build")
    return sorted(targets, key=lambda t: (int(t.split("_")[1]), t.startswith("compute")))


def resolve_archs(args_archs: str | None) -> list[str]:
    if args_archs:
        return re.split(r"[;,\s]+", args_archs.strip())
    return tensorflow_archs() or list(DEFAULT_ARCHS)


# ---------------------------------------------------------------- outputs


def job_layout(ptx: bytes) -> list[int]:
    """fkd_job_layout (unsigned long long[]) from the PTX's initializer."""
    text = ptx.decode(errors="replace")
    m = re.search(r"fkd_job_layout\[(\d+)\]\s*=\s*\{([^}]*)\}", text)
    if not m:
        raise NvrtcError("the PTX holds no fkd_job_layout")
    raw = [int(v) for v in m.group(2).split(",")]
    if ".b8" in text[max(0, m.start() - 40) : m.start()]:  # bytes, little-endian
        return [int.from_bytes(bytes(raw[i : i + 8]), "little") for i in range(0, len(raw), 8)]
    return raw


def registers(log: str) -> dict[str, dict]:
    """ptxas' report per kernel: registers, spills and stack."""
    out: dict[str, dict] = {}
    current = None
    for line in log.splitlines():
        m = re.search(r"Function properties for (\w+)", line)
        if m:
            current = out.setdefault(m.group(1), {})
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and current is not None:
            current.update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
            continue
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            current = out.setdefault(m.group(1), {})
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and current is not None:
            current["registers"] = int(m.group(1))
    return out


IMAGES_CC = """\
// Generated by cpp/cmake/compile_gpu_kernels.py: the CUDA kernels compiled by NVRTC
// {version} for {archs}, embedded with .incbin. Do not edit.
#include "kernels/gpu_launch.h"

__asm__(
    ".section .rodata.fkd_gpu_images,\\"a\\",@progbits\\n"
{incbins}    ".previous\\n");

extern "C" {{
{declarations}}}

namespace fkd {{
namespace gpu {{

const KernelImage kKernelImages[] = {{
{entries}}};
const int kNumKernelImages = {count};
const char kNvrtcVersion[] = "{version}";

}}  // namespace gpu
}}  // namespace fkd
"""


def write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def compile_all(args: argparse.Namespace) -> int:
    nvrtc = Nvrtc(find_nvrtc(args.nvrtc))
    targets = expand_archs(resolve_archs(args.archs), nvrtc.supported)
    source_path = Path(args.source).resolve()
    source = source_path.read_bytes()
    options = [*OPTIONS, f"-I{Path(args.include).resolve()}"]
    out_dir = Path(args.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(args.jobs or os.cpu_count() or 1, len(targets)))
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda t: nvrtc.compile(source, source_path.name, t, options), targets))
    wall = time.perf_counter() - start

    layouts = {r["arch"]: job_layout(r["ptx"]) for r in results}
    first = next(iter(layouts.values()))
    if any(v != first for v in layouts.values()):
        raise NvrtcError(f"the jobs' layout differs between architectures: {layouts}")

    images = []
    for r in results:
        kind = "cubin" if r["arch"].startswith("sm_") else "ptx"
        data = r["cubin"] if kind == "cubin" else r["ptx"].rstrip(b"\0") + b"\0"
        path = out_dir / f"{r['arch']}.{kind}"
        write_if_changed(path, data)
        images.append(
            {
                "arch": int(r["arch"].split("_")[1]),
                "kind": kind,
                "target": r["arch"],
                "file": path.name,
                "bytes": len(data),
                "seconds": round(r["seconds"], 2),
                "kernels": registers(r["log"]) if kind == "cubin" else {},
            }
        )

    version = f"{nvrtc.version[0]}.{nvrtc.version[1]}"
    incbins, declarations, entries = [], [], []
    for i, image in enumerate(images):
        symbol = f"fkd_gpu_image_{i}"
        incbins.append(
            f'    ".balign 64\\n"\n    ".globl {symbol}\\n"\n    ".hidden {symbol}\\n"\n'
            f'    "{symbol}:\\n"\n    ".incbin \\"{out_dir / image["file"]}\\"\\n"\n'
        )
        declarations.append(f"extern const unsigned char {symbol}[];\n")
        entries.append(
            f"    {{{image['arch']}, {'true' if image['kind'] == 'ptx' else 'false'}, {symbol}, {image['bytes']}}},\n"
        )
    cc = IMAGES_CC.format(
        version=version,
        archs=", ".join(t for t in targets),
        incbins="".join(incbins),
        declarations="".join(declarations),
        entries="".join(entries),
        count=len(images),
    )
    write_if_changed(out_dir / "gpu_kernel_images.cc", cc.encode())
    layout_h = (
        "// Generated by cpp/cmake/compile_gpu_kernels.py: the jobs' sizes and alignments as NVRTC\n"
        "// laid them out (fkd_job_layout in the PTX), checked against the host's by gpu_launch.cc.\n"
        "#pragma once\n\n"
        f"#define FKD_GPU_NVRTC_JOB_LAYOUT {{{', '.join(f'{v}ULL' for v in first)}}}\n"
    )
    write_if_changed(out_dir / "gpu_job_layout.h", layout_h.encode())
    record = {
        "nvrtc_version": version,
        "nvrtc_library": str(nvrtc.path),
        "targets": targets,
        "options": list(OPTIONS),
        "compile_seconds": round(wall, 2),
        "jobs": jobs,
        "images": images,
    }
    write_if_changed(out_dir / "gpu_kernels_build.json", (json.dumps(record, indent=1) + "\n").encode())
    sizes = ", ".join(f"{i['target']} {i['bytes'] // 1024} KB ({i['seconds']:.1f} s)" for i in images)
    print(f"fkd_ops: NVRTC {version} compiled the GPU kernels in {wall:.1f} s on {jobs} threads: {sizes}")
    return 0


def probe(args: argparse.Namespace) -> int:
    nvrtc = Nvrtc(find_nvrtc(args.nvrtc))
    targets = expand_archs(resolve_archs(args.archs), nvrtc.supported)
    print(nvrtc.path)
    print(f"{nvrtc.version[0]}.{nvrtc.version[1]}")
    print(",".join(targets))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--archs")
    p.add_argument("--nvrtc")
    c = sub.add_parser("compile")
    c.add_argument("--source", required=True)
    c.add_argument("--include", required=True)
    c.add_argument("--archs")
    c.add_argument("--out-dir", required=True)
    c.add_argument("--nvrtc")
    c.add_argument("--jobs", type=int)
    args = parser.parse_args(argv)
    try:
        return probe(args) if args.command == "probe" else compile_all(args)
    except NvrtcError as error:
        print(f"fkd_ops: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
