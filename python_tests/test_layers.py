"""The package's shape: layers that import only downwards, names that load lazily,
the plain-Python parts importable without TensorFlow, and models saved by an
earlier layout still loading."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import fkd_ops

PACKAGE = Path(fkd_ops.__file__).resolve().parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Lower number = lower layer. A module may import its own layer and those below.
# _native is the compiled pybind11 module, the bottom of everything.
LAYERS = {"_native": 0, "keypoints": 0, "files": 0, "ops": 1, "data": 2, "keras": 3, "train": 4, "cli": 5}


def _layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "fkd_ops" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        found[".".join(rel.parts)] = path
    return found


def test_no_import_runs_up_the_layers():
    modules = _modules()
    assert len(modules) > 20, f"only {len(modules)} modules found under {PACKAGE}"
    upward = []
    for name, path in modules.items():
        if name == "fkd_ops.__init__":
            continue  # the face: it only names what lies below, lazily
        own = _layer_of(name)
        assert own is not None, f"{name} belongs to no layer: add it to LAYERS or move it"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from fkd_ops import x` names a module (x's layer) or a name of the face.
                targets = [f"{node.module}.{a.name}" for a in node.names] if node.module == "fkd_ops" else [node.module]
            for target in targets:
                if target == "fkd_ops" or (target.startswith("fkd_ops.") and _layer_of(target) is None):
                    upward.append(f"{name} imports {target} from the package face")
                layer = _layer_of(target)
                if layer is not None and layer > own:
                    upward.append(f"{name} (layer {own}) imports {target} (layer {layer})")
    assert not upward, "\n".join(sorted(set(upward)))


def test_public_names_load_lazily_and_all_resolve():
    code = (
        "import sys, fkd_ops\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'import fkd_ops loaded TF'\n"
        "missing = [n for n in fkd_ops.__all__ if getattr(fkd_ops, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert fkd_ops.reference.masked_rmse is not fkd_ops.masked_rmse\n"
        "print(len(fkd_ops.__all__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.sep, timeout=300)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) >= 40


def test_keypoints_import_in_a_venv_without_tensorflow(tmp_path):
    # A bare venv (no pip, no packages) and the package's Python files alone.
    venv.create(tmp_path / "venv", with_pip=False)
    python = tmp_path / "venv" / "bin" / "python"
    shutil.copytree(PACKAGE, tmp_path / "src" / "fkd_ops", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    code = (
        "import fkd_ops.keypoints as k, fkd_ops, importlib.util as u\n"
        "assert u.find_spec('tensorflow') is None and u.find_spec('numpy') is None\n"
        "print(k.NUM_COORDINATES, k.FLIP_PAIRS[0], k.pixels_to_targets(72.0), fkd_ops.IMAGE_SIZE)\n"
    )
    path_line = f"import sys; sys.path.insert(0, {str(tmp_path / 'src')!r})\n"
    out = subprocess.run([str(python), "-I", "-c", path_line + code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["30", "(0,", "1)", "0.5", "96"]


def test_reader_synthetic_faces_and_cli_help_need_no_tensorflow(tmp_path):
    # TensorFlow, Keras and PySpark made unimportable: any import of them fails loudly.
    code = f"""
import sys
sys.modules["tensorflow"] = None
sys.modules["keras"] = None
sys.modules["pyspark"] = None
import fkd_ops
from fkd_ops.data.synthetic import write_synthetic_kaggle
from fkd_ops.data.kaggle_files import read_training
files = write_synthetic_kaggle({str(tmp_path)!r}, n_train=3, n_test=2, seed=5)
print(read_training(files.training).images.shape)
from fkd_ops import cli
for argv in (["--help"], ["train", "--help"], ["tune", "--help"], ["evaluate", "--help"], ["predict", "--help"],
             ["show", "--help"]):
    try:
        cli.main(argv)
    except SystemExit as exit:
        assert exit.code == 0, (argv, exit.code)
print(cli.main(["show", "--data", str(files.training), "--count", "2", "--out", {str(tmp_path / "faces.png")!r}]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.sep, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "(3, 96, 96)" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "0"
    assert (tmp_path / "faces.png").stat().st_size > 1000


def test_a_model_saved_by_the_flat_layout_still_loads():
    # Saved by fkd_ops 0.1.0, whose Keras objects lived in fkd_ops.layers,
    # fkd_ops.losses and fkd_ops.metrics; loaded the way the README says.
    code = f"""
import numpy as np
import fkd_ops
import keras
model = keras.models.load_model({str(FIXTURES / "model_saved_by_fkd_ops_0.1.0.keras")!r})
data = np.load({str(FIXTURES / "model_saved_by_fkd_ops_0.1.0.npz")!r})
kinds = sorted(type(layer).__module__ for layer in model.layers if "fkd_ops" in type(layer).__module__)
assert kinds == ["fkd_ops.keras.layers"] * 3, kinds
assert type(model.loss).__name__ == "MaskedRmseLoss", model.loss
np.testing.assert_array_equal(model.predict([data["images"], data["keypoints"]], verbose=0), data["predictions"])
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.sep, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_keras_objects_are_registered_after_tensorflow_looks_keras_up():
    # Importing TensorFlow probes for Keras (importlib.util.find_spec) before
    # anything imports it; the registration must survive such probes, or a run
    # saved by `fkd-ops train` cannot be loaded by `fkd-ops predict` in a new process.
    code = """
import importlib.util, sys
import fkd_ops
importlib.util.find_spec("keras")
import tensorflow
import keras
assert "keras" in sys.modules
missing = [n for n in ("MaskedRmseLoss", "MaskedRmseMetric", "ImageNormalization")
           if keras.saving.get_registered_object(f"fkd_ops>{n}") is None]
print(missing)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.sep, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
