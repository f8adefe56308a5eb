#!/usr/bin/env bash
# Builds, tests and times the fkd_ops GPU kernels on a machine with an NVIDIA GPU,
# CuPy, pytest, CMake, a C++ compiler and pybind11, and no TensorFlow and no
# network (the lent H100/H200): about 4 minutes.
#
#   bash benchmarks/gpu/run_on_device.sh            # from the repository root
#
# The kernels are built exactly as `pip install` builds them for users: NVRTC
# from CUDA 12.5 (PyPI's nvidia-cuda-nvrtc-cu12, which the machine lacks, so it
# travels as a wheel in .whl/, see below) compiles cpp/kernels/gpu_kernels.cu for
# TensorFlow 2.21's architectures (sm_60 sm_70 sm_80 sm_89 sm_90 + compute_90
# PTX), the images are embedded in `_native`, and the launcher opens libcuda and
# launches them with cuLaunchKernel: the code the TensorFlow op kernels run.
# No nvcc is used (the machine's CUDA 13 plays no part).
#
# 1. builds `_native` alone (FKD_OPS_TF=OFF, FKD_OPS_CUDA=ON) into $FKD_GPU_BUILD,
#    prints the architecture list in the binary (read back from the library,
#    ELF e_flags of each cubin) and the image this GPU loads, and runs cuobjdump
#    over the cubins;
# 2. runs python_tests/gpu on the GPU (FKD_GPU_FACE=cuda: a setup that cannot
#    reach the GPU fails rather than testing the emulation), then the kernel
#    tests again on the PTX image (FKD_OPS_GPU_FORCE_PTX=1: the path of GPUs
#    newer than the cubins, compiled by this driver);
# 3. runs benchmarks/gpu/bench_gpu.py (kernels vs device copy vs CuPy; targets:
#    flip + normalize B=8192 >= 85% of copy, masked RMSE fwd+bwd B=4096 >= 15x CuPy).
# Everything it prints goes to $OUT/run.log too; also $OUT/gpu-tests.xml,
# $OUT/gpu_bench.json, $OUT/gpu_bench.txt, $OUT/gpu_kernels_build.json (NVRTC's
# register report) and $OUT/resource-usage.txt. A failing step does not stop the
# next; the exit status says whether all passed.
#
# The NVRTC wheel, prepared once on a machine with PyPI (git ignores .whl/):
#   python3 -m pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
#       -d .whl nvidia-cuda-nvrtc-cu12==12.5.82
# and carried to the device (the run tool's carry: [".whl"]). Elsewhere set
# FKD_NVRTC_LIBRARY to a CUDA 12 libnvrtc.so.12 instead.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu-out}"
BUILD="${FKD_GPU_BUILD:-/tmp/fkd-gpu-build}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
start=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - start )) s] $*"; }
PY="${PYTHON:-python3}"

main() {
stamp "machine"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 \
  || echo "nvidia-smi failed"
cmake --version | head -1
"$PY" - <<'PYEOF'
import sys, sysconfig, os
inc = sysconfig.get_paths()["include"]
print("python", sys.version.split()[0], sys.executable)
print("Python.h", inc, os.path.exists(os.path.join(inc, "Python.h")))
for name in ("numpy", "cupy", "pytest", "pybind11"):
    try:
        m = __import__(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as exc:  # report and go on: the step that needs it will fail
        print(name, "MISSING", exc)
PYEOF

# ---------------------------------------------------------------- NVRTC (CUDA 12.5)
stamp "NVRTC"
build_rc=0
if [ -z "${FKD_NVRTC_LIBRARY:-}" ]; then
  wheel="$(ls .whl/nvidia_cuda_nvrtc_cu12-*.whl 2>/dev/null | head -1)"
  if [ -n "$wheel" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/fkd-nvrtc "$wheel" \
      && export FKD_NVRTC_LIBRARY=/tmp/fkd-nvrtc/nvidia/cuda_nvrtc/lib/libnvrtc.so.12
  fi
fi
echo "FKD_NVRTC_LIBRARY=${FKD_NVRTC_LIBRARY:-unset (cpp/cmake/compile_gpu_kernels.py will look for nvidia.cuda_nvrtc)}"

# ---------------------------------------------------------------- build
stamp "configure + build _native (FKD_OPS_TF=OFF, FKD_OPS_CUDA=ON, TF 2.21's architectures)"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake_args=(-S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DFKD_OPS_TF=OFF
  -DFKD_OPS_CUDA=ON "-DPython_EXECUTABLE=$(command -v "$PY")"
  "-Dpybind11_DIR=$("$PY" -m pybind11 --cmakedir)")
# Where the interpreter's own headers are missing, any CPython of the same
# version's Python.h serves (the module's ABI is the version's).
py_inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
if [ ! -f "$py_inc/Python.h" ]; then
  ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  alt="$(find /usr /opt /root -path "*python${ver}*" -name Python.h 2>/dev/null | head -1)"
  echo "no Python.h in $py_inc; using ${alt:-none found}"
  [ -n "$alt" ] && cmake_args+=("-DPython_INCLUDE_DIR=$(dirname "$alt")")
fi
cmake "${cmake_args[@]}" && cmake --build "$BUILD" --target _native -j "$(nproc)" || build_rc=$?
ls -la "$BUILD"/_native*.so "$BUILD"/gpu_kernels 2>&1
cp "$BUILD/gpu_kernels/gpu_kernels_build.json" "$OUT/" 2>/dev/null
export FKD_OPS_NATIVE_DIR="$BUILD"
# The tests and the benchmark drive the kernels through fkd_ops.ops.gpu_arrays,
# from this source tree (TF-free; the _native above is the only compiled part).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
stamp "the architectures in the binary, and what this GPU loads"
PYTHONPATH="$BUILD" "$PY" - <<'PYEOF' || build_rc=1
import struct
import _native as n
print("built_with_cuda", n.built_with_cuda, "NVRTC", n.gpu_nvrtc_version(), "devices", n.cuda_device_count())
for image in n.gpu_kernel_images():
    data = image["data"]
    if image["kind"] == "cubin":
        flags = struct.unpack_from("<I", data, 48)[0]
        print(f"  {image['target']:11s} cubin {len(data):8d} bytes  ELF machine {struct.unpack_from('<H', data, 18)[0]}"
              f" e_flags 0x{flags:08x} -> sm_{flags & 0xff}")
    else:
        head = [l for l in data[:400].decode().splitlines() if l.startswith((".version", ".target"))]
        print(f"  {image['target']:11s} PTX   {len(data):8d} bytes  {' '.join(head)}")
probe = n.gpu_probe()
print("driver", probe["driver_version"], probe["problem"])
for d in probe["devices"]:
    print(f"  GPU {d['index']}: {d['name']} sm_{d['compute_capability'][0]}{d['compute_capability'][1]} runs"
          f" {d['image'] or 'nothing'} {d['problem']}")
PYEOF
if command -v cuobjdump > /dev/null; then
  for f in "$BUILD"/gpu_kernels/*.cubin; do
    echo "### $f"; cuobjdump --dump-resource-usage "$f"
  done > "$OUT/resource-usage.txt" 2>&1
  cuobjdump --list-elf "$BUILD"/gpu_kernels/sm_90.cubin 2>&1 | head -3
fi

# ---------------------------------------------------------------- tests
stamp "tests: python_tests/gpu on the GPU (build rc $build_rc)"
test_rc=0
# --confcutdir: only the GPU tests' own conftest (the suite's others import TensorFlow).
FKD_GPU_FACE=cuda timeout 240 "$PY" -m pytest python_tests/gpu -q -rs -p no:cacheprovider \
  --confcutdir=python_tests/gpu --junitxml="$OUT/gpu-tests.xml" -o junit_family=xunit1 || test_rc=$?
stamp "tests: the kernels from the compute_90 PTX, compiled by this driver (FKD_OPS_GPU_FORCE_PTX=1)"
FKD_GPU_FACE=cuda FKD_OPS_GPU_FORCE_PTX=1 timeout 120 "$PY" -m pytest python_tests/gpu/test_gpu_kernels.py -q \
  -p no:cacheprovider --confcutdir=python_tests/gpu || test_rc=$?

# ---------------------------------------------------------------- benchmark
stamp "benchmark: benchmarks/gpu/bench_gpu.py (tests rc $test_rc)"
bench_rc=0
timeout 220 "$PY" benchmarks/gpu/bench_gpu.py --out "$OUT" || bench_rc=$?

stamp "done: build rc $build_rc, tests rc $test_rc, benchmark rc $bench_rc"
[ "$build_rc" = 0 ] && [ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ]
}

main 2>&1 | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
