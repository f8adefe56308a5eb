"""Finding and loading the compiled parts of fkd_ops, each on first use.

The build installs `_fkd_ops_tf.so` (the TensorFlow op library), the pybind11
module `_native` and `fkd_ops_build.json` (what they were built against) into the
top of the package. Editable installs put them outside the source folder, so every
entry of the package's ``__path__`` is searched. Importing this module imports
neither TensorFlow nor a library.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

_OP_LIBRARY = "_fkd_ops_tf.so"
_BUILD_RECORD = "fkd_ops_build.json"

_REBUILD_HINT = (
    "Rebuild fkd_ops against the installed TensorFlow: `pip install --no-cache-dir "
    "--force-reinstall .` (or `pip install -e .`) from the source folder, or install "
    "the TensorFlow release it was built for."
)


def _package_dirs() -> list[Path]:
    # The top package is imported before any of its submodules: read its search
    # path from sys.modules rather than importing the package face from below.
    top = sys.modules[__name__.partition(".")[0]]
    return [Path(p) for p in top.__path__]


def find_file(name: str) -> Path:
    """Returns the first file called `name` in the package's folders."""
    for folder in _package_dirs():
        candidate = folder / name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(p) for p in _package_dirs())
    raise ImportError(
        f"fkd_ops: {name} was not found in {searched}; the package looks unbuilt. "
        "Install it with `pip install .` (or `pip install -e .`) so the C++ parts are compiled."
    )


@functools.cache
def build_record() -> dict[str, Any]:
    """What the native libraries were built against: the TensorFlow version,
    whether GPU kernels are in (``cuda``) and, if so, ``gpu``: the toolchain that
    compiled them (NVRTC), its CUDA version and the GPU architectures."""
    path = find_file(_BUILD_RECORD)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ImportError(f"fkd_ops: cannot read the build record {path}: {exc}") from exc


def check_tensorflow_version(installed: str) -> None:
    """Raises ImportError when the op library was compiled against another TensorFlow."""
    built = build_record().get("tensorflow_version") or ""
    if not built:
        raise ImportError(
            "fkd_ops was built without its TensorFlow op library (FKD_OPS_TF=OFF); "
            "only fkd_ops._native is available. " + _REBUILD_HINT
        )
    if built != installed:
        raise ImportError(
            f"fkd_ops was compiled against TensorFlow {built} but TensorFlow {installed} "
            f"is installed; a custom op library only loads in the exact release it was "
            f"built for. {_REBUILD_HINT}"
        )


@functools.cache
def op_library() -> Any:
    """The loaded TensorFlow op library (its module of generated op wrappers).

    Where TensorFlow sees a GPU, also checks that fkd_ops' GPU kernels can run
    there and warns, in one line with the fix, when they cannot.
    """
    import tensorflow as tf

    check_tensorflow_version(tf.__version__)
    library = tf.load_op_library(os.fspath(find_file(_OP_LIBRARY)))
    if tf.config.list_physical_devices("GPU"):
        problem = gpu_problem()
        if problem:
            warnings.warn(problem, RuntimeWarning, stacklevel=2)
    return library


_NVRTC_HINT = (
    "`pip install nvidia-cuda-nvrtc-cu12==12.5.82` (what tensorflow[and-cuda] installs), then "
    "rebuild fkd_ops (`pip install --no-cache-dir --force-reinstall .` from the source folder)"
)


def gpu_problem() -> str | None:
    """Why fkd_ops' GPU kernels cannot run on this machine's GPUs, with the fix; None when they can.

    Reads the build record and asks the CUDA driver (through `_native`, which
    loads libcuda and creates no context) which kernel image each GPU would load.
    """
    record = build_record()
    if not record.get("cuda"):
        return (
            "fkd_ops was built without GPU kernels (FKD_OPS_CUDA=OFF, or no CUDA 12 NVRTC at build time), "
            f"so its ops run on the CPU while TensorFlow has a GPU; for GPU kernels: {_NVRTC_HINT}"
        )
    probe = native().gpu_probe()
    if probe["problem"]:
        return probe["problem"]
    for device in probe["devices"]:
        if device["problem"]:
            return f"GPU {device['index']} ({device['name']}): {device['problem']}"
    return None


def native() -> Any:
    """The pybind11 module: the kernels on numpy arrays and the Kaggle CSV reader.

    ``FKD_OPS_NATIVE_DIR`` names a folder holding another build of it, imported
    as the top-level module ``_native`` instead (the sanitizer build of
    ``.ci/sanitize``; a GPU machine's build without TensorFlow)."""
    folder = os.environ.get("FKD_OPS_NATIVE_DIR")
    if folder:
        return _native_from(folder)
    from fkd_ops import _native

    return _native


@functools.cache
def _native_from(folder: str) -> Any:
    import importlib

    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("_native")
