#!/usr/bin/env bash
# Builds, tests and times the fkd_ops GPU kernels on a machine with an NVIDIA GPU,
# CUDA (nvcc), CuPy, pytest, CMake and pybind11, and no TensorFlow (the lent
# H100/H200): about 4 minutes.
#
#   bash benchmarks/gpu/run_on_device.sh            # from the repository root
#
# 1. builds the pybind11 module `_native` alone, with FKD_OPS_TF=OFF and
#    FKD_OPS_CUDA=ON, for this GPU's architecture, into $FKD_GPU_BUILD;
# 2. runs python_tests/gpu (every GPU kernel against the CPU kernel);
# 3. runs benchmarks/gpu/bench_gpu.py (kernels vs device copy vs CuPy).
# Everything it prints goes to $OUT/run.log too; also $OUT/gpu-tests.xml,
# $OUT/gpu_bench.json, $OUT/gpu_bench.txt and $OUT/resource-usage.txt. A failing
# step does not stop the next; the exit status says whether all passed.
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
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 || echo "nvidia-smi failed"
if ! command -v nvcc > /dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-13.0/bin; do
    [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break
  done
fi
nvcc --version | tail -2 || echo "nvcc not found"
cmake --version | head -1
"$PY" - <<'EOF'
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
EOF

# ---------------------------------------------------------------- build
stamp "configure + build _native (FKD_OPS_TF=OFF, FKD_OPS_CUDA=ON)"
arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
arch="${arch:-90}"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake_args=(-S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DFKD_OPS_TF=OFF
  -DFKD_OPS_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch" "-DPython_EXECUTABLE=$(command -v "$PY")"
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
build_rc=0
cmake "${cmake_args[@]}" && cmake --build "$BUILD" --target _native -j "$(nproc)" || build_rc=$?
ls -la "$BUILD"/_native*.so 2>&1
cuobjdump --dump-resource-usage "$BUILD"/_native*.so > "$OUT/resource-usage.txt" 2>&1 || true
export FKD_OPS_NATIVE_DIR="$BUILD"
PYTHONPATH="$BUILD" "$PY" -c \
  "import _native as n; print('built_with_cuda', n.built_with_cuda, 'devices', n.cuda_device_count())" \
  || build_rc=1

# ---------------------------------------------------------------- tests
stamp "tests: python_tests/gpu (build rc $build_rc)"
test_rc=0
# --confcutdir: only the GPU tests' own conftest (the suite's others import TensorFlow).
timeout 200 "$PY" -m pytest python_tests/gpu -q -rs -p no:cacheprovider --confcutdir=python_tests/gpu \
  --junitxml="$OUT/gpu-tests.xml" -o junit_family=xunit1 || test_rc=$?

# ---------------------------------------------------------------- benchmark
stamp "benchmark: benchmarks/gpu/bench_gpu.py (tests rc $test_rc)"
bench_rc=0
timeout 220 "$PY" benchmarks/gpu/bench_gpu.py --out "$OUT" || bench_rc=$?

stamp "done: build rc $build_rc, tests rc $test_rc, benchmark rc $bench_rc"
[ "$build_rc" = 0 ] && [ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ]
}

main 2>&1 | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
