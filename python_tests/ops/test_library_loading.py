"""Finding and loading the native libraries: the TensorFlow version check and the
search of the package's __path__ (editable installs put the libraries outside
the source folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

import fkd_ops
from fkd_ops.ops import libraries


def test_build_record_names_the_installed_tensorflow():
    record = libraries.build_record()
    assert record["tensorflow_version"] == tf.__version__
    assert record["tensorflow_op_library"] is True
    assert isinstance(record["cuda"], bool)


def test_matching_version_passes():
    libraries.check_tensorflow_version(tf.__version__)


@pytest.mark.parametrize("installed", ["2.20.0", "2.21.1", "2.22.0rc0"])
def test_other_tensorflow_raises_import_error_naming_both_and_how_to_rebuild(installed):
    with pytest.raises(ImportError) as info:
        libraries.check_tensorflow_version(installed)
    message = str(info.value)
    built = libraries.build_record()["tensorflow_version"]
    assert f"TensorFlow {built}" in message and f"TensorFlow {installed}" in message
    assert "pip install" in message and "Rebuild" in message


def test_library_built_without_tensorflow_says_so(monkeypatch):
    monkeypatch.setattr(libraries, "build_record", lambda: {"tensorflow_version": "", "cuda": False})
    with pytest.raises(ImportError, match="FKD_OPS_TF=OFF") as info:
        libraries.check_tensorflow_version(tf.__version__)
    assert "pip install" in str(info.value)


def test_using_an_op_under_another_tensorflow_fails_cleanly(tmp_path):
    """End to end, in a fresh interpreter: TensorFlow reports another version;
    `import fkd_ops` (lazy) succeeds, and the first op raises the ImportError that
    says both versions (not an undefined-symbol crash)."""
    code = (
        "import tensorflow as tf\n"
        "tf.__version__ = '2.20.0'\n"
        "import fkd_ops\n"
        "try:\n"
        "    fkd_ops.masked_rmse([1.0], [2.0])\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
        "else:\n"
        "    print('ran')\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # Run outside the source folder, which `python -c` would put first on sys.path.
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ImportError:" in done.stdout, done.stdout
    assert "TensorFlow 2.20.0" in done.stdout and f"TensorFlow {tf.__version__}" in done.stdout


def test_op_library_is_found_in_the_package_path():
    found = libraries.find_file("_fkd_ops_tf.so")
    assert found.is_file()
    assert any(found.parent == Path(p) for p in fkd_ops.__path__)
    assert libraries.find_file("fkd_ops_build.json").parent == found.parent
    libraries.op_library()
    maps = Path("/proc/self/maps")
    if maps.exists():  # Linux: the file mapped into this process is the one found
        assert str(found.resolve()) in maps.read_text()


def test_every_entry_of_the_package_path_is_searched_in_order(monkeypatch, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "marker.bin").write_bytes(b"x")
    monkeypatch.setattr(fkd_ops, "__path__", [str(first), str(second)])
    assert libraries.find_file("marker.bin") == second / "marker.bin"
    (first / "marker.bin").write_bytes(b"y")
    assert libraries.find_file("marker.bin") == first / "marker.bin"


def test_missing_library_names_the_file_and_the_folders(monkeypatch, tmp_path):
    monkeypatch.setattr(fkd_ops, "__path__", [str(tmp_path)])
    with pytest.raises(ImportError) as info:
        libraries.find_file("_fkd_ops_tf.so")
    message = str(info.value)
    assert "_fkd_ops_tf.so" in message and str(tmp_path) in message and "pip install" in message


def test_native_module_works_without_tensorflow(tmp_path):
    """The pybind11 module (kernels on numpy arrays, the Kaggle reader) in a fresh
    interpreter where TensorFlow cannot be imported at all."""
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None  # any import of TensorFlow now fails\n"
        "import numpy as np\n"
        "from fkd_ops.ops import libraries\n"
        "native = libraries.native()\n"
        "p = np.array([1.0, 2.0, 5.0, 0.0]); t = np.array([1.0, np.nan, 2.0, 4.0])\n"
        "loss, sum_sq, count = native.masked_rmse(p, t, False)\n"
        "print(loss, sum_sq, count)\n"
        "print(native.flip_decisions(7, 0, 5, 1.0).tolist(), native.flip_decisions(7, 0, 3, 0.0).tolist())\n"
        "print('tensorflow' in sys.modules and sys.modules['tensorflow'] is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [float(v) for v in lines[0].split()] == pytest.approx([(25 / 3) ** 0.5, 25.0, 3.0])
    assert lines[1] == "[True, True, True, True, True] [False, False, False]"
    assert lines[2] == "False"
